// Package schema owns redpg's PostgreSQL schema: ordered SQL migrations
// embedded in the binary, applied by the binary itself, and the qualified
// table names every other package uses to reach them.
package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one embedded, numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in the order they apply.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNN_description.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Tables gives the schema-qualified, quoted name of each redpg relation.
// Every query goes through it rather than relying on search_path, which a
// transaction-pooling PgBouncer cannot keep per client.
type Tables struct {
	Schema string
	// Partitioned says orders is partitioned by month of order_timestamp
	// (`redpg partition`). Its primary key must then include the partition
	// key, so order ids are kept unique through the OrderIDs registry,
	// which promotion writes in the same transaction. Callers detect it
	// once at start-up (package partition).
	Partitioned bool
}

func (t Tables) q(name string) string { return pgx.Identifier{t.Schema, name}.Sanitize() }

// Orders is the production table.
func (t Tables) Orders() string { return t.q("orders") }

// OrdersIdent is the production table as an identifier, for COPY.
func (t Tables) OrdersIdent() pgx.Identifier { return pgx.Identifier{t.Schema, "orders"} }

// OrderIDs is the order id registry of a partitioned orders table: one row
// per stored order id, under a primary key of its own.
func (t Tables) OrderIDs() string { return t.q("order_ids") }

// OrderIDsIdent is the registry as an identifier, for COPY.
func (t Tables) OrderIDsIdent() pgx.Identifier { return pgx.Identifier{t.Schema, "order_ids"} }

// Staging is the UNLOGGED staging table.
func (t Tables) Staging() string { return t.q("orders_staging") }

// StagingIdent is the staging table as an identifier, for CopyFrom.
func (t Tables) StagingIdent() pgx.Identifier { return pgx.Identifier{t.Schema, "orders_staging"} }

// Rejected is the dead-letter table.
func (t Tables) Rejected() string { return t.q("orders_rejected") }

// Batches is the batch ledger.
func (t Tables) Batches() string { return t.q("pipeline_batches") }

// Deployment is the one-row table naming this database (see migration 009).
func (t Tables) Deployment() string { return t.q("pipeline_deployment") }

// Epochs records the Redis account's epochs (see migration 009).
func (t Tables) Epochs() string { return t.q("pipeline_epochs") }

// Products is the product catalog.
func (t Tables) Products() string { return t.q("product_catalog") }

// Currencies is the currency rate table.
func (t Tables) Currencies() string { return t.q("currency_rates") }

// Zips is the zip code zone table.
func (t Tables) Zips() string { return t.q("zip_code_zones") }

// View returns a materialized view's qualified name.
func (t Tables) View(name string) string { return t.q(name) }

// DefaultSchema is the schema used when none is configured.
const DefaultSchema = "public"

// Views are the materialized views, in refresh order.
var Views = []string{"sales_hourly", "product_performance_daily", "shipping_zone_stats"}

// migrationLockID serialises concurrent `redpg migrate` runs across processes.
const migrationLockID = 0x72656470_67000001

// lockID is the advisory lock for migrating one schema: runs on the same
// schema wait for each other, runs on different schemas (tenants, parallel
// tests) do not.
func lockID(schemaName string) int64 {
	h := fnv.New64a()
	h.Write([]byte(schemaName))
	return int64(migrationLockID ^ h.Sum64())
}

// DefaultNaiveTimeZone is the zone in which naive TIMESTAMP values of an
// adopted reference database are read when Options names none.
const DefaultNaiveTimeZone = "UTC"

// ReasonReferenceStaging is the dead-letter reason migration 005 gives the
// rows an adopted reference database had staged but never promoted.
const ReasonReferenceStaging = "reference_staging"

// Options tune how Migrate upgrades an existing database.
type Options struct {
	// NaiveTimeZone is the IANA zone (or UTC offset PostgreSQL accepts) in
	// which the naive order timestamps of a database adopted from the
	// Python reference are read when they become timestamptz. Defaults to
	// DefaultNaiveTimeZone. Migrations read it as the setting
	// redpg.naive_timezone.
	NaiveTimeZone string
	// Target is the last migration to apply; 0 applies them all. Tests use
	// it to build a schema as an older redpg left it.
	Target int
}

// WithDefaults fills unset fields.
func (o Options) WithDefaults() Options {
	if o.NaiveTimeZone == "" {
		o.NaiveTimeZone = DefaultNaiveTimeZone
	}
	return o
}

// adoptFrom is the first migration that understands a database the Python
// reference's init.sql created. The ones before it create what such a
// database already has, under the same names, so in a schema being adopted
// they are recorded, not run.
const adoptFrom = 5

// adoptedSuffix marks, in redpg_migrations, a migration recorded but not run
// because the schema was adopted. Migration 007 relies on 001 being recorded
// under its plain name exactly when 001 ran.
const adoptedSuffix = " (adopted from the reference, not run)"

// Migrate applies pending migrations with default Options.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schemaName string) ([]int, error) {
	return MigrateWith(ctx, pool, schemaName, Options{})
}

// MigrateWith creates the schema if needed and applies every migration not
// yet recorded in its redpg_migrations table, each in its own transaction.
// A schema that has the Python reference's tables and no migration history
// is adopted in place (see migration 005); one that has tables of another
// shape and no history is refused. It returns the versions it applied.
func MigrateWith(ctx context.Context, pool *pgxpool.Pool, schemaName string, opts Options) ([]int, error) {
	opts = opts.WithDefaults()
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	lock := lockID(schemaName)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		return nil, fmt.Errorf("lock migrations: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock) }()

	s := pgx.Identifier{schemaName}.Sanitize()
	ledger := pgx.Identifier{schemaName, "redpg_migrations"}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schemaName, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+ledger+
		" (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return nil, fmt.Errorf("create migration ledger: %w", err)
	}
	done := map[int]bool{}
	adopt := false // the schema is, or is being, adopted from the reference
	rows, _ := conn.Query(ctx, "SELECT version, name FROM "+ledger)
	var version int32
	var name string
	if _, err := pgx.ForEachRow(rows, []any{&version, &name}, func() error {
		done[int(version)] = true
		adopt = adopt || strings.HasSuffix(name, adoptedSuffix)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read migration ledger: %w", err)
	}
	if len(done) == 0 {
		if adopt, err = adoptable(ctx, conn.Conn(), schemaName); err != nil {
			return nil, err
		}
	}
	var applied []int
	for _, m := range migs {
		if done[m.Version] || (opts.Target > 0 && m.Version > opts.Target) {
			continue
		}
		skip := adopt && m.Version < adoptFrom
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			name := m.Name
			if skip {
				name += adoptedSuffix
			} else if err := run(ctx, tx, s, m.SQL, opts); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+ledger+" (version, name) VALUES ($1, $2)", m.Version, name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// run executes one migration's SQL inside tx, in the schema s, with the
// options migrations read as settings.
func run(ctx context.Context, tx pgx.Tx, s, sql string, opts Options) error {
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+s); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SELECT set_config('redpg.naive_timezone', $1, true)", opts.NaiveTimeZone); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, sql)
	return err
}

// adoptable reports whether a schema without migration history holds a
// database the Python reference's init.sql created: its lookup tables and
// orders, and an orders_staging whose primary key is order_id and which has
// no batch_id (redpg's staging has batch_id and no primary key). An empty
// schema is not adoptable but fresh; tables of any other shape are an
// error, since migrating over them would fail halfway or, worse, not.
func adoptable(ctx context.Context, conn *pgx.Conn, schemaName string) (bool, error) {
	var existing []string
	var referenceStaging bool
	err := conn.QueryRow(ctx, `
SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname) FILTER (WHERE c.oid IS NOT NULL), '{}'),
       EXISTS (SELECT 1 FROM pg_constraint k
               JOIN pg_class st ON st.oid = k.conrelid
               JOIN pg_namespace ns ON ns.oid = st.relnamespace
               WHERE ns.nspname = $1 AND st.relname = 'orders_staging' AND k.contype = 'p'
                 AND k.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                       WHERE attrelid = st.oid AND attname = 'order_id' AND NOT attisdropped)])
       AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                       JOIN pg_class st ON st.oid = a.attrelid
                       JOIN pg_namespace ns ON ns.oid = st.relnamespace
                       WHERE ns.nspname = $1 AND st.relname = 'orders_staging'
                         AND a.attname = 'batch_id' AND NOT a.attisdropped)
FROM unnest($2::text[]) AS t (name)
LEFT JOIN pg_namespace n ON n.nspname = $1
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'm', 'v', 'p')`,
		schemaName, ownTables).Scan(&existing, &referenceStaging)
	if err != nil {
		return false, fmt.Errorf("inspect schema %s: %w", schemaName, err)
	}
	if len(existing) == 0 {
		return false, nil
	}
	if referenceStaging && containsAll(existing, referenceTables) {
		return true, nil
	}
	return false, fmt.Errorf("schema %s already has %s but no redpg migration history (%s), "+
		"and it is not a database the Python reference's init.sql created: migrate another schema (--schema), "+
		"or move these tables away", schemaName, strings.Join(existing, ", "), "redpg_migrations")
}

// ownTables are the relations redpg's migrations create.
var ownTables = []string{"product_catalog", "currency_rates", "zip_code_zones", "orders_staging", "orders",
	"orders_rejected", "pipeline_batches", "sales_hourly", "product_performance_daily", "shipping_zone_stats"}

// referenceTables are the tables the reference's init.sql creates that
// adoption builds on.
var referenceTables = []string{"currency_rates", "orders", "orders_staging", "product_catalog", "zip_code_zones"}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// Drop removes a schema and everything in it. Tests and benchmarks use it
// to clean up their private schemas.
func Drop(ctx context.Context, pool *pgxpool.Pool, schemaName string) error {
	_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schemaName}.Sanitize()+" CASCADE")
	return err
}

// EnsureDatabase creates the database named in connString when it does not
// exist, by connecting to the maintenance database "postgres" on the same
// server. Other connection errors are returned untouched.
func EnsureDatabase(ctx context.Context, connString string) error {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return err
	}
	name := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database %q does not exist and the maintenance database is unreachable: %w", name, err)
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if createdConcurrently(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// createdConcurrently reports whether CREATE DATABASE failed only because
// another process created the same database first, as happens when several
// workers start together on a fresh server. PostgreSQL says so with
// duplicate_database when the other creation had committed before ours
// began, but with a unique violation on pg_database's name index when both
// were under way at once: the loser waits for the winner's catalog row and
// then collides with it.
func createdConcurrently(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "42P04" || // duplicate_database
		pgErr.Code == "23505" && pgErr.ConstraintName == "pg_database_datname_index" // unique_violation
}
