package schema_test

import (
	"context"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

func TestMigrationsAreOrderedAndNumbered(t *testing.T) {
	t.Parallel()
	migs, err := schema.Migrations()
	require.NoError(t, err)
	require.NotEmpty(t, migs)
	for i, m := range migs {
		require.Equal(t, i+1, m.Version, "migrations must be numbered 001, 002, ... without gaps")
		require.NotEmpty(t, m.Name)
		require.NotEmpty(t, m.SQL)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t) // applies every migration once
	ctx := context.Background()

	applied, err := schema.Migrate(ctx, env.PG, env.Schema)
	require.NoError(t, err)
	require.Empty(t, applied, "a second Migrate must apply nothing")

	migs, err := schema.Migrations()
	require.NoError(t, err)
	require.Equal(t, int64(len(migs)),
		env.Count(t, "SELECT count(*) FROM "+pgx.Identifier{env.Schema, "redpg_migrations"}.Sanitize()))
	// The seed rows were not inserted twice.
	require.Equal(t, int64(15), env.Count(t, "SELECT count(*) FROM "+env.Tables.Products()))
}

func TestMigrateSeedsLookupTables(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	require.Equal(t, int64(15), env.Count(t, "SELECT count(*) FROM "+env.Tables.Products()))
	require.Equal(t, int64(7), env.Count(t, "SELECT count(*) FROM "+env.Tables.Currencies()))
	require.Equal(t, int64(10), env.Count(t, "SELECT count(*) FROM "+env.Tables.Zips()))

	var rate float64
	require.NoError(t, env.PG.QueryRow(context.Background(),
		"SELECT rate_to_usd::float8 FROM "+env.Tables.Currencies()+" WHERE currency_code = 'JPY'").Scan(&rate))
	require.InDelta(t, 149.5, rate, 1e-9, "rate_to_usd is units of the currency per US dollar")
}

func TestStagingIsUnlogged(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	var persistence string
	require.NoError(t, env.PG.QueryRow(context.Background(),
		"SELECT relpersistence::text FROM pg_class WHERE oid = $1::regclass", env.Tables.Staging()).Scan(&persistence))
	require.Equal(t, "u", persistence)

	var ordersPersistence string
	require.NoError(t, env.PG.QueryRow(context.Background(),
		"SELECT relpersistence::text FROM pg_class WHERE oid = $1::regclass", env.Tables.Orders()).Scan(&ordersPersistence))
	require.Equal(t, "p", ordersPersistence, "production must be durable")
}

func TestOrdersKeepsTheSeedColumns(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	rows, err := env.PG.Query(ctx, `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'orders'`, env.Schema)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, c := range []string{"order_id", "customer_id", "product_id", "product_name", "category", "quantity",
		"unit_price", "currency", "total_amount_usd", "zip_code", "city", "state", "country", "shipping_zone",
		"order_timestamp", "raw_data", "processed_at"} {
		require.Contains(t, cols, c)
	}

	rows, err = env.PG.Query(ctx, `SELECT a.attname::text FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary`, env.Tables.Orders())
	require.NoError(t, err)
	pk, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"order_id"}, pk)
}

func TestMaterializedViewsHaveUniqueIndexes(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	for _, v := range schema.Views {
		var exists bool
		require.NoError(t, env.PG.QueryRow(ctx,
			"SELECT EXISTS (SELECT 1 FROM pg_matviews WHERE schemaname = $1 AND matviewname = $2)", env.Schema, v).Scan(&exists))
		require.True(t, exists, "materialized view %s", v)
		var unique int64
		require.NoError(t, env.PG.QueryRow(ctx,
			"SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND indisunique", env.Tables.View(v)).Scan(&unique))
		require.Equal(t, int64(1), unique, "%s needs a unique index for REFRESH ... CONCURRENTLY", v)
	}
}

func TestConcurrentMigrateOnOneSchema(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "t_conc_" + testenv.ID()
	t.Cleanup(func() { _ = schema.Drop(context.Background(), env.PG, name) })

	migs, err := schema.Migrations()
	require.NoError(t, err)

	var wg sync.WaitGroup
	applied := make([][]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = schema.Migrate(ctx, env.PG, name)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	// Exactly one of them applied everything; the other found it done.
	require.Equal(t, len(migs), len(applied[0])+len(applied[1]))
	require.True(t, len(applied[0]) == 0 || len(applied[1]) == 0, "applied %v and %v", applied[0], applied[1])

	tables := schema.Tables{Schema: name}
	require.Equal(t, int64(15), env.Count(t, "SELECT count(*) FROM "+tables.Products()))
	require.Equal(t, int64(len(migs)),
		env.Count(t, "SELECT count(*) FROM "+pgx.Identifier{name, "redpg_migrations"}.Sanitize()))
}

func TestDropRemovesTheSchema(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "t_drop_" + testenv.ID()
	_, err := schema.Migrate(ctx, env.PG, name)
	require.NoError(t, err)
	require.NoError(t, schema.Drop(ctx, env.PG, name))
	require.Equal(t, int64(0), env.Count(t, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name))
	require.NoError(t, schema.Drop(ctx, env.PG, name), "dropping a missing schema is not an error")
}

func TestEnsureDatabaseCreatesAMissingDatabase(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "redpg_ensure_" + testenv.ID()
	u, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	u.Path = "/" + name
	t.Cleanup(func() {
		_, _ = env.PG.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})

	require.Equal(t, int64(0), env.Count(t, "SELECT count(*) FROM pg_database WHERE datname = $1", name))
	require.NoError(t, schema.EnsureDatabase(ctx, u.String()))
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM pg_database WHERE datname = $1", name))
	require.NoError(t, schema.EnsureDatabase(ctx, u.String()), "an existing database is fine")

	conn, err := pgx.Connect(ctx, u.String())
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	require.NoError(t, conn.Close(ctx))
	require.Equal(t, name, db)
}

func TestEnsureDatabaseReportsAnUnreachableServer(t *testing.T) {
	t.Parallel()
	err := schema.EnsureDatabase(context.Background(), "postgres://root@127.0.0.1:1/redpg_nowhere?connect_timeout=2")
	require.Error(t, err)
}

// TestEnsureDatabaseConcurrentFirstStart starts several processes' worth of
// EnsureDatabase + Migrate on one database that does not exist yet, as
// workers started together on a fresh server do. PostgreSQL reports the
// losers of the CREATE DATABASE race as a unique violation on
// pg_database (23505), not as duplicate_database; every one of them must
// still succeed.
func TestEnsureDatabaseConcurrentFirstStart(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	name := "redpg_race_" + testenv.ID()
	u, err := url.Parse(testenv.DatabaseURL())
	require.NoError(t, err)
	u.Path = "/" + name
	t.Cleanup(func() {
		_, _ = env.PG.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})

	const n = 8
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if errs[i] = schema.EnsureDatabase(ctx, u.String()); errs[i] != nil {
				return
			}
			conn, err := pgx.Connect(ctx, u.String())
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close(ctx)
			var one int
			errs[i] = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "starter %d", i)
	}
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM pg_database WHERE datname = $1", name))
}
