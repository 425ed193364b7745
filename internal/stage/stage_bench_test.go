package stage_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/transform"
)

// benchSource generates enriched rows from the environment's own lookup
// tables; every call returns orders not seen before.
type benchSource struct {
	snap *lookup.Snapshot
	gen  *generate.Generator
}

func newBenchSource(b *testing.B, env *testenv.Env) *benchSource {
	b.Helper()
	snap, err := lookup.Load(context.Background(), env.PG, env.Tables)
	require.NoError(b, err)
	cat := generate.Catalog{Products: map[string]int64{}, Currencies: snap.FloatRates()}
	for id, p := range snap.Products {
		cat.Products[id] = p.BasePriceCents
	}
	for z := range snap.Zips {
		cat.Zips = append(cat.Zips, z)
	}
	g, err := generate.New(cat, generate.Config{Seed: 11})
	require.NoError(b, err)
	return &benchSource{snap: snap, gen: g}
}

func (s *benchSource) rows(b *testing.B, n int) []transform.Row {
	b.Helper()
	orders := make([]order.Order, n)
	for i := range orders {
		var err error
		orders[i], err = order.Decode(s.gen.Next())
		require.NoError(b, err)
	}
	return transform.Apply(orders, s.snap)
}

// BenchmarkCopy stages batches of 5000 rows with COPY into the UNLOGGED
// staging table of a private schema, each in a transaction rolled back.
func BenchmarkCopy(b *testing.B) {
	env := testenv.New(b)
	ctx := context.Background()
	rows := newBenchSource(b, env).rows(b, 5000)
	b.ReportAllocs()
	cpu0 := clientCPU()
	for b.Loop() {
		tx, err := env.PG.Begin(ctx)
		require.NoError(b, err)
		n, err := stage.Copy(ctx, tx, env.Tables, "b-bench", rows)
		require.NoError(b, err)
		require.Equal(b, int64(len(rows)), n)
		require.NoError(b, tx.Rollback(ctx))
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64(clientCPU()-cpu0)/float64(b.N*len(rows)), "client-cpu-ns/order")
}

// BenchmarkCopyPromote stages a batch of 5000 new orders and promotes it
// into orders in one committed transaction, as a worker does (without the
// ledger row); orders grows by 5000 rows per iteration.
func BenchmarkCopyPromote(b *testing.B) {
	env := testenv.New(b)
	benchCopyPromote(b, env, env.Tables)
}

// BenchmarkCopyPromotePartitioned is BenchmarkCopyPromote on orders
// partitioned by month (`redpg partition`): promotion also writes every
// order id into the order_ids registry.
func BenchmarkCopyPromotePartitioned(b *testing.B) {
	env := testenv.New(b)
	_, err := partition.Convert(context.Background(), env.PG, env.Tables, time.Now(), partition.DefaultAhead)
	require.NoError(b, err)
	t := env.Tables
	t.Partitioned = true
	benchCopyPromote(b, env, t)
}

func benchCopyPromote(b *testing.B, env *testenv.Env, t schema.Tables) {
	ctx := context.Background()
	src := newBenchSource(b, env)
	const n = 5000
	b.ReportAllocs()
	cpu0 := clientCPU()
	for b.Loop() {
		b.StopTimer()
		rows := src.rows(b, n)
		b.StartTimer()
		var res promote.Result
		err := pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
			if _, err := stage.Copy(ctx, tx, t, "b-bench", rows); err != nil {
				return err
			}
			var err error
			res, err = promote.Batch(ctx, tx, t, "b-bench", rows)
			return err
		})
		require.NoError(b, err)
		require.Len(b, res.Promoted, n)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "orders/s")
	b.ReportMetric(float64(clientCPU()-cpu0)/float64(b.N*n), "client-cpu-ns/order")
}

// pgxSource is the straightforward pgx CopyFrom source the encoder
// replaced: the reference its binary encoding is checked against, in the
// staging layout (staging) or the orders layout.
type pgxSource struct {
	batchID string
	staging bool
	rows    []transform.Row
	i       int
}

func (s *pgxSource) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *pgxSource) Err() error { return nil }
func (s *pgxSource) Values() ([]any, error) {
	r := &s.rows[s.i]
	o := &r.Order
	if s.staging {
		return []any{s.batchID, int32(s.i), o.OrderID, o.ProductID, o.Currency, o.ZipCode,
			int32(o.Quantity), stage.Cents(o.UnitPriceCents), o.OrderTimestamp, r.Enriched()}, nil
	}
	var usd any
	if r.TotalUSDCents != nil {
		usd = stage.Cents(*r.TotalUSDCents)
	}
	return []any{o.OrderID, o.CustomerID, o.ProductID, r.ProductName, r.Category,
		int32(o.Quantity), stage.Cents(o.UnitPriceCents), o.Currency, stage.Cents(r.TotalCents), usd,
		o.ZipCode, r.City, r.State, r.Country, r.ShippingZone, o.OrderTimestamp, r.RawData}, nil
}

// awkwardRows are rows whose values stress the binary encoding: negative,
// zero and 14-digit amounts, pre-2000 and year-9999 timestamps, NULL
// enrichment, Unicode and quotes.
func awkwardRows(t *testing.T, env *testenv.Env) []transform.Row {
	t.Helper()
	snap, err := lookup.Load(context.Background(), env.PG, env.Tables)
	require.NoError(t, err)
	cents := []int64{0, 1, -1, 5, 10, 50, 99, 100, 101, 999, 1000, 9999, 10000, 10001, 123456, -123456,
		99999999, 100000000, 100000001, 1234567890123, -1234567890123, 99999999999999, -99999999999999}
	times := []time.Time{
		time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 1500, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	}
	name, emptyish := "Ünïcødé \"quoted\" \\ name", ""
	var rows []transform.Row
	for i, c := range cents {
		o := order.Order{OrderID: fmt.Sprintf("ORD-%d", i), CustomerID: "CUST-1", ProductID: "PROD-001",
			Quantity: int64(i%3 + 1), UnitPriceCents: c, Currency: "USD", ZipCode: "10001", OrderTimestamp: times[i%len(times)]}
		r := transform.One(o, snap)
		r.TotalCents = c * int64(i%3+1) / 7
		if i%4 == 0 {
			r.TotalUSDCents, r.City, r.ShippingZone = nil, nil, nil
		}
		if i%5 == 0 {
			r.ProductName, r.Category = &name, &emptyish
		}
		rows = append(rows, r)
	}
	return rows
}

// requireSameRows requires the two sources (FROM clauses) to hold the same
// rows, compared as cols.
func requireSameRows(t *testing.T, tx pgx.Tx, cols, ours, pgxs string) {
	t.Helper()
	var diff int64
	q := fmt.Sprintf(`SELECT count(*) FROM ((SELECT %[1]s FROM %[2]s EXCEPT ALL SELECT %[1]s FROM %[3]s)
		UNION ALL (SELECT %[1]s FROM %[3]s EXCEPT ALL SELECT %[1]s FROM %[2]s)) d`, cols, ours, pgxs)
	require.NoError(t, tx.QueryRow(context.Background(), q).Scan(&diff))
	require.Zero(t, diff, "rows copied by our encoder differ from pgx's")
}

// TestCopyEncodingMatchesPgx stages the same awkward rows through Copy and
// through pgx's generic CopyFrom and requires PostgreSQL to hold the same
// values for both.
func TestCopyEncodingMatchesPgx(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	rows := awkwardRows(t, env)
	tx, err := env.PG.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	n, err := stage.Copy(ctx, tx, env.Tables, "b-ours", rows)
	require.NoError(t, err)
	require.Equal(t, int64(len(rows)), n)
	n, err = tx.CopyFrom(ctx, env.Tables.StagingIdent(), stage.Columns, &pgxSource{batchID: "b-pgx", staging: true, rows: rows, i: -1})
	require.NoError(t, err)
	require.Equal(t, int64(len(rows)), n)
	requireSameRows(t, tx, "row_no, order_id, product_id, currency, zip_code, quantity, unit_price::text, order_timestamp, enriched",
		env.Tables.Staging()+" WHERE batch_id = 'b-ours'", env.Tables.Staging()+" WHERE batch_id = 'b-pgx'")
	rs, err := tx.Query(ctx, "SELECT unit_price::text FROM "+env.Tables.Staging()+" WHERE batch_id = 'b-ours' ORDER BY row_no")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rs, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, got, len(rows))
	require.Contains(t, got, "-999999999999.99")
	require.Contains(t, got, "0.05")
}

// TestCopyOrdersEncodingMatchesPgx copies the same awkward rows into two
// tables shaped like orders (without its checks, which the rows break on
// purpose) through CopyOrders and through pgx, and compares them.
func TestCopyOrdersEncodingMatchesPgx(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	rows := awkwardRows(t, env)
	tx, err := env.PG.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	ours, theirs := pgx.Identifier{env.Schema, "orders_ours"}, pgx.Identifier{env.Schema, "orders_pgx"}
	for _, tbl := range []pgx.Identifier{ours, theirs} {
		_, err := tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS)", tbl.Sanitize(), env.Tables.Orders()))
		require.NoError(t, err)
		_, err = tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER product_name DROP NOT NULL, ALTER category DROP NOT NULL, "+
			"ALTER total_amount_usd DROP NOT NULL, ALTER city DROP NOT NULL, ALTER shipping_zone DROP NOT NULL", tbl.Sanitize()))
		require.NoError(t, err)
	}
	n, err := stage.CopyOrders(ctx, tx.Conn().PgConn(), ours, rows)
	require.NoError(t, err)
	require.Equal(t, int64(len(rows)), n)
	n, err = tx.CopyFrom(ctx, theirs, stage.OrderColumns, &pgxSource{rows: rows, i: -1})
	require.NoError(t, err)
	require.Equal(t, int64(len(rows)), n)
	cols := "order_id, customer_id, product_id, product_name, category, quantity, unit_price::text, currency, " +
		"total_amount::text, total_amount_usd::text, zip_code, city, state, country, shipping_zone, order_timestamp, raw_data::text"
	requireSameRows(t, tx, cols, ours.Sanitize(), theirs.Sanitize())
}

// TestCopyOrdersEncoding copies rows into a table shaped like orders with
// CopyOrders and reads the amounts back.
func TestCopyOrdersEncoding(t *testing.T) {
	env := testenv.New(t)
	ctx := context.Background()
	snap, err := lookup.Load(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	_, err = env.PG.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", pgx.Identifier{env.Schema, "orders_copy"}.Sanitize(), env.Tables.Orders()))
	require.NoError(t, err)
	o := order.Order{OrderID: "ORD-1", CustomerID: "CUST-1", ProductID: "PROD-001", Quantity: 3, UnitPriceCents: 1999,
		Currency: "EUR", ZipCode: "10001", OrderTimestamp: time.Date(2024, 5, 1, 12, 30, 0, 123456000, time.UTC)}
	rows := transform.Apply([]order.Order{o}, snap)
	conn, err := env.PG.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	n, err := stage.CopyOrders(ctx, conn.Conn().PgConn(), pgx.Identifier{env.Schema, "orders_copy"}, rows)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	var price, total string
	var ts time.Time
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT unit_price::text, total_amount::text, order_timestamp FROM "+
		pgx.Identifier{env.Schema, "orders_copy"}.Sanitize()).Scan(&price, &total, &ts))
	require.Equal(t, "19.99", price)
	require.Equal(t, "59.97", total)
	require.True(t, o.OrderTimestamp.Equal(ts), "timestamp %s != %s", ts, o.OrderTimestamp)
}

// clientCPU is this process's user and system CPU time so far, in
// nanoseconds: what the client side of a COPY costs, apart from the server.
// In BenchmarkCopyPromote it includes generating the rows outside the timer.
func clientCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
