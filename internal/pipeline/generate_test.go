package pipeline_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// queuedInPushOrder returns the queue's messages oldest first: LPUSH puts
// the newest at the head, and workers take from the tail.
func queuedInPushOrder(t *testing.T, ctx context.Context, env *testenv.Env) []string {
	t.Helper()
	msgs, err := env.RDB.LRange(ctx, env.Keys.Queue(), 0, -1).Result()
	require.NoError(t, err)
	slices.Reverse(msgs)
	return msgs
}

// newGeneratePipeline returns a pipeline on env with its lookup cache
// published, and the catalog Generate draws from.
func newGeneratePipeline(t *testing.T, ctx context.Context, env *testenv.Env, cfg pipeline.Config) (*pipeline.Pipeline, generate.Catalog) {
	t.Helper()
	cfg.Keys, cfg.Tables = env.Keys, env.Tables
	p, err := pipeline.New(cfg, env.PG, nil, env.RDB)
	require.NoError(t, err)
	_, err = p.InitCache(ctx)
	require.NoError(t, err)
	cat, err := p.Catalog(ctx)
	require.NoError(t, err)
	return p, cat
}

func TestGenerateQueuesTheSequentialStreamInOrder(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, cat := newGeneratePipeline(t, ctx, env, pipeline.Config{})

	// Three chunks, the last one short, with every kind of message.
	const n = 12345
	cfg := generate.Config{Seed: 11, RunID: "gen001", Now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Duplicates: 0.1, Invalid: 0.05}
	var reported []int
	counts, err := p.Generate(ctx, n, cfg, func(done, total int, depth int64) {
		require.Equal(t, n, total)
		require.Zero(t, depth, "no backpressure below the default depth")
		reported = append(reported, done)
	})
	require.NoError(t, err)
	require.Equal(t, []int{5000, 10000, n}, reported)

	want, err := generate.New(cat, cfg)
	require.NoError(t, err)
	wantMsgs := want.Batch(n)
	require.Equal(t, want.Counts(), counts)

	got := queuedInPushOrder(t, ctx, env)
	require.Len(t, got, n)
	for i, m := range wantMsgs {
		if string(m) != got[i] {
			require.Failf(t, "queued out of order", "message %d:\nwant %s\ngot  %s", i, m, got[i])
		}
	}
	produced, err := env.RDB.Get(ctx, env.Keys.Produced()).Int()
	require.NoError(t, err)
	require.Equal(t, n, produced)
}

func TestGenerateWaitsUnderBackpressureUntilCancelled(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, cat := newGeneratePipeline(t, ctx, env, pipeline.Config{MaxQueueDepth: 5000})

	// The first chunk fills the queue; the second must wait for room, and
	// is given up on when the queue stays full.
	cfg := generate.Config{Seed: 12, RunID: "gen002", Now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	genCtx, stop := context.WithCancel(ctx)
	defer stop()
	waited := false
	counts, err := p.Generate(genCtx, 50000, cfg, func(done, _ int, depth int64) {
		if depth > 0 {
			require.Equal(t, 5000, done)
			require.Equal(t, int64(5000), depth)
			waited = true
			stop()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, waited, "the producer waited for room")
	require.Equal(t, 10000, counts.Total, "counts cover the pushed chunk and the one that waited")

	want, err := generate.New(cat, cfg)
	require.NoError(t, err)
	got := queuedInPushOrder(t, ctx, env)
	require.Len(t, got, 5000, "nothing queued past the limit, nothing dropped")
	for i, m := range want.Batch(5000) {
		require.Equal(t, string(m), got[i], "message %d", i)
	}
}
