package views_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/transform"
	"github.com/redpg/redpg/internal/views"
)

// promoteGenerated stages and promotes n generated valid orders.
func promoteGenerated(t *testing.T, env *testenv.Env, batchID string, n int, seed uint64) {
	t.Helper()
	ctx := context.Background()
	snap, err := lookup.Load(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	cat := generate.Catalog{Products: map[string]int64{}, Currencies: snap.FloatRates()}
	for id, p := range snap.Products {
		cat.Products[id] = p.BasePriceCents
	}
	for z := range snap.Zips {
		cat.Zips = append(cat.Zips, z)
	}
	g, err := generate.New(cat, generate.Config{Seed: seed, Customers: 50})
	require.NoError(t, err)
	var orders []order.Order
	for _, raw := range g.Batch(n) {
		o, err := order.Decode(raw)
		require.NoError(t, err)
		orders = append(orders, o)
	}
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		rows := transform.Apply(orders, snap)
		if _, err := stage.Copy(ctx, tx, env.Tables, batchID, rows); err != nil {
			return err
		}
		r, err := promote.Batch(ctx, tx, env.Tables, batchID, rows)
		require.Len(t, r.Promoted, n)
		return err
	}))
}

func TestRefreshMatchesDirectAggregates(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	promoteGenerated(t, env, "b-1", 300, 1)
	require.NoError(t, views.Refresh(ctx, env.PG, env.Tables))
	env.RequireViewsMatchOrders(t)

	counts, err := views.Counts(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Len(t, counts, len(schema.Views))
	require.Equal(t, env.Count(t, "SELECT count(DISTINCT (shipping_zone, country)) FROM "+env.Tables.Orders()), counts["shipping_zone_stats"])
	require.Equal(t, env.Count(t, "SELECT count(DISTINCT (date_trunc('hour', order_timestamp), category)) FROM "+env.Tables.Orders()), counts["sales_hourly"])
	require.Equal(t, env.Count(t, "SELECT count(DISTINCT (date_trunc('day', order_timestamp), product_id)) FROM "+env.Tables.Orders()),
		counts["product_performance_daily"])

	// A second refresh (CONCURRENTLY, as the views are populated) picks up new orders.
	promoteGenerated(t, env, "b-2", 200, 2)
	require.NoError(t, views.Refresh(ctx, env.PG, env.Tables))
	env.RequireViewsMatchOrders(t)
	require.Equal(t, int64(500), env.Count(t, "SELECT sum(order_count)::bigint FROM "+env.Tables.View("shipping_zone_stats")))
}

func TestRefreshPopulatesNeverPopulatedViews(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	for _, v := range schema.Views {
		_, err := env.PG.Exec(ctx, "REFRESH MATERIALIZED VIEW "+env.Tables.View(v)+" WITH NO DATA")
		require.NoError(t, err)
	}
	_, err := views.Counts(ctx, env.PG, env.Tables)
	require.Error(t, err, "an unpopulated view cannot be read")

	promoteGenerated(t, env, "b-1", 50, 3)
	require.NoError(t, views.Refresh(ctx, env.PG, env.Tables))
	for _, v := range schema.Views {
		var populated bool
		require.NoError(t, env.PG.QueryRow(ctx, "SELECT ispopulated FROM pg_matviews WHERE schemaname = $1 AND matviewname = $2",
			env.Schema, v).Scan(&populated))
		require.True(t, populated, v)
	}
	env.RequireViewsMatchOrders(t)
}

func TestRefreshEmptyOrders(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	require.NoError(t, views.Refresh(ctx, env.PG, env.Tables))
	counts, err := views.Counts(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"sales_hourly": 0, "product_performance_daily": 0, "shipping_zone_stats": 0}, counts)
}
