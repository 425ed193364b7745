// Package testenv gives each test its own slice of the real services: a
// fresh PostgreSQL schema with every migration applied and a private Redis
// key prefix, both removed when the test ends. Tests run in parallel
// without seeing each other.
//
// The services are found through REDPG_TEST_DATABASE_URL (default: the
// local server, database redpg_test, created if missing),
// REDPG_TEST_REDIS_URL (default redis://127.0.0.1:6379/9) and
// REDPG_TEST_PGBOUNCER_URL (default postgres://<user>@127.0.0.1:6432/redpg_test).
// A missing service fails the test with what to start; it is never skipped
// silently.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/schema"
)

// Env is one test's private environment.
type Env struct {
	DatabaseURL string
	RedisURL    string
	PG          *pgxpool.Pool
	RDB         *redis.Client
	Schema      string
	Prefix      string
	Tables      schema.Tables
	Keys        keys.Space
}

// DatabaseURL is the test database's URL.
func DatabaseURL() string {
	if u := os.Getenv("REDPG_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return (&url.URL{Scheme: "postgres", User: url.User(osUser()), Path: "/redpg_test"}).String()
}

// RedisURL is the test Redis URL.
func RedisURL() string {
	if u := os.Getenv("REDPG_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/9"
}

// PgBouncerURL is the URL of a PgBouncer in front of the test database.
func PgBouncerURL() string {
	if u := os.Getenv("REDPG_TEST_PGBOUNCER_URL"); u != "" {
		return u
	}
	return (&url.URL{Scheme: "postgres", User: url.User(osUser()), Host: "127.0.0.1:6432", Path: "/redpg_test"}).String()
}

func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "postgres"
}

// ID returns a short random identifier usable in schema names and keys.
func ID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// New prepares a private schema and key prefix for t.
func New(t testing.TB) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := &Env{DatabaseURL: DatabaseURL(), RedisURL: RedisURL(), Schema: "t_" + ID(), Prefix: "test:" + ID() + ":"}
	e.Tables = schema.Tables{Schema: e.Schema}
	e.Keys = keys.Space{Prefix: e.Prefix}
	if err := schema.EnsureDatabase(ctx, e.DatabaseURL); err != nil {
		t.Fatalf("PostgreSQL at %s is not usable (start it with `make services`): %v", e.DatabaseURL, err)
	}
	e.PG = Pool(t, e.DatabaseURL, 8)
	if _, err := schema.Migrate(ctx, e.PG, e.Schema); err != nil {
		t.Fatalf("migrate schema %s: %v", e.Schema, err)
	}
	e.openRedis(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := schema.Drop(ctx, e.PG, e.Schema); err != nil {
			t.Logf("drop schema %s: %v", e.Schema, err)
		}
	})
	return e
}

// Attach gives t an environment on an existing database and schema, such
// as one ReferenceDatabase made: a pool, and Redis under a private key
// prefix removed when t ends. It neither migrates nor drops the schema.
func Attach(t testing.TB, databaseURL, schemaName string) *Env {
	t.Helper()
	e := &Env{DatabaseURL: databaseURL, RedisURL: RedisURL(), Schema: schemaName, Prefix: "test:" + ID() + ":"}
	e.Tables = schema.Tables{Schema: e.Schema}
	e.Keys = keys.Space{Prefix: e.Prefix}
	e.PG = Pool(t, e.DatabaseURL, 8)
	e.openRedis(t)
	return e
}

// openRedis connects e.RDB and removes e's keys when t ends.
func (e *Env) openRedis(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opt, err := redis.ParseURL(e.RedisURL)
	if err != nil {
		t.Fatalf("REDPG_TEST_REDIS_URL: %v", err)
	}
	e.RDB = redis.NewClient(opt)
	if err := e.RDB.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is not reachable (start it with `make services`): %v", e.RedisURL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, pattern := range []string{e.Keys.Pattern(), e.Prefix + "*"} {
			iter := e.RDB.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				e.RDB.Del(ctx, iter.Val())
			}
		}
		_ = e.RDB.Close()
	})
}

// ReferenceDatabase creates a database of t's own, runs the Python
// reference's init.sql in it as the reference's users did (in its public
// schema), and returns the database's URL. It is dropped when t ends. The
// file (internal/schema/testdata/reference_init.sql, a copy of the seed's)
// runs unchanged but for lines this server cannot run: its CREATE EXTENSION
// when the extension is not installed, and its GRANTs when their role does
// not exist.
func ReferenceDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := schema.EnsureDatabase(ctx, DatabaseURL()); err != nil {
		t.Fatalf("PostgreSQL at %s is not usable (start it with `make services`): %v", DatabaseURL(), err)
	}
	admin := Pool(t, DatabaseURL(), 2)
	name := "redpg_ref_" + ID()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(DatabaseURL())
	if err != nil {
		t.Fatalf("REDPG_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name

	_, self, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(self), "..", "schema", "testdata", "reference_init.sql")
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the reference's init.sql: %v", err)
	}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	runnable, err := runnableLines(ctx, conn, string(script))
	if err != nil {
		t.Fatalf("inspect the server for the reference's init.sql: %v", err)
	}
	if _, err := conn.Exec(ctx, runnable); err != nil { // no arguments: one simple-protocol query, all statements
		t.Fatalf("run the reference's init.sql: %v", err)
	}
	return u.String()
}

var (
	extensionLine = regexp.MustCompile(`(?i)^\s*CREATE EXTENSION IF NOT EXISTS "([^"]+)"`)
	grantLine     = regexp.MustCompile(`(?i)^\s*GRANT .* TO (\w+)\s*;`)
)

// runnableLines is script without the CREATE EXTENSION lines for
// extensions the server lacks and the GRANT lines for roles it lacks.
func runnableLines(ctx context.Context, conn *pgx.Conn, script string) (string, error) {
	lines := strings.SplitAfter(script, "\n")
	for i, line := range lines {
		var query, name string
		if m := extensionLine.FindStringSubmatch(line); m != nil {
			query, name = "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)", m[1]
		} else if m := grantLine.FindStringSubmatch(line); m != nil {
			query, name = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", m[1]
		} else {
			continue
		}
		var ok bool
		if err := conn.QueryRow(ctx, query, name).Scan(&ok); err != nil {
			return "", err
		}
		if !ok {
			lines[i] = "-- (not run here) " + line
		}
	}
	return strings.Join(lines, ""), nil
}

// Pool opens a pool on url that is closed when t ends. Like redpg itself it
// uses the exec query mode, which PgBouncer in transaction mode supports.
func Pool(t testing.TB, rawURL string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		t.Fatalf("parse %s: %v", rawURL, err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConns = maxConns
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable (start it with `make services`): %v", rawURL, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// PgBouncer opens a pool through the test PgBouncer. Under CI a missing
// PgBouncer fails the test; elsewhere it skips with what to start.
func PgBouncer(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(PgBouncerURL())
	if err != nil {
		t.Fatalf("REDPG_TEST_PGBOUNCER_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PgBouncer at %s is not reachable (scripts/services.sh starts it): %v", PgBouncerURL(), err)
		}
		t.Skipf("PgBouncer at %s is not reachable; run `make services` to start it: %v", PgBouncerURL(), err)
	}
	_ = conn.Close(ctx)
	return Pool(t, PgBouncerURL(), maxConns)
}

// Count runs a count query and fails the test on error.
func (e *Env) Count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.PG.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// RequireViewsMatchOrders fails t unless every materialized view's order
// count and revenue total equal the same aggregates taken directly over
// orders: the check that a refresh summarised what was promoted.
func (e *Env) RequireViewsMatchOrders(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	var wantCount int64
	var wantRevenue string
	if err := e.PG.QueryRow(ctx, "SELECT count(*), coalesce(sum(total_amount_usd), 0)::text FROM "+e.Tables.Orders()).
		Scan(&wantCount, &wantRevenue); err != nil {
		t.Fatalf("aggregate orders: %v", err)
	}
	for _, v := range schema.Views {
		var count int64
		var revenue string
		if err := e.PG.QueryRow(ctx, "SELECT coalesce(sum(order_count), 0)::bigint, coalesce(sum(total_revenue_usd), 0)::text FROM "+
			e.Tables.View(v)).Scan(&count, &revenue); err != nil {
			t.Fatalf("aggregate %s: %v", v, err)
		}
		if count != wantCount {
			t.Errorf("%s: order_count sums to %d, orders has %d rows", v, count, wantCount)
		}
		if revenue != wantRevenue {
			t.Errorf("%s: total_revenue_usd sums to %s, orders to %s", v, revenue, wantRevenue)
		}
	}
}
