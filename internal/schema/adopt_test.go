package schema_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

// column is one column of a table or view, with its type's category
// (pg_type.typcategory: S string, N numeric, D date/time, ...).
type column struct{ name, category string }

// columnsOf lists every table's and view's columns in schemaName.
func columnsOf(t *testing.T, pool *pgxpool.Pool, schemaName string) map[string][]column {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT c.relname::text, a.attname::text, ty.typcategory::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'v', 'p')`, schemaName)
	require.NoError(t, err)
	out := map[string][]column{}
	var rel string
	var c column
	_, err = pgx.ForEachRow(rows, []any{&rel, &c.name, &c.category}, func() error {
		out[rel] = append(out[rel], c)
		return nil
	})
	require.NoError(t, err)
	return out
}

// requireReferenceNames fails unless every column of the reference's
// tables and views (but its staging table, which readers never query)
// exists in got under the same name, with a type of the same category.
func requireReferenceNames(t *testing.T, reference, got map[string][]column) {
	t.Helper()
	require.Len(t, reference, 8, "the reference's init.sql creates 5 tables and 3 views: %v", reference)
	for rel, cols := range reference {
		if rel == "orders_staging" {
			continue
		}
		for _, c := range cols {
			require.Contains(t, got[rel], c, "%s.%s", rel, c.name)
		}
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}

// lookupColumns are the reference's lookup tables and the columns that
// make up their rows.
var lookupColumns = []struct{ table, cols string }{
	{"product_catalog", "product_id, product_name, category, base_price"},
	{"currency_rates", "currency_code, rate_to_usd"},
	{"zip_code_zones", "zip_code, city, state, country, timezone, shipping_zone"},
}

// A fresh schema gets exactly the reference's lookup rows and every name
// the reference's tables and views have; both are compared with what the
// reference's own init.sql creates, in the same database.
func TestFreshSchemaHasTheReferenceRowsAndNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.ReferenceDatabase(t), 4)
	const fresh = "redpg_fresh"
	_, err := schema.Migrate(ctx, pool, fresh)
	require.NoError(t, err)

	for _, l := range lookupColumns {
		ref, own := pgx.Identifier{"public", l.table}.Sanitize(), pgx.Identifier{fresh, l.table}.Sanitize()
		require.Equal(t, count(t, pool, "SELECT count(*) FROM "+ref), count(t, pool, "SELECT count(*) FROM "+own), l.table)
		require.Positive(t, count(t, pool, "SELECT count(*) FROM "+own), l.table)
		require.Zero(t, count(t, pool, fmt.Sprintf(`SELECT count(*) FROM (
			(SELECT %[1]s FROM %[2]s EXCEPT ALL SELECT %[1]s FROM %[3]s)
			UNION ALL
			(SELECT %[1]s FROM %[3]s EXCEPT ALL SELECT %[1]s FROM %[2]s)) d`, l.cols, ref, own)),
			"%s differs from the reference's rows", l.table)
	}
	requireReferenceNames(t, columnsOf(t, pool, "public"), columnsOf(t, pool, fresh))
}

// stageAsTheReference writes orders into the reference's staging table the
// way its consumer did (naive timestamps, raw_data nested).
const stageAsTheReference = `INSERT INTO orders_staging
	(order_id, customer_id, product_id, quantity, unit_price, currency, zip_code, order_timestamp, raw_data) VALUES `

func TestAdoptTheReferenceDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.ReferenceDatabase(t), 4)
	before := columnsOf(t, pool, "public")

	// The reference at work: three orders staged and promoted by its own
	// function, views refreshed by its own function, one more staged and
	// left there (its consumer stopped before `promote`).
	_, err := pool.Exec(ctx, stageAsTheReference+`
		('REF-1', 'CUST-1', 'PROD-001', 1, 1299.99, 'USD', '10001', '2026-01-15 10:00:00', '{"user_agent": "ua", "ip_address": "10.0.0.1", "session_id": "s-1"}'),
		('REF-2', 'CUST-2', 'PROD-002', 1, 1000, 'JPY', 'M5H2N2', '2026-01-15 10:30:00', NULL),
		('REF-3', 'CUST-2', 'PROD-005', 2, 100, 'EUR', 'V6B1A1', '2026-01-16 23:30:00', '{}')`)
	require.NoError(t, err)
	var inserted int64
	require.NoError(t, pool.QueryRow(ctx, "SELECT * FROM promote_staging_to_production()").Scan(&inserted))
	require.Equal(t, int64(3), inserted)
	_, err = pool.Exec(ctx, "SELECT refresh_all_materialized_views()")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, stageAsTheReference+`
		('REF-9', 'CUST-9', 'PROD-003', 2, 49.99, 'CAD', 'V6B1A1', '2026-01-17 08:00:00', '{"user_agent": "ua9", "ip_address": "10.0.0.9", "session_id": "s-9"}')`)
	require.NoError(t, err)

	applied, err := schema.MigrateWith(ctx, pool, "public", schema.Options{NaiveTimeZone: "America/New_York"})
	require.NoError(t, err)
	migs, err := schema.Migrations()
	require.NoError(t, err)
	require.Len(t, applied, len(migs))
	require.Equal(t, int64(4), count(t, pool, "SELECT count(*) FROM redpg_migrations WHERE version < 5 AND name LIKE '%adopted%'"),
		"001-004 are recorded as adopted, not run")
	again, err := schema.Migrate(ctx, pool, "public")
	require.NoError(t, err)
	require.Empty(t, again)

	// Every lookup row is kept as the reference wrote it.
	require.Equal(t, int64(15), count(t, pool, "SELECT count(*) FROM product_catalog"))
	require.Equal(t, int64(7), count(t, pool, "SELECT count(*) FROM currency_rates"))
	require.Equal(t, int64(10), count(t, pool, "SELECT count(*) FROM zip_code_zones"))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM product_catalog
		WHERE product_id = 'PROD-001' AND product_name = 'Laptop Pro 15"' AND base_price = 1299.99 AND created_at IS NOT NULL`))
	require.Equal(t, int64(1), count(t, pool, "SELECT count(*) FROM currency_rates WHERE currency_code = 'JPY' AND rate_to_usd = 149.5"))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM zip_code_zones
		WHERE zip_code = 'M5H2N2' AND timezone = 'America/Toronto' AND shipping_zone = 1`))

	// Every order is kept; naive times were New York's.
	require.Equal(t, int64(3), count(t, pool, "SELECT count(*) FROM orders"))
	var ts, processed time.Time
	var total, usd, rawID, rawTS string
	require.NoError(t, pool.QueryRow(ctx, `SELECT order_timestamp, processed_at, total_amount::text, total_amount_usd::text,
		raw_data->>'order_id', raw_data->>'order_timestamp' FROM orders WHERE order_id = 'REF-1'`).
		Scan(&ts, &processed, &total, &usd, &rawID, &rawTS))
	require.True(t, ts.Equal(time.Date(2026, 1, 15, 15, 0, 0, 0, time.UTC)), "10:00 in New York is 15:00 UTC, got %s", ts)
	require.False(t, processed.IsZero())
	require.Equal(t, []string{"1299.99", "1299.99", "REF-1", "2026-01-15T15:00:00.000000Z"}, []string{total, usd, rawID, rawTS})
	require.NoError(t, pool.QueryRow(ctx, "SELECT total_amount::text, total_amount_usd::text FROM orders WHERE order_id = 'REF-2'").
		Scan(&total, &usd))
	require.Equal(t, []string{"1000.00", "149500.00"}, []string{total, usd},
		"an order the reference promoted keeps its (multiplied) USD total; docs/MIGRATING.md shows how to correct it")

	// The reference's tables, columns and view columns all still read.
	requireReferenceNames(t, before, columnsOf(t, pool, "public"))
	require.Equal(t, int64(4), count(t, pool, "SELECT sum(total_units)::bigint FROM sales_hourly"))
	require.Equal(t, int64(4), count(t, pool, "SELECT sum(total_units_sold)::bigint FROM product_performance_daily"))
	require.Equal(t, int64(2), count(t, pool, "SELECT count(*) FROM shipping_zone_stats WHERE country = 'CA'"))
	_, err = pool.Exec(ctx, "SELECT refresh_all_materialized_views()")
	require.NoError(t, err, "the reference's refresh function still refreshes the (recreated) views")

	// Staging is redpg's, UNLOGGED and empty; what the reference left there
	// is a dead letter that decodes as an order.
	var persistence string
	require.NoError(t, pool.QueryRow(ctx, "SELECT relpersistence::text FROM pg_class WHERE oid = 'orders_staging'::regclass").Scan(&persistence))
	require.Equal(t, "u", persistence)
	require.Zero(t, count(t, pool, "SELECT count(*) FROM orders_staging WHERE batch_id IS NOT NULL"))
	var payload []byte
	require.NoError(t, pool.QueryRow(ctx, "SELECT raw_payload FROM orders_rejected WHERE reason = $1",
		schema.ReasonReferenceStaging).Scan(&payload))
	o, err := order.Decode(payload)
	require.NoError(t, err, "%s", payload)
	require.Equal(t, "REF-9", o.OrderID)
	require.Equal(t, int64(4999), o.UnitPriceCents)
	require.Equal(t, int64(2), o.Quantity)
	require.Equal(t, "CAD", o.Currency)
	require.True(t, o.OrderTimestamp.Equal(time.Date(2026, 1, 17, 13, 0, 0, 0, time.UTC)), "got %s", o.OrderTimestamp)

	// The ledger accounts for what was there.
	var received, promoted, rejected int64
	require.NoError(t, pool.QueryRow(ctx, "SELECT received, promoted, rejected FROM pipeline_batches WHERE status = 'adopted'").
		Scan(&received, &promoted, &rejected))
	require.Equal(t, []int64{4, 3, 1}, []int64{received, promoted, rejected})

	// The reference's promote (and its TRUNCATE) is gone.
	_, err = pool.Exec(ctx, "SELECT * FROM promote_staging_to_production()")
	require.ErrorContains(t, err, "retired")
}

// An unknown zone fails the migration before anything changed, and a
// later run, with 001-004 already recorded as adopted, finishes adoption.
func TestAdoptRejectsAnUnknownTimeZone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.ReferenceDatabase(t), 4)
	_, err := schema.MigrateWith(ctx, pool, "public", schema.Options{NaiveTimeZone: "Mars/Olympus_Mons"})
	require.ErrorContains(t, err, "Mars/Olympus_Mons")
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM pg_attribute
		WHERE attrelid = 'orders'::regclass AND attname = 'order_timestamp' AND atttypid = 'timestamp'::regtype`))
	require.Zero(t, count(t, pool, "SELECT count(*) FROM redpg_migrations WHERE version >= 5"))

	applied, err := schema.Migrate(ctx, pool, "public")
	require.NoError(t, err)
	require.Equal(t, 5, applied[0], "001-004 stay adopted, not run")
	require.Equal(t, int64(1), count(t, pool, "SELECT count(*) FROM pipeline_batches WHERE status = 'adopted'"))
}

// order_timestamp converted by hand before migrating (in a zone of the
// operator's choosing) is left as it is.
func TestAdoptKeepsATimestampConvertedBeforehand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.ReferenceDatabase(t), 4)
	_, err := pool.Exec(ctx, stageAsTheReference+`('REF-1', 'CUST-1', 'PROD-001', 1, 1299.99, 'USD', '10001', '2026-01-15 10:00:00', NULL);
		SELECT * FROM promote_staging_to_production();
		DROP MATERIALIZED VIEW sales_hourly, product_performance_daily;
		ALTER TABLE orders ALTER COLUMN order_timestamp TYPE timestamptz USING order_timestamp AT TIME ZONE 'Asia/Tokyo'`)
	require.NoError(t, err)
	_, err = schema.Migrate(ctx, pool, "public")
	require.NoError(t, err)
	var ts time.Time
	require.NoError(t, pool.QueryRow(ctx, "SELECT order_timestamp FROM orders WHERE order_id = 'REF-1'").Scan(&ts))
	require.True(t, ts.Equal(time.Date(2026, 1, 15, 1, 0, 0, 0, time.UTC)), "10:00 in Tokyo is 01:00 UTC, got %s", ts)
}

// A schema with tables of its own but no redpg history is neither fresh
// nor the reference's: Migrate refuses it instead of failing halfway.
func TestMigrateRefusesAForeignSchema(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "t_foreign_" + testenv.ID()
	t.Cleanup(func() { _ = schema.Drop(context.Background(), env.PG, name) })
	_, err := env.PG.Exec(ctx, "CREATE SCHEMA "+name+"; CREATE TABLE "+name+".orders (id integer)")
	require.NoError(t, err)
	_, err = schema.Migrate(ctx, env.PG, name)
	require.ErrorContains(t, err, "not a database the Python reference's init.sql created")
	require.Zero(t, env.Count(t, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"+
		" WHERE n.nspname = $1 AND c.relname = 'product_catalog'", name))
}

// A schema redpg created before 005: the invented lookup rows nobody
// changed become the reference's, rows someone changed or an order still
// names stay, zones become numbers and the columns take the reference's
// names.
func TestUpgradeARedpgSchemaFrom004(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "t_up_" + testenv.ID()
	t.Cleanup(func() { _ = schema.Drop(context.Background(), env.PG, name) })
	_, err := schema.MigrateWith(ctx, env.PG, name, schema.Options{Target: 4})
	require.NoError(t, err)
	tb := schema.Tables{Schema: name}

	_, err = env.PG.Exec(ctx, `
UPDATE `+tb.Products()+` SET base_price_usd = 13.99 WHERE product_id = 'PROD-015';
INSERT INTO `+tb.Zips()+` VALUES ('12345', 'Springfield', 'IL', 'US', 'Zone-7');
INSERT INTO `+tb.Orders()+` (order_id, customer_id, product_id, product_name, category, quantity, unit_price, currency,
    total_amount, total_amount_usd, zip_code, city, state, country, shipping_zone, order_timestamp, raw_data)
VALUES ('OLD-1', 'C1', 'PROD-001', 'Wireless Mouse', 'Electronics', 1, 24.99, 'USD', 24.99, 24.99,
        '94105', 'San Francisco', 'CA', 'US', 'Zone-4', now(), '{}'),
       ('OLD-2', 'C2', 'PROD-002', 'Mechanical Keyboard', 'Electronics', 1, 89.99, 'USD', 89.99, 89.99,
        '60601', 'Chicago', 'IL', 'US', 'Zone-2', now(), '{}')`)
	require.NoError(t, err)

	applied, err := schema.Migrate(ctx, env.PG, name)
	require.NoError(t, err)
	require.Equal(t, []int{5, 6, 7}, applied[:3])

	product := func(id string) (string, string) {
		var n, p string
		require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_name, base_price::text FROM "+tb.Products()+" WHERE product_id = $1", id).Scan(&n, &p))
		return n, p
	}
	n, p := product("PROD-001")
	require.Equal(t, []string{`Laptop Pro 15"`, "1299.99"}, []string{n, p}, "an invented row becomes the reference's, orders or not")
	n, p = product("PROD-015")
	require.Equal(t, []string{"Science Fiction Novel", "13.99"}, []string{n, p}, "a row someone changed is theirs")
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+tb.Currencies()+" WHERE currency_code = 'CAD' AND rate_to_usd = 1.35"))

	zip := func(code string) string {
		var s string
		err := env.PG.QueryRow(ctx, "SELECT concat_ws('|', city, timezone, shipping_zone) FROM "+tb.Zips()+" WHERE zip_code = $1", code).Scan(&s)
		if err == pgx.ErrNoRows {
			return "missing"
		}
		require.NoError(t, err)
		return s
	}
	require.Equal(t, "San Francisco|America/Los_Angeles|4", zip("94105"), "an invented zip an order names stays")
	require.Equal(t, "missing", zip("02108"), "an invented zip no order names goes")
	require.Equal(t, "Chicago|America/Chicago|1", zip("60601"))
	require.Equal(t, "Springfield|UTC|7", zip("12345"), "a zip added by hand keeps its zone; its time zone is unknown")
	require.Equal(t, "Toronto|America/Toronto|1", zip("M5H2N2"))
	require.Equal(t, int64(12), env.Count(t, "SELECT count(*) FROM "+tb.Zips()), "the reference's 10, 94105 and 12345")

	// Orders keep what they were promoted with; the zone is now a number.
	var zone int32
	var pname string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT shipping_zone, product_name FROM "+tb.Orders()+" WHERE order_id = 'OLD-1'").Scan(&zone, &pname))
	require.Equal(t, int32(4), zone)
	require.Equal(t, "Wireless Mouse", pname)
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+tb.View("shipping_zone_stats")+" WHERE shipping_zone = 2"))
	require.Zero(t, env.Count(t, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = $1 AND column_name IN ('units_per_usd', 'base_price_usd')`, name))
}

// Zones that hold no number stop the migration with what to fix.
func TestUpgradeStopsAtAZoneWithoutANumber(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "t_zone_" + testenv.ID()
	t.Cleanup(func() { _ = schema.Drop(context.Background(), env.PG, name) })
	_, err := schema.MigrateWith(ctx, env.PG, name, schema.Options{Target: 4})
	require.NoError(t, err)
	tb := schema.Tables{Schema: name}
	_, err = env.PG.Exec(ctx, "INSERT INTO "+tb.Zips()+" VALUES ('12345', 'Springfield', 'IL', 'US', 'EAST')")
	require.NoError(t, err)
	_, err = schema.Migrate(ctx, env.PG, name)
	require.ErrorContains(t, err, "'EAST' holds no zone number")
	require.Equal(t, int64(5), env.Count(t, "SELECT max(version) FROM "+pgx.Identifier{name, "redpg_migrations"}.Sanitize()),
		"005 applied, 006 rolled back whole")
}
