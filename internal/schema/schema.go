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
}

func (t Tables) q(name string) string { return pgx.Identifier{t.Schema, name}.Sanitize() }

// Orders is the production table.
func (t Tables) Orders() string { return t.q("orders") }

// OrdersIdent is the production table as an identifier, for COPY.
func (t Tables) OrdersIdent() pgx.Identifier { return pgx.Identifier{t.Schema, "orders"} }

// Staging is the UNLOGGED staging table.
func (t Tables) Staging() string { return t.q("orders_staging") }

// StagingIdent is the staging table as an identifier, for CopyFrom.
func (t Tables) StagingIdent() pgx.Identifier { return pgx.Identifier{t.Schema, "orders_staging"} }

// Rejected is the dead-letter table.
func (t Tables) Rejected() string { return t.q("orders_rejected") }

// Batches is the batch ledger.
func (t Tables) Batches() string { return t.q("pipeline_batches") }

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

// Migrate creates the schema if needed and applies every migration not yet
// recorded in its redpg_migrations table, each in its own transaction. It
// returns the versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schemaName string) ([]int, error) {
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
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lock) //nolint:errcheck

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
	rows, err := conn.Query(ctx, "SELECT version FROM "+ledger)
	if err != nil {
		return nil, err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		done[int(v)] = true
	}
	var applied []int
	for _, m := range migs {
		if done[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+s); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+ledger+" (version, name) VALUES ($1, $2)", m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
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
