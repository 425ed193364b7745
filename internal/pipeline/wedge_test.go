package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"log/slog"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// logBuffer collects a pipeline's log as JSON lines, safely for workers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the logged records whose message is msg.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r), line)
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// boundedCtx is a context that ends well before the test's, so that a
// wedged worker fails the test instead of hanging it.
func boundedCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A lookup snapshot whose tables vanished under its version key (evicted,
// deleted) used to make every worker retry it forever. Workers now rebuild
// and republish it, and the batch goes through.
func TestWorkersRebuildAVanishedSnapshot(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 100}, nil)
	gen, err := p.Generate(ctx, 300, generate.Config{Duplicates: 0.05, Invalid: 0.03, Seed: 71}, nil)
	require.NoError(t, err)
	v, err := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64()
	require.NoError(t, err)
	for _, table := range lookup.AllTables {
		require.NoError(t, env.RDB.Del(ctx, env.Keys.Lookup(v, table)).Err())
	}

	// A fresh pipeline: no snapshot in memory to hide the loss.
	q := newPipeline(t, env, pipeline.Config{BatchSize: 100}, nil)
	_, err = q.Run(boundedCtx(t, 30*time.Second), pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	requireConsistent(t, ctx, env, q, gen)
	now, err := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64()
	require.NoError(t, err)
	require.Greater(t, now, v, "the snapshot was republished")
}

// Lookup tables that were empty when the snapshot was published: the
// workers do not wait for a snapshot that cannot come, and promotion
// dead-letters what the tables cannot validate.
func TestWorkersGoOnWithEmptyLookupTables(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 100}, nil)
	require.NoError(t, p.Push(ctx, [][]byte{message(t, "ORD-1", "PROD-001", "94102"), message(t, "ORD-2", "PROD-002", "10001")}, nil))
	for _, table := range []string{env.Tables.Products(), env.Tables.Currencies(), env.Tables.Zips()} {
		_, err := env.PG.Exec(ctx, "DELETE FROM "+table)
		require.NoError(t, err)
	}
	_, err := p.InitCache(ctx)
	require.NoError(t, err)

	_, err = p.Run(boundedCtx(t, 30*time.Second), pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = 'unknown_product'"))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
}

// A batch whose preparation keeps failing for a reason of its own (here
// the de-dup window's key holds a string, so ZMSCORE fails) used to be
// retried every 50-100 ms forever. Its failures now count towards
// MaxAttempts, with a backoff that grows, and at the limit the batch is
// prepared without Redis's help: promoted, not wedged, nothing lost.
func TestPreparationFailuresCountTowardsMaxAttempts(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	var logs logBuffer
	p := newPipeline(t, env, pipeline.Config{BatchSize: 1000, MaxAttempts: 4, Logger: logs.logger()}, nil)
	gen, err := p.Generate(ctx, 200, generate.Config{Duplicates: 0.05, Invalid: 0.03, Seed: 72}, nil)
	require.NoError(t, err)
	require.NoError(t, env.RDB.Set(ctx, env.Keys.Dedup(), "not a sorted set", 0).Err())

	_, err = p.Run(boundedCtx(t, 30*time.Second), pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(gen.Unique), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Equal(t, int64(gen.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())

	retries := logs.records(t, "batch not prepared; retrying")
	require.Len(t, retries, 3, "failures 1 to 3 are retried, the 4th gives up on Redis")
	// The backoff grows from failure to failure: 100-200 ms, 200-400 ms,
	// 400-800 ms. (slog's JSON handler writes durations in nanoseconds.)
	last := time.Duration(retries[2]["in"].(float64))
	require.GreaterOrEqual(t, last, 400*time.Millisecond, "the retry interval must not reset: %v", retries)
	require.Len(t, logs.records(t, "preparing the batch failed too often; going on without the lookup snapshot and the de-dup window"), 1)
}
