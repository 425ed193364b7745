package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

// Reconcile is read again and again while workers run: every reading must
// balance exactly, and once a batch is lost behind the pipeline's back
// every later reading must say so — retries must not find a reading that
// happens to balance.
func TestReconcileIsExactWhileWorkersRun(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 500}, nil)
	_, err := p.Generate(ctx, 20000, generate.Config{Seed: 5, Duplicates: 0.05, Invalid: 0.02}, nil)
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var runErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, runErr = p.Run(runCtx, pipeline.RunOptions{Workers: 3, UntilEmpty: true})
	}()

	const lost = 137
	var readings, afterLoss atomic.Int64
	var started atomic.Bool
	lostAt := make(chan struct{})
	go func() {
		// Lose a batch: claim it as a worker that then vanishes together with
		// its processing list, as a bug or a manual DEL would.
		time.Sleep(time.Second)
		started.Store(true)
		_, err := p.Queue().Claim(ctx, "ghost", "b-ghost", lost, time.Hour)
		if err == nil {
			err = env.RDB.Del(ctx, env.Keys.Processing("ghost"), env.Keys.Inflight("ghost")).Err()
		}
		if err == nil {
			err = env.RDB.ZRem(ctx, env.Keys.Workers(), "ghost").Err()
		}
		if err != nil {
			t.Errorf("lose a batch: %v", err)
		}
		close(lostAt)
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	gone := false
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-lostAt:
			gone, lostAt = true, nil
		default:
		}
		before := !started.Load()
		r, err := p.Reconcile(ctx)
		require.NoError(t, err)
		readings.Add(1)
		switch {
		case gone:
			afterLoss.Add(1)
			require.False(t, r.OK(), "a reading after the loss balanced:\n%s", r)
			require.Equal(t, int64(lost), r.Unaccounted, "%s", r)
		case before:
			require.True(t, r.OK(), "a reading before the loss did not balance:\n%s", r)
		}
	}
	require.NoError(t, runErr)
	require.True(t, gone)
	require.Greater(t, afterLoss.Load(), int64(0))
	t.Logf("%d readings, %d after the loss", readings.Load(), afterLoss.Load())
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(lost), r.Unaccounted)
	require.Zero(t, r.InFlight)
}

// Producers that are not redpg — the Python reference, redis-cli — LPUSH
// without counting. Their messages are accounted when claimed and reported
// as from other producers, not as an error.
func TestReconcileBalancesMessagesFromOtherProducers(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 7}, nil)
	_, err := p.Generate(ctx, 50, generate.Config{Seed: 3}, nil)
	require.NoError(t, err)
	var raw []any
	for i := range 25 {
		raw = append(raw, message(t, fmt.Sprintf("ORD-BARE-%02d", i), "PROD-001", "10001"))
	}
	require.NoError(t, env.RDB.LPush(ctx, env.Keys.Queue(), raw...).Err())

	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "%s", r)
	require.Equal(t, int64(25), r.OtherProducers)
	require.Equal(t, int64(75), r.Queued)

	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	r, err = p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "%s", r)
	require.Equal(t, int64(75), r.Arrived)
	require.Equal(t, int64(50), r.Produced)
	require.Equal(t, int64(25), r.OtherProducers)
	require.Equal(t, r.Arrived, r.Promoted+r.Duplicates+r.Rejected)
	require.Contains(t, r.String(), "from other producers   25")
}

// A Redis that outlived its database: the database is dropped and created
// again (here: its schema) while Redis keeps the account. The fresh database
// starts a fresh account and balances; a database with a history of its own
// refuses the other's account and says what to do.
func TestAccountFollowsTheDatabase(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	_, err := p.Generate(ctx, 300, generate.Config{Seed: 1}, nil)
	require.NoError(t, err)
	_, err = p.Run(ctx, pipeline.RunOptions{UntilEmpty: true})
	require.NoError(t, err)

	// Drop and recreate the database; Redis keeps everything.
	require.NoError(t, schema.Drop(ctx, env.PG, env.Schema))
	_, err = schema.Migrate(ctx, env.PG, env.Schema)
	require.NoError(t, err)
	// The same orders are sent again: the old database's de-dup window must
	// not make them duplicates stored nowhere.
	fresh := newPipeline(t, env, pipeline.Config{}, nil)
	again, err := fresh.Generate(ctx, 300, generate.Config{Seed: 1}, nil)
	require.NoError(t, err)
	_, err = fresh.Run(ctx, pipeline.RunOptions{UntilEmpty: true})
	require.NoError(t, err)
	r, err := fresh.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "a fresh database must start a fresh account:\n%s", r)
	require.Equal(t, int64(300), r.Arrived)
	require.Equal(t, int64(again.Unique), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()),
		"orders re-sent to a recreated database are stored, not taken for duplicates by the old window")

	// Another database with its own history, pointed at the same keys.
	other := testenv.New(t)
	otherP, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: other.Tables}, other.PG, nil, env.RDB)
	require.NoError(t, err)
	own, err := pipeline.New(pipeline.Config{Keys: other.Keys, Tables: other.Tables}, other.PG, nil, other.RDB)
	require.NoError(t, err)
	_, err = own.Generate(ctx, 10, generate.Config{Seed: 4}, nil)
	require.NoError(t, err)
	_, err = own.Run(ctx, pipeline.RunOptions{UntilEmpty: true})
	require.NoError(t, err)
	err = otherP.Bind(ctx)
	require.ErrorIs(t, err, pipeline.ErrForeignAccount)
	require.Contains(t, err.Error(), "redpg clear --account")
	r, err = otherP.Reconcile(ctx)
	require.NoError(t, err)
	require.False(t, r.OK(), "reconcile must say the account is another database's:\n%s", r)
}

// A Redis that lost its data (restart without persistence) while the
// database kept its history: work goes on, and reconcile reports that what
// Redis held then cannot be accounted for, until an operator resets the
// account.
func TestReconcileReportsARedisThatLostItsData(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	_, err := p.Generate(ctx, 100, generate.Config{Seed: 6}, nil)
	require.NoError(t, err)
	_, err = p.Run(ctx, pipeline.RunOptions{UntilEmpty: true})
	require.NoError(t, err)
	_, err = p.Generate(ctx, 40, generate.Config{Seed: 7}, nil)
	require.NoError(t, err)

	// Redis forgets everything of the deployment.
	iter := env.RDB.Scan(ctx, 0, env.Keys.Pattern(), 100).Iterator()
	for iter.Next(ctx) {
		require.NoError(t, env.RDB.Del(ctx, iter.Val()).Err())
	}
	require.NoError(t, env.RDB.Del(ctx, env.Keys.Queue()).Err())

	// A new process binds again and works on.
	again := newPipeline(t, env, pipeline.Config{}, nil)
	_, err = again.Generate(ctx, 30, generate.Config{Seed: 8}, nil)
	require.NoError(t, err)
	_, err = again.Run(ctx, pipeline.RunOptions{UntilEmpty: true})
	require.NoError(t, err)
	r, err := again.Reconcile(ctx)
	require.NoError(t, err)
	require.False(t, r.OK(), "the lost queue must not be balanced away:\n%s", r)
	require.Contains(t, r.String(), "Redis lost its data")

	require.NoError(t, again.Clear(ctx, pipeline.ClearOptions{Account: true}))
	r, err = again.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "an acknowledged new epoch balances:\n%s", r)
}

// Two deployments sharing a Redis, one's prefix a prefix of the other's
// keys: clearing everything of the first leaves the second untouched.
func TestClearAllLeavesOtherDeploymentsAlone(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	other := keys.Space{Prefix: env.Prefix + "orders:eu:"}
	otherP, err := pipeline.New(pipeline.Config{Keys: other, Tables: env.Tables}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.RDB.Del(context.Background(), other.Account(), other.Produced()).Err() })
	require.NoError(t, otherP.Push(ctx, [][]byte{message(t, "ORD-EU-1", "PROD-001", "10001")}, nil))
	_, err = p.Generate(ctx, 20, generate.Config{Seed: 1}, nil)
	require.NoError(t, err)
	require.NoError(t, env.RDB.Set(ctx, "orders:dedup:"+env.Prefix, "the reference's", time.Minute).Err())

	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{All: true}))
	depth, err := env.RDB.LLen(ctx, other.Queue()).Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), depth, "the other deployment's queue survives")
	n, err := otherP.Queue().Produced(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "and its counters")
	require.Equal(t, int64(1), env.RDB.Exists(ctx, "orders:dedup:"+env.Prefix).Val(), "a key outside redpg's namespace survives")
	mine, err := p.Queue().Snapshot(ctx)
	require.NoError(t, err)
	require.Zero(t, mine.Depth)
	require.Zero(t, mine.Produced)
	left, err := env.RDB.Keys(ctx, env.Keys.Pattern()).Result()
	require.NoError(t, err)
	require.Empty(t, left, "nothing of the cleared deployment is left")
	require.NoError(t, env.RDB.Del(ctx, "orders:dedup:"+env.Prefix, other.Queue()).Err())
}

// The account refuses to start over while workers hold leases.
func TestResetAccountWaitsForWorkers(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	_, err := p.Generate(ctx, 10, generate.Config{Seed: 1}, nil)
	require.NoError(t, err)
	_, err = p.Queue().Claim(ctx, "holder", "b-held", 5, time.Hour)
	require.NoError(t, err)
	err = p.Clear(ctx, pipeline.ClearOptions{Account: true})
	require.True(t, errors.Is(err, pipeline.ErrForeignAccount), "%v", err)
	require.Contains(t, err.Error(), "stop them")
}

// Each worker registers the build it runs, so stats can show an operator
// which version every worker is; a worker that leaves unregisters.
func TestStatsShowsEachWorkersVersion(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{Version: "v1.2.3-test"}, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(runCtx, pipeline.RunOptions{Workers: 2})
		done <- err
	}()
	require.Eventually(t, func() bool {
		s, err := p.Stats(ctx)
		return err == nil && len(s.WorkerList) == 2
	}, 30*time.Second, 50*time.Millisecond)
	s, err := p.Stats(ctx)
	require.NoError(t, err)
	for _, w := range s.WorkerList {
		require.Equal(t, "v1.2.3-test", w.Version)
		require.NotZero(t, w.PID)
		require.True(t, w.LeaseUntil.After(time.Now().Add(-time.Minute)))
	}
	stop()
	require.NoError(t, <-done)
	s, err = p.Stats(ctx)
	require.NoError(t, err)
	require.Empty(t, s.WorkerList, "workers that left are gone from the list")
	n, err := env.RDB.HLen(ctx, env.Keys.WorkerInfo()).Result()
	require.NoError(t, err)
	require.Zero(t, n)
}
