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
		if err := schema.Drop(ctx, e.PG, e.Schema); err != nil {
			t.Logf("drop schema %s: %v", e.Schema, err)
		}
		for _, pattern := range []string{e.Keys.Pattern(), e.Prefix + "*"} {
			iter := e.RDB.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				e.RDB.Del(ctx, iter.Val())
			}
		}
		_ = e.RDB.Close()
	})
	return e
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
