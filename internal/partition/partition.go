// Package partition partitions orders by month of order_timestamp, keeps
// partitions created ahead of the orders that will need them, and retires
// whole old months.
//
// Partitioning is opt-in and explicit (`redpg partition`), not a migration:
// it rewrites the whole table, and it reads the live table's definition
// (columns, checks, foreign keys, indexes, the views over it) instead of
// assuming one, so schema changes made by later migrations carry over.
//
// A partitioned table's primary key must contain the partition key, so
// (order_id, order_timestamp) alone would let one order id be stored twice
// under two timestamps. The registry table order_ids, with order_id as its
// own primary key, restores "an order id is stored at most once": promotion
// writes it in the same transaction as orders (package promote).
package partition

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/redpg/redpg/internal/schema"
)

// DefaultAhead is how many months after the current one Ensure keeps
// partitions for: three months of room if the periodic call stops.
const DefaultAhead = 3

// EnsureEvery is how often a running pipeline calls Ensure. A month boundary
// is then never closer than DefaultAhead months minus an hour.
const EnsureEvery = time.Hour

// MaxBackfillMonths bounds how many monthly partitions Convert creates for
// existing rows; older rows go to the default partition instead of into
// hundreds of near-empty months.
const MaxBackfillMonths = 120

// RetiredTable records every partition Retire dropped and how many rows it
// held, so that reconcile still balances the ledger after rows are gone.
const RetiredTable = "orders_retired"

// DefaultPartition catches rows outside every monthly range (very old
// orders, or a month nobody created yet), so a missing partition never
// fails a batch.
const DefaultPartition = "orders_pdefault"

// DB is what the package needs of a connection or pool.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Detect reports whether t's orders table is partitioned.
func Detect(ctx context.Context, db DB, t schema.Tables) (bool, error) {
	var kind string
	err := db.QueryRow(ctx, `SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = 'orders'`, t.Schema).Scan(&kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("is orders partitioned: %w", err)
	}
	return kind == "p", nil
}

// Name is the monthly partition holding month m (any instant in it, UTC).
func Name(m time.Time) string { return "orders_p" + monthStart(m).Format("200601") }

var nameRE = regexp.MustCompile(`^orders_p([0-9]{4})([0-9]{2})$`)

// monthOf parses a partition name made by Name, reporting false for other
// names (the default partition, or one an operator added by hand).
func monthOf(name string) (time.Time, bool) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	t, err := time.Parse("200601", m[1]+m[2])
	return t, err == nil
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// createSQL creates the partition for month m of parent, if missing.
func createSQL(t schema.Tables, parent string, m time.Time) string {
	from := monthStart(m)
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
		pgx.Identifier{t.Schema, Name(from)}.Sanitize(), parent,
		from.Format("2006-01-02 15:04:05Z07:00"), from.AddDate(0, 1, 0).Format("2006-01-02 15:04:05Z07:00"))
}

// Partition is one monthly partition of orders.
type Partition struct {
	Name  string    `json:"name"`
	From  time.Time `json:"from"` // inclusive
	To    time.Time `json:"to"`   // exclusive
	Bytes int64     `json:"bytes"`
}

// List returns the monthly partitions of orders, oldest first. The default
// partition and partitions not named by Name are left out.
func List(ctx context.Context, db DB, t schema.Tables) ([]Partition, error) {
	rows, err := db.Query(ctx, `SELECT c.relname::text, pg_total_relation_size(c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass($1)`, t.Orders())
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var out []Partition
	var name string
	var size int64
	_, err = pgx.ForEachRow(rows, []any{&name, &size}, func() error {
		if m, ok := monthOf(name); ok {
			out = append(out, Partition{Name: name, From: m, To: m.AddDate(0, 1, 0), Bytes: size})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	slices.SortFunc(out, func(a, b Partition) int { return a.From.Compare(b.From) })
	return out, nil
}

// lockKey serialises partition maintenance of one schema across processes.
func lockKey(t schema.Tables) int64 {
	h := fnv.New64a()
	h.Write([]byte("redpg partition maintenance " + t.Schema))
	return int64(h.Sum64())
}

// ensureLockTimeout bounds how long Ensure waits for the lock a new
// partition takes on orders. Running batches hold a weaker lock that
// conflicts with it, and every batch after Ensure would queue behind the
// waiting DDL; better to give up and try again at the next call.
const ensureLockTimeout = "5s"

// Ensure creates the monthly partitions from now's month through ahead
// months later that do not exist yet, and returns their names. It does
// nothing when orders is not partitioned. Many processes may call it at
// once.
func Ensure(ctx context.Context, db DB, t schema.Tables, now time.Time, ahead int) ([]string, error) {
	if ok, err := Detect(ctx, db, t); err != nil || !ok {
		return nil, err
	}
	have, err := List(ctx, db, t)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, p := range have {
		exists[p.Name] = true
	}
	var missing []time.Time
	for i := 0; i <= ahead; i++ {
		if m := monthStart(now).AddDate(0, i, 0); !exists[Name(m)] {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return nil, nil // the usual call: nothing to lock
	}
	var created []string
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+ensureLockTimeout+"'"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(t)); err != nil {
			return err
		}
		for _, m := range missing {
			if _, err := tx.Exec(ctx, createSQL(t, t.Orders(), m)); err != nil {
				return fmt.Errorf("create partition %s: %w", Name(m), err)
			}
			created = append(created, Name(m))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// ParseKeep reads a retention period: a whole number followed by mo
// (months), d (days) or y (years), such as 13mo, 400d or 2y. Months are
// calendar months, as partitions are.
func ParseKeep(s string) (months, days int, err error) {
	s = strings.TrimSpace(s)
	unit := strings.TrimLeft(s, "0123456789")
	num := s[:len(s)-len(unit)]
	if num == "" || len(num) > 5 {
		return 0, 0, fmt.Errorf("--keep %q: want a number and a unit, such as 13mo, 400d or 2y", s)
	}
	n := 0
	for _, c := range num {
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("--keep %q: must be more than zero", s)
	}
	switch unit {
	case "mo":
		return n, 0, nil
	case "y":
		return 12 * n, 0, nil
	case "d":
		return 0, n, nil
	}
	return 0, 0, fmt.Errorf("--keep %q: unit must be mo (months), d (days) or y (years)", s)
}

// Cutoff is the instant before which rows may be retired when keeping
// months and days back from now: a partition is dropped only when it ends
// at or before it, so no row younger than the retention period is lost.
func Cutoff(now time.Time, months, days int) time.Time {
	return now.UTC().AddDate(0, -months, -days)
}

// Retired is one partition Retire dropped (or, in a dry run, would drop).
type Retired struct {
	Partition
	Rows int64 `json:"rows"`
}

// Retire drops every monthly partition of orders that ends at or before
// cutoff, each in its own transaction: its order ids leave the registry,
// its row count goes into orders_retired, then the partition is dropped.
// With dryRun it only reports what it would drop. The default partition is
// never dropped.
//
// An order id leaves the registry with its partition, so a re-send of a
// retired order arriving after Retire (and after the Redis window, which
// holds ids only for DEDUP_WINDOW_SECONDS) is stored again as new.
func Retire(ctx context.Context, db DB, t schema.Tables, cutoff time.Time, dryRun bool) ([]Retired, error) {
	ok, err := Detect(ctx, db, t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("orders is not partitioned: run `redpg partition` first")
	}
	parts, err := List(ctx, db, t)
	if err != nil {
		return nil, err
	}
	var out []Retired
	for _, p := range parts {
		if p.To.After(cutoff) {
			break
		}
		r := Retired{Partition: p}
		ident := pgx.Identifier{t.Schema, p.Name}.Sanitize()
		if dryRun {
			if err := db.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&r.Rows); err != nil {
				return out, fmt.Errorf("count %s: %w", p.Name, err)
			}
			out = append(out, r)
			continue
		}
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(t)); err != nil {
				return err
			}
			// The lock the DROP needs anyway, taken first: no batch can add
			// a row to the partition between the count and the drop.
			if _, err := tx.Exec(ctx, "LOCK TABLE "+t.Orders()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s r USING %s p WHERE r.order_id = p.order_id", t.OrderIDs(), ident))
			if err != nil {
				return fmt.Errorf("remove %s's order ids from the registry: %w", p.Name, err)
			}
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&r.Rows); err != nil {
				return err
			}
			if tag.RowsAffected() != r.Rows {
				return fmt.Errorf("%s holds %d rows but %d of its order ids were registered", p.Name, r.Rows, tag.RowsAffected())
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s (partition, range_start, range_end, rows) VALUES ($1, $2, $3, $4)",
				pgx.Identifier{t.Schema, RetiredTable}.Sanitize()), p.Name, p.From, p.To, r.Rows); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "DROP TABLE "+ident)
			return err
		})
		if err != nil {
			return out, fmt.Errorf("retire %s: %w", p.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// RetiredRowsSQL is a scalar SQL expression for how many rows Retire has
// dropped in all (0 for an orders that is not partitioned: only Convert
// creates the table it reads). Callers embed it in the statement that
// counts orders, so both are read in one snapshot.
func RetiredRowsSQL(t schema.Tables) string {
	if !t.Partitioned {
		return "0::bigint"
	}
	return "(SELECT coalesce(sum(rows), 0)::bigint FROM " + pgx.Identifier{t.Schema, RetiredTable}.Sanitize() + ")"
}
