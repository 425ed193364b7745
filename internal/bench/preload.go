package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// preloadChunk is how many rows one preload statement inserts.
const preloadChunk = 500000

// preload fills orders with Preload generated rows, shaped like the
// pipeline's (ids, customers, products, zip codes, a JSONB raw_data of the
// same size), with timestamps spread over the 30 days before the run.
// Indexes and constraints are dropped first and rebuilt after, which is
// much faster than maintaining them row by row; the table is then vacuumed
// and analysed, as autovacuum would leave it, and the views refreshed.
func (r *runner) preload(ctx context.Context) error {
	n := r.cfg.Preload
	r.progress("preload", 0, n)
	conn, err := r.cfg.PG.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '256MB'"); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET maintenance_work_mem") }()
	orders := r.tables.Orders()

	// Remember and drop the constraints (primary key, foreign key) and the
	// other indexes.
	type def struct{ name, sql string }
	var cons, idx []def
	rows, err := conn.Query(ctx, `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = $1::regclass AND contype IN ('p', 'f', 'u') ORDER BY contype DESC`, orders)
	if err != nil {
		return err
	}
	var d def
	if _, err := pgx.ForEachRow(rows, []any{&d.name, &d.sql}, func() error { cons = append(cons, d); return nil }); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, `SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
		WHERE x.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`, orders)
	if err != nil {
		return err
	}
	if _, err := pgx.ForEachRow(rows, []any{&d.name, &d.sql}, func() error { idx = append(idx, d); return nil }); err != nil {
		return err
	}
	for _, c := range cons {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", orders, pgx.Identifier{c.name}.Sanitize())); err != nil {
			return err
		}
	}
	for _, i := range idx {
		if _, err := conn.Exec(ctx, "DROP INDEX "+pgx.Identifier{r.tables.Schema, i.name}.Sanitize()); err != nil {
			return err
		}
	}

	insert := fmt.Sprintf(`
WITH p AS (
  SELECT array_agg(product_id ORDER BY product_id) AS id, array_agg(product_name ORDER BY product_id) AS name,
         array_agg(category ORDER BY product_id) AS cat, array_agg(base_price ORDER BY product_id) AS price
  FROM %[2]s
), z AS (
  SELECT array_agg(zip_code ORDER BY zip_code) AS zip, array_agg(city ORDER BY zip_code) AS city,
         array_agg(state ORDER BY zip_code) AS state, array_agg(country ORDER BY zip_code) AS country,
         array_agg(shipping_zone ORDER BY zip_code) AS zone
  FROM %[3]s
)
INSERT INTO %[1]s (order_id, customer_id, product_id, product_name, category, quantity, unit_price, currency,
                   total_amount, total_amount_usd, zip_code, city, state, country, shipping_zone,
                   order_timestamp, raw_data, processed_at)
SELECT o.id, o.cust, p.id[o.pi], p.name[o.pi], p.cat[o.pi], o.q, p.price[o.pi], 'USD',
       p.price[o.pi] * o.q, p.price[o.pi] * o.q, z.zip[o.zi], z.city[o.zi], z.state[o.zi], z.country[o.zi], z.zone[o.zi],
       o.ts,
       jsonb_build_object('order_id', o.id, 'customer_id', o.cust, 'product_id', p.id[o.pi], 'quantity', o.q,
                          'unit_price', p.price[o.pi]::text, 'currency', 'USD', 'zip_code', z.zip[o.zi],
                          'order_timestamp', to_char(o.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          'user_agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
                          'ip', '198.51.' || (g %% 250) || '.' || (g %% 200 + 1), 'session_id', 'sess-preload-' || (g / 7)),
       o.ts
FROM p, z, generate_series($1::bigint, $2::bigint) AS g,
LATERAL (SELECT 'PRE-' || lpad(g::text, 10, '0') AS id, 'CUST-' || lpad((g %% 1000 + 1)::text, 5, '0') AS cust,
                (g %% cardinality(p.id) + 1)::int AS pi, (g * 7 %% cardinality(z.zip) + 1)::int AS zi,
                (1 + g %% 5)::int AS q,
                $4::timestamptz - interval '30 days' + (g::float8 / $3) * interval '30 days' AS ts) AS o`,
		orders, r.tables.Products(), r.tables.Zips())
	for from := 1; from <= n; from += preloadChunk {
		to := min(from+preloadChunk-1, n)
		if _, err := conn.Exec(ctx, insert, from, to, n, r.gen.Now.Add(-2*time.Hour)); err != nil {
			return err
		}
		r.progress("preload", to, n)
	}

	r.progress("preload: rebuild indexes", 0, 0)
	for _, c := range cons {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", orders, pgx.Identifier{c.name}.Sanitize(), c.sql)); err != nil {
			return err
		}
	}
	for _, i := range idx {
		if _, err := conn.Exec(ctx, i.sql); err != nil {
			return err
		}
	}
	r.progress("preload: vacuum, analyse, refresh views", 0, 0)
	if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+orders); err != nil {
		return err
	}
	for _, v := range []string{"sales_hourly", "product_performance_daily", "shipping_zone_stats"} {
		if _, err := conn.Exec(ctx, "REFRESH MATERIALIZED VIEW "+r.tables.View(v)); err != nil {
			return err
		}
	}
	r.checkpoint(ctx)
	return nil
}
