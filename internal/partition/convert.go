package partition

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redpg/redpg/internal/schema"
)

// Report says what Convert did.
type Report struct {
	AlreadyPartitioned bool          `json:"already_partitioned"`
	Rows               int64         `json:"rows"`       // rows copied into the partitioned table
	Partitions         int           `json:"partitions"` // monthly partitions created
	Indexes            []string      `json:"indexes"`    // indexes carried over
	Views              []string      `json:"views"`      // views recreated over the new table
	Elapsed            time.Duration `json:"elapsed_ns"`
}

// building is the partitioned table's name until it replaces orders.
const building = "orders_partitioning"

// Convert replaces t's unpartitioned orders with one partitioned by month
// of order_timestamp, in one transaction: either every row is in the new
// table and orders is it, or nothing changed. It holds an ACCESS EXCLUSIVE
// lock on orders throughout, so workers wait (stop them first: a worker
// started before the change does not write the registry).
//
// The new table is built from the live one: its columns, defaults, checks
// and NOT NULLs (CREATE TABLE ... LIKE), its foreign keys, its indexes, and
// the views and materialized views over it, recreated from their current
// definitions and refreshed. The primary key becomes (order_id,
// order_timestamp) and the registry order_ids gets every order id. Monthly
// partitions cover the oldest row's month (at most MaxBackfillMonths back)
// through ahead months from now, with a default partition for the rest.
//
// Not carried over: grants, triggers, row-level policies, identity columns
// (refused), unique indexes without order_timestamp (refused), and foreign
// keys that point at orders from other tables (refused).
func Convert(ctx context.Context, db DB, t schema.Tables, now time.Time, ahead int) (Report, error) {
	start := time.Now()
	var rep Report
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rep = Report{}
		// Definitions read below come back unqualified and are replayed in
		// the same schema.
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+pgx.Identifier{t.Schema}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE "+t.Orders()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock orders: %w", err)
		}
		ok, err := Detect(ctx, tx, t)
		if err != nil || ok {
			rep.AlreadyPartitioned = ok
			return err
		}
		def, err := readDefinition(ctx, tx, t)
		if err != nil {
			return err
		}
		if err := def.build(ctx, tx, t, now, ahead, &rep); err != nil {
			return err
		}
		return nil
	})
	rep.Elapsed = time.Since(start)
	return rep, err
}

// definition is what Convert reads of the live orders table.
type definition struct {
	idType    string      // order_id's type
	pkName    string      // the primary key constraint's name
	indexes   []namedSQL  // CREATE INDEX statements, the primary key's excluded
	fks       []namedSQL  // constraint name and definition
	owned     [][2]string // sequences owned by a column: sequence, column
	views     []view      // views over orders
	oldest    *time.Time  // min(order_timestamp), nil when empty
	liveCount int64
}

type namedSQL struct{ name, sql string }

type view struct {
	name         string
	materialized bool
	query        string
	indexes      []string
}

func readDefinition(ctx context.Context, tx pgx.Tx, t schema.Tables) (*definition, error) {
	d := &definition{}
	const rel = "'orders'::regclass"
	if err := tx.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "+rel+
		" AND attname = 'order_id' AND NOT attisdropped").Scan(&d.idType); err != nil {
		return nil, fmt.Errorf("read orders.order_id: %w", err)
	}
	var identity []string
	if err := collect(ctx, tx, "SELECT attname::text FROM pg_attribute WHERE attrelid = "+rel+" AND attidentity <> '' AND NOT attisdropped",
		appendString(&identity)); err != nil {
		return nil, err
	}
	if len(identity) > 0 {
		return nil, fmt.Errorf("orders has identity columns (%s), which a partitioned copy cannot carry over", strings.Join(identity, ", "))
	}
	var referencing []string
	if err := collect(ctx, tx, "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND confrelid = "+rel,
		appendString(&referencing)); err != nil {
		return nil, err
	}
	if len(referencing) > 0 {
		return nil, fmt.Errorf("foreign keys of %s point at orders; a partitioned orders has no key on order_id alone for them", strings.Join(referencing, ", "))
	}
	err := collect(ctx, tx, `SELECT c.relname::text, pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique,
			(SELECT attnum FROM pg_attribute WHERE attrelid = i.indrelid AND attname = 'order_timestamp') = ANY (i.indkey)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = `+rel+` ORDER BY c.relname`,
		func(r pgx.Rows) error {
			var name, sql string
			var primary, unique, hasKey bool
			if err := r.Scan(&name, &sql, &primary, &unique, &hasKey); err != nil {
				return err
			}
			switch {
			case primary:
				d.pkName = name
			case unique && !hasKey:
				return fmt.Errorf("unique index %s does not contain order_timestamp, so a partitioned orders cannot keep it", name)
			default:
				d.indexes = append(d.indexes, namedSQL{name, sql})
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if d.pkName == "" {
		return nil, errors.New("orders has no primary key")
	}
	if err := collect(ctx, tx, "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' AND conrelid = "+rel+" ORDER BY conname",
		func(r pgx.Rows) error {
			var n namedSQL
			err := r.Scan(&n.name, &n.sql)
			d.fks = append(d.fks, n)
			return err
		}); err != nil {
		return nil, err
	}
	if err := collect(ctx, tx, `SELECT s.oid::regclass::text, a.attname::text FROM pg_depend d
			JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.refobjid = `+rel+` AND d.deptype = 'a'`,
		func(r pgx.Rows) error {
			var o [2]string
			err := r.Scan(&o[0], &o[1])
			d.owned = append(d.owned, o)
			return err
		}); err != nil {
		return nil, err
	}
	if err := collect(ctx, tx, `SELECT DISTINCT c.oid::bigint, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid)
		FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class c ON c.oid = w.ev_class
		WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = `+rel+` AND c.oid <> `+rel+` ORDER BY 1`,
		func(r pgx.Rows) error {
			var v view
			var oid int64
			err := r.Scan(&oid, &v.name, &v.materialized, &v.query)
			d.views = append(d.views, v)
			return err
		}); err != nil {
		return nil, err
	}
	for i := range d.views {
		v := &d.views[i]
		if err := collect(ctx, tx, "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass ORDER BY indexrelid",
			appendString(&v.indexes),
			pgx.Identifier{t.Schema, v.name}.Sanitize()); err != nil {
			return nil, err
		}
	}
	if err := tx.QueryRow(ctx, "SELECT min(order_timestamp), count(*) FROM "+t.Orders()).Scan(&d.oldest, &d.liveCount); err != nil {
		return nil, fmt.Errorf("read orders' oldest row: %w", err)
	}
	return d, nil
}

// collect runs sql and calls each for every row.
func collect(ctx context.Context, tx pgx.Tx, sql string, each func(pgx.Rows) error, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// appendString is a collect callback appending a one-column row to dst.
func appendString(dst *[]string) func(pgx.Rows) error {
	return func(r pgx.Rows) error {
		var s string
		err := r.Scan(&s)
		*dst = append(*dst, s)
		return err
	}
}

// build creates the partitioned table from d, fills it and the registry,
// and puts it in orders' place.
func (d *definition) build(ctx context.Context, tx pgx.Tx, t schema.Tables, now time.Time, ahead int, rep *Report) error {
	q := func(name string) string { return pgx.Identifier{t.Schema, name}.Sanitize() }
	exec := func(sql string, args ...any) error {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("%s: %w", firstWords(sql), err)
		}
		return nil
	}
	if err := exec(fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED
		INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (order_timestamp)`, q(building), t.Orders())); err != nil {
		return err
	}
	first, last := monthStart(now), monthStart(now).AddDate(0, ahead, 0)
	if d.oldest != nil && d.oldest.Before(first) {
		first = monthStart(*d.oldest)
	}
	if floor := monthStart(now).AddDate(0, -MaxBackfillMonths, 0); first.Before(floor) {
		first = floor
	}
	for m := first; !m.After(last); m = m.AddDate(0, 1, 0) {
		if err := exec(createSQL(t, q(building), m)); err != nil {
			return err
		}
		rep.Partitions++
	}
	if err := exec(fmt.Sprintf("CREATE TABLE %s PARTITION OF %s DEFAULT", q(DefaultPartition), q(building))); err != nil {
		return err
	}
	// Rows first, keys and indexes after: building an index once is much
	// cheaper than maintaining it row by row.
	tag, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s SELECT * FROM %s", q(building), t.Orders()))
	if err != nil {
		return fmt.Errorf("copy rows: %w", err)
	}
	rep.Rows = tag.RowsAffected()
	if rep.Rows != d.liveCount {
		return fmt.Errorf("copied %d rows of %d", rep.Rows, d.liveCount)
	}
	if err := exec(fmt.Sprintf("CREATE TABLE %s (order_id %s NOT NULL)", t.OrderIDs(), d.idType)); err != nil {
		return err
	}
	if err := exec(fmt.Sprintf("INSERT INTO %s SELECT order_id FROM %s", t.OrderIDs(), t.Orders())); err != nil {
		return err
	}
	if err := exec(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT order_ids_pkey PRIMARY KEY (order_id)", t.OrderIDs())); err != nil {
		return err
	}
	if err := exec(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (partition text PRIMARY KEY, range_start timestamptz NOT NULL,
		range_end timestamptz NOT NULL, rows bigint NOT NULL, dropped_at timestamptz NOT NULL DEFAULT now())`, q(RetiredTable))); err != nil {
		return err
	}
	for _, o := range d.owned {
		if err := exec(fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", o[0], q(building), pgx.Identifier{o[1]}.Sanitize())); err != nil {
			return err
		}
	}
	for i := len(d.views) - 1; i >= 0; i-- {
		kind := "VIEW"
		if d.views[i].materialized {
			kind = "MATERIALIZED VIEW"
		}
		if err := exec(fmt.Sprintf("DROP %s %s", kind, q(d.views[i].name))); err != nil {
			return err
		}
	}
	if err := exec("DROP TABLE " + t.Orders()); err != nil {
		return err
	}
	if err := exec(fmt.Sprintf("ALTER TABLE %s RENAME TO orders", q(building))); err != nil {
		return err
	}
	if err := exec(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY (order_id, order_timestamp)",
		t.Orders(), pgx.Identifier{d.pkName}.Sanitize())); err != nil {
		return err
	}
	for _, ix := range d.indexes {
		if err := exec(ix.sql); err != nil {
			return err
		}
		rep.Indexes = append(rep.Indexes, ix.name)
	}
	for _, fk := range d.fks {
		if err := exec(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", t.Orders(), pgx.Identifier{fk.name}.Sanitize(), fk.sql)); err != nil {
			return err
		}
	}
	for _, v := range d.views {
		kind := "VIEW"
		if v.materialized {
			kind = "MATERIALIZED VIEW"
		}
		if err := exec(fmt.Sprintf("CREATE %s %s AS %s", kind, q(v.name), strings.TrimSuffix(strings.TrimSpace(v.query), ";"))); err != nil {
			return err
		}
		for _, ix := range v.indexes {
			if err := exec(ix); err != nil {
				return err
			}
		}
		rep.Views = append(rep.Views, v.name)
	}
	// Autovacuum analyses partitions but never a partitioned parent.
	return exec("ANALYZE " + t.Orders() + ", " + t.OrderIDs())
}

// firstWords names a statement in an error without its whole text.
func firstWords(sql string) string {
	f := strings.Fields(sql)
	return strings.Join(f[:min(len(f), 4)], " ")
}
