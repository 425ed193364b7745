//go:build topology

package topology

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/testenv"
)

// open connects to url the way redpg does and checks which client it got.
func open(t testing.TB, url string, want redisconn.Topology) redis.UniversalClient {
	t.Helper()
	target, err := redisconn.Parse(url)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb, err := redisconn.Open(ctx, target, redisconn.Options{DialTimeout: time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })
	require.Equal(t, want, target.Topology, "topology of %s", url)
	return rdb
}

// slowPipeline is a pipeline whose batches take a while to commit, so
// that a failover lands in the middle of the run rather than after it.
// Producers confirm every chunk on one replica (WAIT).
func slowPipeline(t testing.TB, env *testenv.Env, rdb redis.UniversalClient) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.New(pipeline.Config{
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Keys:   env.Keys, Tables: env.Tables, BatchSize: 200, Lease: 5 * time.Second, IdleWait: 100 * time.Millisecond,
		RedisWaitReplicas: 1, RedisWaitTimeout: 5 * time.Second,
		Hooks: pipeline.Hooks{BeforeCommit: func(ctx context.Context, _ string) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		}},
	}, env.PG, env.PG, rdb)
	require.NoError(t, err)
	return p
}

// tWriter sends the pipeline's log to the test's.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// committed is how many messages committed batches hold: progress read
// from PostgreSQL, which no Redis failover disturbs.
func committed(t testing.TB, env *testenv.Env) int64 {
	t.Helper()
	return env.Count(t, "SELECT coalesce(sum(received), 0)::bigint FROM "+env.Tables.Batches()+" WHERE status = 'committed'")
}

type runResult struct {
	counts ledger.Counts
	err    error
}

// runUntilEmpty starts workers until the queue is empty and returns a
// channel that yields Run's result. If the test ends first, the workers
// are stopped before its schema is dropped.
func runUntilEmpty(t testing.TB, ctx context.Context, p *pipeline.Pipeline, workers int) <-chan runResult {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan runResult, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c, err := p.Run(ctx, pipeline.RunOptions{Workers: workers, UntilEmpty: true})
		ch <- runResult{c, err}
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return ch
}

// requireEveryOrder checks PostgreSQL, the durable side: every unique valid
// order generated is in orders exactly once (the primary key makes "once"
// structural; the count makes "every"), and no invalid one was lost.
func requireEveryOrder(t testing.TB, env *testenv.Env, gen generate.Counts) {
	t.Helper()
	require.Equal(t, int64(gen.Unique), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()),
		"orders must hold exactly the unique valid orders generated")
	require.GreaterOrEqual(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()), int64(gen.Invalid),
		"every invalid order must be dead-lettered")
}

// requireHonestReconcile runs reconcile after a failover. What PostgreSQL
// says must always agree: the ledger with orders and orders_rejected. The
// Redis account may have lost the last writes of a SIGKILLed master
// (replication is asynchronous; only producers WAIT), and then reconcile
// must say so rather than balance: its only permitted problems are the
// account's. It returns whether everything balanced.
func requireHonestReconcile(t testing.TB, ctx context.Context, p *pipeline.Pipeline, env *testenv.Env, gen generate.Counts) bool {
	t.Helper()
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	t.Logf("reconcile after failover:\n%s", r)
	require.Equal(t, int64(gen.Total), r.Produced, "producers WAITed for a replica, so their count survives the failover")
	for _, problem := range r.Problems {
		require.NotContains(t, problem, "ledger says", "PostgreSQL must agree with itself whatever Redis lost")
		require.True(t, strings.Contains(problem, "claimed messages") || strings.Contains(problem, "never reached a worker"),
			"unexpected problem after a failover: %s", problem)
	}
	if r.OK() {
		require.Equal(t, int64(gen.Unique), r.Promoted)
		require.Equal(t, int64(gen.Duplicates), r.Duplicates)
		require.Equal(t, int64(gen.Invalid), r.Rejected)
		require.Zero(t, r.Queued+r.InFlight)
		require.Equal(t, int64(gen.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	}
	return r.OK()
}
