package pipeline_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// messageAt is a valid order id placed at ts.
func messageAt(t *testing.T, id string, ts time.Time) []byte {
	t.Helper()
	b, err := json.Marshal(order.Message{OrderID: id, CustomerID: "CUST-" + id, ProductID: "PROD-003", Quantity: 2, UnitPrice: "39.99",
		Currency: "USD", ZipCode: "98101", OrderTimestamp: ts.UTC().Format(time.RFC3339)})
	require.NoError(t, err)
	return b
}

// messagesAt are n orders ids prefix-0 … prefix-(n-1), all at ts.
func messagesAt(t *testing.T, prefix string, n int, ts time.Time) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, messageAt(t, fmt.Sprintf("%s-%04d", prefix, i), ts))
	}
	return out
}

// TestPartitionedOrders converts a populated orders table to monthly
// partitions, keeps the pipeline's promises on it (an order id is stored
// once even under another timestamp, views and reconcile agree), and
// retires old months.
func TestPartitionedOrders(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	now := time.Now().UTC()
	old := now.AddDate(0, -20, 0) // retired below
	recent := now.Add(-time.Hour)

	plain := newPipeline(t, env, pipeline.Config{BatchSize: 100}, nil)
	require.NoError(t, plain.Push(ctx, messagesAt(t, "OLD", 50, old), nil))
	require.NoError(t, plain.Push(ctx, messagesAt(t, "NEW", 200, recent), nil))
	c, err := plain.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(250), c.Promoted)
	require.NoError(t, plain.Promote(ctx))

	rep, err := partition.Convert(ctx, env.PG, env.Tables, now, partition.DefaultAhead)
	require.NoError(t, err)
	require.False(t, rep.AlreadyPartitioned)
	require.Equal(t, int64(250), rep.Rows)
	require.Equal(t, 20+1+partition.DefaultAhead, rep.Partitions, "old's month through 3 months ahead")
	require.ElementsMatch(t, []string{"sales_hourly", "product_performance_daily", "shipping_zone_stats"}, rep.Views)
	require.ElementsMatch(t, []string{"orders_customer_id_idx", "orders_order_timestamp_idx"}, rep.Indexes)

	tables := env.Tables
	tables.Partitioned, err = partition.Detect(ctx, env.PG, tables)
	require.NoError(t, err)
	require.True(t, tables.Partitioned)
	require.Equal(t, int64(250), env.Count(t, "SELECT count(*) FROM "+tables.OrderIDs()))
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'", tables.Orders()),
		"the foreign key to product_catalog is carried over")
	require.Equal(t, int64(50), env.Count(t, "SELECT count(*) FROM "+env.Tables.Schema+"."+partition.Name(old)))
	env.RequireViewsMatchOrders(t) // recreated and filled

	again, err := partition.Convert(ctx, env.PG, env.Tables, now, partition.DefaultAhead)
	require.NoError(t, err)
	require.True(t, again.AlreadyPartitioned)

	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: tables, BatchSize: 100, IdleWait: 100 * time.Millisecond}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{Dedup: true})) // only PostgreSQL judges below
	// New orders; re-sends of stored ones with their own timestamp; and
	// re-sends under a timestamp in another month, which orders' own key
	// (order_id, order_timestamp) would accept: the registry refuses them.
	msgs := messagesAt(t, "NEXT", 100, recent)
	msgs = append(msgs, messagesAt(t, "NEW", 40, recent)...)
	msgs = append(msgs, messagesAt(t, "OLD", 30, recent)...)
	require.NoError(t, p.Push(ctx, msgs, nil))
	c, err = p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{Received: 170, Promoted: 100, Duplicates: 70}, c)
	require.Equal(t, int64(350), env.Count(t, "SELECT count(*) FROM "+tables.Orders()))
	require.Equal(t, int64(350), env.Count(t, "SELECT count(DISTINCT order_id) FROM "+tables.Orders()))
	require.Equal(t, int64(350), env.Count(t, "SELECT count(*) FROM "+tables.OrderIDs()))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	requireViewsMatch(t, ctx, env, p)

	// Partitions ahead: a run creates the months to come by itself.
	_, err = env.PG.Exec(ctx, "DROP TABLE "+env.Tables.Schema+"."+partition.Name(now.AddDate(0, partition.DefaultAhead, 0)))
	require.NoError(t, err)
	created, err := p.EnsurePartitions(ctx, now)
	require.NoError(t, err)
	require.Equal(t, []string{partition.Name(now.AddDate(0, partition.DefaultAhead, 0))}, created)
	created, err = p.EnsurePartitions(ctx, now)
	require.NoError(t, err)
	require.Empty(t, created)

	// Retention: keeping 13 months drops old's month and no other.
	cutoff := partition.Cutoff(now, 13, 0)
	dry, err := partition.Retire(ctx, env.PG, tables, cutoff, true)
	require.NoError(t, err)
	require.Len(t, dry, 20-13)
	var dryRows int64
	for _, d := range dry {
		dryRows += d.Rows
	}
	require.Equal(t, int64(50), dryRows)
	require.Equal(t, int64(350), env.Count(t, "SELECT count(*) FROM "+tables.Orders()), "a dry run drops nothing")
	gone, err := partition.Retire(ctx, env.PG, tables, cutoff, false)
	require.NoError(t, err)
	require.Len(t, gone, 20-13)
	require.Equal(t, int64(300), env.Count(t, "SELECT count(*) FROM "+tables.Orders()))
	require.Equal(t, int64(300), env.Count(t, "SELECT count(*) FROM "+tables.OrderIDs()))
	parts, err := partition.List(ctx, env.PG, tables)
	require.NoError(t, err)
	require.False(t, parts[0].From.Before(cutoff.AddDate(0, -1, 0)), "oldest kept partition %s", parts[0].Name)
	r, err = p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "retired rows still balance the ledger: %s", r.String())
	require.Equal(t, int64(50), r.RetiredRows)

	// The documented consequence: a retired id is forgotten, and a re-send
	// of it is stored again.
	require.NoError(t, p.Push(ctx, messagesAt(t, "OLD", 5, old), nil))
	c, err = p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(5), c.Promoted)

	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{All: true}))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+tables.OrderIDs()), "clear --all empties the registry too")
}

// TestConvertRefusesWhatItCannotCarry leaves orders untouched when a
// unique index could not survive partitioning.
func TestConvertRefusesWhatItCannotCarry(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	_, err := env.PG.Exec(ctx, "CREATE UNIQUE INDEX orders_customer_once ON "+env.Tables.Orders()+" (customer_id)")
	require.NoError(t, err)
	_, err = partition.Convert(ctx, env.PG, env.Tables, time.Now(), partition.DefaultAhead)
	require.ErrorContains(t, err, "orders_customer_once")
	ok, err := partition.Detect(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.False(t, ok, "the transaction rolled back")
}
