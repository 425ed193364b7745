package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

// referenceZips are the zip codes of the reference's init.sql, half of
// which redpg's own lookup rows used to lack.
var referenceZips = []string{"10001", "94102", "60601", "02101", "98101", "33101", "75201", "80201", "M5H2N2", "V6B1A1"}

// referenceOrders are n orders drawn from the reference's lookup rows, one
// of them 1000 JPY.
func referenceOrders(t *testing.T, prefix string, n int) (msgs [][]byte, units int64) {
	t.Helper()
	currencies := []string{"USD", "EUR", "GBP", "CAD", "AUD", "JPY", "INR"}
	ts := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	for i := range n {
		m := order.Message{OrderID: fmt.Sprintf("%s-%03d", prefix, i), CustomerID: fmt.Sprintf("CUST-%d", i%7),
			ProductID: fmt.Sprintf("PROD-%03d", i%15+1), Quantity: int64(i%3 + 1), UnitPrice: "19.99",
			Currency: currencies[i%len(currencies)], ZipCode: referenceZips[i%len(referenceZips)], OrderTimestamp: ts}
		if i == 0 {
			m.Currency, m.UnitPrice, m.Quantity = "JPY", "1000", 1
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		msgs = append(msgs, b)
		units += m.Quantity
	}
	return msgs, units
}

// requireReferenceViews refreshes the views and checks them by the
// reference's column names against orders.
func requireReferenceViews(t *testing.T, ctx context.Context, env *testenv.Env, p *pipeline.Pipeline) {
	t.Helper()
	require.NoError(t, p.Promote(ctx))
	env.RequireViewsMatchOrders(t)
	units := env.Count(t, "SELECT sum(quantity)::bigint FROM "+env.Tables.Orders())
	require.Equal(t, units, env.Count(t, "SELECT sum(total_units)::bigint FROM "+env.Tables.View("sales_hourly")))
	require.Equal(t, units, env.Count(t, "SELECT sum(total_units_sold)::bigint FROM "+env.Tables.View("product_performance_daily")))
	require.Positive(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.View("shipping_zone_stats")+" WHERE country = 'CA'"))
	require.Zero(t, env.Count(t, `SELECT count(*) FROM `+env.Tables.View("shipping_zone_stats")+` v
		FULL JOIN (SELECT shipping_zone, country, count(*) AS n, count(DISTINCT customer_id) AS u, avg(total_amount_usd) AS a
		           FROM `+env.Tables.Orders()+` GROUP BY 1, 2) o USING (shipping_zone, country)
		WHERE v.order_count IS DISTINCT FROM o.n OR v.unique_customers IS DISTINCT FROM o.u
		   OR v.avg_order_value_usd IS DISTINCT FROM o.a`), "shipping_zone_stats is the reference's aggregate, per zone and country")
}

// requireJPYDivided checks that 1000 JPY became 6.69 USD, not 149,500.
func requireJPYDivided(t *testing.T, env *testenv.Env, orderID string) {
	t.Helper()
	var usd string
	require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT total_amount_usd::text FROM "+env.Tables.Orders()+
		" WHERE order_id = $1", orderID).Scan(&usd))
	require.Equal(t, "6.69", usd)
}

// A fresh database knows every product, currency and zip code the
// reference's producers send, and names them as the reference does.
func TestFreshDatabasePromotesOrdersForTheReferenceLookups(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 25}, nil)
	msgs, _ := referenceOrders(t, "REF", 105)
	require.NoError(t, p.Push(ctx, msgs, nil))
	counts, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{Received: 105, Promoted: 105}, counts, "no order is dead-lettered for a missing lookup row")

	var name, category string
	var zone int32
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_name, category, shipping_zone FROM "+env.Tables.Orders()+
		" WHERE product_id = 'PROD-005' AND zip_code = 'V6B1A1' LIMIT 1").Scan(&name, &category, &zone))
	require.Equal(t, []string{"Office Chair", "Furniture"}, []string{name, category})
	require.Equal(t, int32(2), zone)
	requireJPYDivided(t, env, "REF-000")
	requireReferenceViews(t, ctx, env, p)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
}

// A database the reference's init.sql created, with orders the reference
// promoted and one it left staged, is adopted by `redpg migrate`; redpg
// then promotes new orders and the left-over one into it, the views
// refresh under the reference's names, and reconcile balances.
func TestAdoptedReferenceDatabase(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	url := testenv.ReferenceDatabase(t)
	admin := testenv.Pool(t, url, 2)
	_, err := admin.Exec(ctx, `
INSERT INTO orders_staging (order_id, customer_id, product_id, quantity, unit_price, currency, zip_code, order_timestamp, raw_data) VALUES
    ('OLD-1', 'CUST-1', 'PROD-001', 1, 1299.99, 'USD', '10001', '2026-01-15 10:00:00', '{"user_agent": "ua"}'),
    ('OLD-2', 'CUST-2', 'PROD-002', 2, 1000, 'JPY', 'M5H2N2', '2026-01-15 10:30:00', NULL);
SELECT * FROM promote_staging_to_production();
INSERT INTO orders_staging (order_id, customer_id, product_id, quantity, unit_price, currency, zip_code, order_timestamp, raw_data) VALUES
    ('OLD-9', 'CUST-9', 'PROD-003', 1, 49.99, 'CAD', 'V6B1A1', '2026-01-17 08:00:00', '{"session_id": "s-9"}');`)
	require.NoError(t, err)
	_, err = schema.Migrate(ctx, admin, "public")
	require.NoError(t, err)

	env := testenv.Attach(t, url, "public")
	p := newPipeline(t, env, pipeline.Config{BatchSize: 20}, nil)
	msgs, _ := referenceOrders(t, "NEW", 60)
	require.NoError(t, p.Push(ctx, msgs, nil))
	counts, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{Received: 60, Promoted: 60}, counts)
	requireJPYDivided(t, env, "NEW-000")

	res, err := p.Replay(ctx, pipeline.ReplayOptions{Reason: schema.ReasonReferenceStaging})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 1, Promoted: 1}, res, "the order the reference left staged")
	require.Equal(t, int64(63), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))

	requireReferenceViews(t, ctx, env, p)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "the adopted ledger row accounts for the orders and the letter that were there:\n%s", r.String())
	require.Equal(t, int64(60), r.Produced)
	require.Equal(t, int64(61), r.Promoted, "the 60 new orders and the replayed one; the two adopted ones were never queued")
	require.Equal(t, int64(63), r.ProductionRows)
	require.Equal(t, int64(3), env.Count(t, "SELECT received FROM "+env.Tables.Batches()+" WHERE status = $1", ledger.Adopted),
		"two orders and one staged row were there before redpg")
	requireMigratingQueriesWork(t, ctx, env)
}

// migratingQuery returns the SQL block of docs/MIGRATING.md that starts
// with prefix, so that the queries users are told to run are the ones
// tested.
func migratingQuery(t *testing.T, prefix string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "MIGRATING.md"))
	require.NoError(t, err)
	for _, block := range strings.Split(string(doc), "```sql\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.HasPrefix(block, prefix) {
			return block
		}
	}
	t.Fatalf("docs/MIGRATING.md has no SQL block starting with %q", prefix)
	return ""
}

// requireMigratingQueriesWork runs the side-by-side queries of
// docs/MIGRATING.md on an adopted database redpg has promoted orders into.
func requireMigratingQueriesWork(t *testing.T, ctx context.Context, env *testenv.Env) {
	t.Helper()
	rows, err := env.PG.Query(ctx, migratingQuery(t, "WITH promoted AS"))
	require.NoError(t, err)
	var n int
	for rows.Next() {
		vals, err := rows.Values()
		require.NoError(t, err)
		require.Equal(t, vals[2], vals[3], "order counts agree: %v", vals)
		require.Equal(t, vals[4], vals[5], "units agree: %v", vals)
		n++
	}
	require.NoError(t, rows.Err())
	require.Positive(t, n)

	type perCurrency struct {
		Currency         string
		Rate             float64
		Orders           int64
		Reference, Redpg float64
	}
	rows, err = env.PG.Query(ctx, migratingQuery(t, "SELECT o.currency"))
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (perCurrency, error) {
		var c perCurrency
		err := r.Scan(&c.Currency, &c.Rate, &c.Orders, &c.Reference, &c.Redpg)
		return c, err
	})
	require.NoError(t, err)
	require.Len(t, got, 7)
	var orders int64
	for _, c := range got {
		orders += c.Orders
		require.InEpsilon(t, c.Rate*c.Rate, c.Reference/c.Redpg, 0.01, "%s: the reference is off by the rate squared", c.Currency)
	}
	require.Equal(t, int64(61), orders, "the orders redpg promoted, not the two the reference did")

	// The correction of the reference's own totals: 2 × 1000 JPY was 299,000 USD.
	usd := func(id string) string {
		var s string
		require.NoError(t, env.PG.QueryRow(ctx, "SELECT total_amount_usd::text FROM "+env.Tables.Orders()+" WHERE order_id = $1", id).Scan(&s))
		return s
	}
	require.Equal(t, "299000.00", usd("OLD-2"))
	_, err = env.PG.Exec(ctx, migratingQuery(t, "-- the reference's orders whose USD total"))
	require.NoError(t, err)
	require.Equal(t, "13.38", usd("OLD-2"))
	require.Equal(t, "1299.99", usd("OLD-1"))
	requireJPYDivided(t, env, "NEW-000")
}
