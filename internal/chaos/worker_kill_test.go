//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// heldBatches returns the ids of the batches the workers of the redpg
// process pid hold in Redis. Worker ids are <host>-<pid>-<run>-w<n>.
func heldBatches(t testing.TB, env *testenv.Env, pid int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	iter := env.RDB.Scan(ctx, 0, env.Keys.Inflight(fmt.Sprintf("*-%d-*", pid)), 100).Iterator()
	for iter.Next(ctx) {
		id, err := env.RDB.HGet(ctx, iter.Val(), "batch_id").Result()
		if err == nil && id != "" {
			ids = append(ids, id)
		}
	}
	require.NoError(t, iter.Err())
	return ids
}

// TestWorkerSIGKILL runs three real `redpg process` processes (two workers
// each, 2s lease, batches of 2000) over 150,000 generated orders (5%
// duplicates, 1% invalid) and SIGKILLs a random one every 0.25-1 s,
// restarting it, at least 15 times while a producer keeps the queue deep. After a
// final clean `process --until-empty`, orders must hold exactly the unique
// valid orders, every invalid one must be dead-lettered, Redis and staging
// must be empty and `redpg reconcile` must exit 0.
func TestWorkerSIGKILL(t *testing.T) {
	const (
		total     = 150000
		initial   = 50000
		chunk     = 10000
		keepDepth = 30000 // about two seconds of work for three processes
		minKills  = 15
		processes = 3
	)
	env := testenv.New(t)
	p := newPipeline(t, env, nil, pipeline.Config{MaxQueueDepth: 200000})
	ctx := context.Background()
	cat, err := p.Catalog(ctx)
	require.NoError(t, err)

	// The whole stream is made up front and kept, so the expected outcome
	// is known; it is pushed in chunks while the workers are being killed.
	gen := generateStream(t, cat, total, 0.05, 0.01, 0)
	want := expectedIDs(t, gen.msgs, snapshot(t, p))
	require.Len(t, want, gen.counts.Unique, "the test's own oracle disagrees with the generator")
	require.NoError(t, p.Push(ctx, gen.msgs[:initial], nil))
	pushed := initial

	environ := procEnv(env, env.RedisURL)
	args := []string{"process", "--workers", "2", "--until-empty", "--lease", "2s", "--batch-size", "2000", "--log-level", "info"}
	procs := make([]*proc, processes)
	for i := range procs {
		procs[i] = startRedpg(t, environ, args...)
	}
	var logs []string
	collect := func(pr *proc) { logs = append(logs, pr.stderr.String()) }

	start := time.Now()
	kills, selfExits := 0, 0
	var heldAtKill []string
	killedWhileBusy := 0
	for kills < minKills || pushed < total {
		require.Less(t, time.Since(start), 4*time.Minute, "chaos loop is not converging")
		time.Sleep(250*time.Millisecond + rand.N(750*time.Millisecond))
		// Keep the workers busy until the stream runs out, so that kills
		// land mid-batch rather than on idle processes.
		for pushed < total {
			depth, err := p.Queue().Depth(ctx)
			require.NoError(t, err)
			if depth >= keepDepth {
				break
			}
			n := min(chunk, total-pushed)
			require.NoError(t, p.Push(ctx, gen.msgs[pushed:pushed+n], nil))
			pushed += n
		}
		// Processes that ran out of work exit on their own: that must be a
		// clean exit; start them again.
		for i, pr := range procs {
			if pr.exited() {
				require.Equal(t, 0, pr.exitCode(), "a redpg process failed:\n%s", tail(pr.stderr.String(), 3000))
				selfExits++
				collect(pr)
				procs[i] = startRedpg(t, environ, args...)
			}
		}
		victim := rand.IntN(len(procs))
		pr := procs[victim]
		pr.kill()
		held := heldBatches(t, env, pr.pid())
		if len(held) > 0 {
			killedWhileBusy++
		}
		heldAtKill = append(heldAtKill, held...)
		kills++
		collect(pr)
		procs[victim] = startRedpg(t, environ, args...)
	}
	chaosTime := time.Since(start)
	for _, pr := range procs {
		pr.kill()
		heldAtKill = append(heldAtKill, heldBatches(t, env, pr.pid())...)
		kills++
		collect(pr)
	}

	final := startRedpg(t, environ, args...)
	require.Equal(t, 0, final.wait(t, 3*time.Minute), "final process --until-empty failed:\n%s", tail(final.stderr.String(), 3000))
	collect(final)

	// Where did the kills land? A batch held by a killed process is in the
	// ledger as abandoned (it died before COMMIT: the reaper requeued it) or
	// as committed (it died after COMMIT, before the ack: the reaper
	// released it instead of requeueing).
	stages := map[string]int{}
	for _, id := range heldAtKill {
		var status string
		err := env.PG.QueryRow(ctx, "SELECT status FROM "+env.Tables.Batches()+" WHERE batch_id = $1", id).Scan(&status)
		if err != nil {
			status = "undecided"
		}
		stages[status]++
	}
	all := strings.Join(logs, "\n")
	t.Logf("%d orders (%d unique valid, %d duplicates, %d invalid); %d SIGKILLs in %s (%d while holding batches, %d clean self-exits); "+
		"batches held at a kill: %d died before COMMIT (fenced as abandoned and requeued), %d after COMMIT before the ack (released)",
		total, gen.counts.Unique, gen.counts.Duplicates, gen.counts.Invalid, kills, chaosTime.Round(time.Millisecond),
		killedWhileBusy, selfExits, stages["abandoned"], stages["committed"])
	require.GreaterOrEqual(t, kills, minKills)
	require.Positive(t, killedWhileBusy, "no kill hit a process holding a batch: the test proved nothing")
	require.Zero(t, stages["undecided"], "a killed process's batch was never decided")
	require.NotContains(t, all, "panic")

	requireExactlyOnce(t, env, want)
	var reasons string
	require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT coalesce(string_agg(reason || '=' || n, ', '), '') FROM (SELECT reason, count(*) AS n FROM "+
		env.Tables.Rejected()+" GROUP BY reason) r").Scan(&reasons))
	require.Equal(t, int64(gen.counts.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()), "dead letters by reason: %s", reasons)
	requireDrained(t, env, nil)
	out, errOut, code := runRedpg(t, environ, "reconcile")
	require.Equal(t, 0, code, "reconcile:\n%s%s", out, errOut)
	require.Contains(t, out, fmt.Sprintf("arrived      %d", total))
}

// crashPoint names a step at which a worker dies in TestCrashPoints.
type crashPoint struct {
	name string
	// hook installs the crash on cfg: it calls crash once, then lets later
	// batches through.
	hook func(cfg *pipeline.Config, crash func(ctx context.Context, batchID string) error)
	// committed says whether the crashed batch is durable when the worker
	// dies (it died after COMMIT).
	committed bool
}

// TestCrashPoints kills a worker — deterministically, in process — at each
// window where a crash could lose or double an order: right after the claim,
// before COPY into staging, after staging before promotion, after promotion
// before COMMIT, and after COMMIT before the Redis ack. A second Run must
// reclaim the batch once its lease expires and finish with every order
// promoted exactly once, the crashed batch decided the right way in the
// ledger, and reconciliation clean. A last case is a worker that is slow
// rather than dead: its lease expires mid-batch, the batch is fenced and
// requeued, and its late COMMIT must be refused.
func TestCrashPoints(t *testing.T) {
	points := []crashPoint{
		{name: "before stage", hook: func(c *pipeline.Config, f func(context.Context, string) error) { c.Hooks.BeforeStage = f }},
		{name: "after stage before promote", hook: func(c *pipeline.Config, f func(context.Context, string) error) { c.Hooks.BeforePromote = f }},
		{name: "after promote before commit", hook: func(c *pipeline.Config, f func(context.Context, string) error) { c.Hooks.BeforeCommit = f }},
		{name: "after commit before ack", committed: true, hook: func(c *pipeline.Config, f func(context.Context, string) error) { c.Hooks.AfterCommit = f }},
	}
	const lease = time.Second
	setup := func(t *testing.T) (*testenv.Env, generated, map[string]bool) {
		env := testenv.New(t)
		p := newPipeline(t, env, nil, pipeline.Config{})
		gen := generateOrders(t, p, 3000, 0.05, 0.01, 0)
		want := expectedIDs(t, gen.msgs, snapshot(t, p))
		require.Len(t, want, gen.counts.Unique)
		return env, gen, want
	}
	finish := func(t *testing.T, env *testenv.Env, gen generated, want map[string]bool, crashed string, status string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		p := newPipeline(t, env, nil, pipeline.Config{BatchSize: 500, Lease: lease})
		_, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
		require.NoError(t, err)
		require.NoError(t, ctx.Err(), "the crashed batch was never reclaimed")
		requireExactlyOnce(t, env, want)
		require.Equal(t, int64(gen.counts.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
		require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Batches()+" WHERE batch_id = $1 AND status = $2", crashed, status),
			"the crashed batch must be %s in the ledger", status)
		requireDrained(t, env, nil)
		r, err := p.Reconcile(ctx)
		require.NoError(t, err)
		require.True(t, r.OK(), r.String())
		require.Equal(t, int64(gen.counts.Total), r.Produced)
	}

	t.Run("after claim", func(t *testing.T) {
		env, gen, want := setup(t)
		p := newPipeline(t, env, nil, pipeline.Config{})
		// A worker claims a batch and dies at once: its lease is already over.
		b, err := p.Queue().Claim(context.Background(), "dead-worker", "b-dead-after-claim", 500, -time.Second)
		require.NoError(t, err)
		require.Len(t, b.Messages, 500)
		finish(t, env, gen, want, b.ID, "abandoned")
	})

	for _, cp := range points {
		t.Run(cp.name, func(t *testing.T) {
			env, gen, want := setup(t)
			ctx, die := context.WithCancel(context.Background())
			defer die()
			var crashed string
			cfg := pipeline.Config{BatchSize: 500, Lease: lease}
			cp.hook(&cfg, func(_ context.Context, batchID string) error {
				if crashed != "" {
					return nil
				}
				crashed = batchID
				die() // the worker stops right here, batch in hand
				return fmt.Errorf("chaos: worker dies %s", cp.name)
			})
			p := newPipeline(t, env, nil, cfg)
			_, err := p.Run(ctx, pipeline.RunOptions{Workers: 1})
			require.NoError(t, err)
			require.NotEmpty(t, crashed, "the crash point was never reached")

			// The batch is still claimed, and durable only if the crash came
			// after COMMIT.
			s, err := p.Queue().Snapshot(context.Background())
			require.NoError(t, err)
			require.Equal(t, int64(500), s.InFlight(), "the dead worker's batch must stay claimed")
			var status string
			_ = env.PG.QueryRow(context.Background(), "SELECT status FROM "+env.Tables.Batches()+" WHERE batch_id = $1", crashed).Scan(&status)
			rows := env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders())
			if cp.committed {
				require.Equal(t, "committed", status)
				require.Positive(t, rows)
				finish(t, env, gen, want, crashed, "committed")
			} else {
				require.Empty(t, status, "a batch that died before COMMIT must be undecided")
				require.Zero(t, rows, "nothing may be promoted by a transaction that never committed")
				finish(t, env, gen, want, crashed, "abandoned")
			}
		})
	}

	t.Run("slow worker fenced", func(t *testing.T) {
		env, gen, want := setup(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		reaper := newPipeline(t, env, nil, pipeline.Config{Lease: time.Minute})
		var zombie string
		cfg := pipeline.Config{BatchSize: 500, Lease: time.Minute}
		cfg.Hooks.BeforePromote = func(ctx context.Context, batchID string) error {
			if zombie != "" {
				return nil
			}
			zombie = batchID
			// The worker stalls long enough for its lease to run out: a
			// reaper fences its batch and returns it to the queue.
			workers, err := env.RDB.ZRange(ctx, env.Keys.Workers(), 0, -1).Result()
			if err != nil {
				return err
			}
			for _, w := range workers {
				env.RDB.ZAdd(ctx, env.Keys.Workers(), redis.Z{Score: 0, Member: w})
			}
			n, err := reaper.Reap(ctx)
			if err != nil {
				return err
			}
			if n != 500 {
				return fmt.Errorf("reaper requeued %d messages, want 500", n)
			}
			return nil // ...and then the slow worker carries on and tries to commit
		}
		p := newPipeline(t, env, nil, cfg)
		_, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
		require.NoError(t, err)
		require.NoError(t, ctx.Err())
		require.NotEmpty(t, zombie)
		finish(t, env, gen, want, zombie, "abandoned")
	})
}
