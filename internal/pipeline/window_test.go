package pipeline_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// requireWindowsMatchOrders checks every live window against a direct query
// on orders over the same interval.
func requireWindowsMatchOrders(t *testing.T, env *testenv.Env, s pipeline.Stats) {
	t.Helper()
	require.Len(t, s.Windows, 3)
	for _, f := range s.Windows {
		var n, cents int64
		require.NoError(t, env.PG.QueryRow(t.Context(), "SELECT count(*), coalesce(sum(total_amount_usd * 100), 0)::bigint FROM "+
			env.Tables.Orders()+" WHERE order_timestamp >= $1 AND order_timestamp < $2", f.From, f.To).Scan(&n, &cents))
		require.Equal(t, n, f.Orders, "orders in the last %s", f.Span)
		require.Equal(t, cents, f.RevenueUSDCents, "revenue in the last %s", f.Span)
	}
}

func TestWindowsAgreeWithOrders(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 150}, nil)
	cat, err := p.Catalog(ctx)
	require.NoError(t, err)
	g, err := generate.New(cat, generate.Config{Seed: 7, Invalid: 0.05})
	require.NoError(t, err)
	msgs := g.Batch(1500)
	require.NoError(t, p.Push(ctx, msgs, nil))
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 3, UntilEmpty: true})
	require.NoError(t, err)
	promoted := env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders())
	require.Positive(t, promoted)
	// The same orders again, past the de-dup window: PostgreSQL refuses
	// them as duplicates, and the windows count only what was promoted.
	require.NoError(t, p.Dedup().Clear(ctx))
	require.NoError(t, p.Push(ctx, msgs, nil))
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 3, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, promoted, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))

	s, err := p.Stats(ctx)
	require.NoError(t, err)
	require.Positive(t, s.Windows[2].Orders, "generated orders fall within the last hour")
	requireWindowsMatchOrders(t, env, s)
	require.Positive(t, s.WindowSize)
	require.Less(t, s.WindowSize, promoted, "the windows keep buckets, not orders")
	require.Positive(t, s.LookupKeys)
	require.Positive(t, s.LookupVersion)
}
