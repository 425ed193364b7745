package lookup_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/testenv"
)

// TestRatesAreExactThroughRedis: a rate with more digits than a float
// holds reaches workers exactly as the table has it, so the Go path
// converts with the very rate the SQL path uses.
func TestRatesAreExactThroughRedis(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	_, err := env.PG.Exec(ctx, "UPDATE "+env.Tables.Currencies()+" SET rate_to_usd = 123456789012.123457 WHERE currency_code = 'JPY'")
	require.NoError(t, err)
	c := newCache(env)
	_, err = c.Publish(ctx)
	require.NoError(t, err)
	snap, err := c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, "123456789012.123457", snap.Currencies["JPY"].String())
	require.Equal(t, "1.35", snap.Currencies["CAD"].String(), "the reference's CAD rate")
}

func newCache(env *testenv.Env) *lookup.Cache {
	return lookup.New(env.RDB, env.PG, lookup.Config{Keys: env.Keys, Tables: env.Tables})
}

func TestLoadReadsTheSeedTables(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	snap, err := lookup.Load(context.Background(), env.PG, env.Tables)
	require.NoError(t, err)
	require.Len(t, snap.Products, 15)
	require.Len(t, snap.Currencies, 7)
	require.Len(t, snap.Zips, 10)
	require.Equal(t, 32, snap.Size())
	// The Python reference's rows (its init.sql).
	require.Equal(t, lookup.Product{Name: "Laptop Pro 15\"", Category: "Electronics", BasePriceCents: 129999}, snap.Products["PROD-001"])
	require.Equal(t, money.MustRate("149.5"), snap.Currencies["JPY"])
	require.Equal(t, lookup.Zip{City: "New York", State: "NY", Country: "US", Zone: 1}, snap.Zips["10001"])
	require.Equal(t, lookup.Zip{City: "Toronto", State: "ON", Country: "CA", Zone: 1}, snap.Zips["M5H2N2"])
}

func TestPublishCopiesTablesAndCurrentCachesByVersion(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := newCache(env)

	v1, err := c.Publish(ctx)
	require.NoError(t, err)
	size, err := c.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(32), size)
	for _, table := range lookup.AllTables {
		ttl, err := env.RDB.TTL(ctx, env.Keys.Lookup(v1, table)).Result()
		require.NoError(t, err)
		require.Positive(t, ttl, "snapshot table %s must expire", table)
	}

	s1, err := c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, v1, s1.Version)
	require.Equal(t, 32, s1.Size())
	require.Equal(t, "Wireless Mouse", s1.Products["PROD-002"].Name)
	require.Equal(t, money.MustRate("0.92"), s1.Currencies["EUR"])
	require.Equal(t, int32(2), s1.Zips["98101"].Zone)

	s2, err := c.Current(ctx)
	require.NoError(t, err)
	require.Same(t, s1, s2, "an unchanged version must not be reloaded")

	v2, err := c.Publish(ctx)
	require.NoError(t, err)
	require.Greater(t, v2, v1)
	s3, err := c.Current(ctx)
	require.NoError(t, err)
	require.NotSame(t, s1, s3, "a new version must be reloaded")
	require.Equal(t, v2, s3.Version)
	require.Equal(t, s1.Products, s3.Products)

	// The superseded version's tables go away soon, not after a whole TTL.
	ttl, err := env.RDB.TTL(ctx, env.Keys.Lookup(v1, lookup.Products)).Result()
	require.NoError(t, err)
	require.Positive(t, ttl)
	require.LessOrEqual(t, ttl, time.Minute)

	// Another reader (another worker) follows the version too.
	other, err := newCache(env).Current(ctx)
	require.NoError(t, err)
	require.Equal(t, v2, other.Version)
}

func TestCurrentPublishesWhenNoSnapshotExists(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := newCache(env)

	size, err := c.Size(ctx)
	require.NoError(t, err)
	require.Zero(t, size)

	snap, err := c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, 32, snap.Size())
	size, err = c.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(32), size)
	v, err := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64()
	require.NoError(t, err)
	require.Equal(t, snap.Version, v)

	// An expired snapshot is republished too.
	require.NoError(t, env.RDB.Del(ctx, env.Keys.LookupVersion()).Err())
	again, err := c.Current(ctx)
	require.NoError(t, err)
	require.Greater(t, again.Version, snap.Version)
	require.Equal(t, 32, again.Size())
}

func TestPartialPublishCarriesOtherTablesOver(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := newCache(env)
	_, err := c.Publish(ctx)
	require.NoError(t, err)

	// Change two source tables, then publish only products.
	_, err = env.PG.Exec(ctx, "INSERT INTO "+env.Tables.Products()+
		" (product_id, product_name, category, base_price) VALUES ('PROD-900', 'Desk Lamp', 'Home & Kitchen', 42.50)")
	require.NoError(t, err)
	_, err = env.PG.Exec(ctx, "UPDATE "+env.Tables.Zips()+" SET city = 'NYC' WHERE zip_code = '10001'")
	require.NoError(t, err)

	_, err = c.Publish(ctx, lookup.Products)
	require.NoError(t, err)
	snap, err := c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, lookup.Product{Name: "Desk Lamp", Category: "Home & Kitchen", BasePriceCents: 4250}, snap.Products["PROD-900"])
	require.Len(t, snap.Products, 16)
	require.Equal(t, "New York", snap.Zips["10001"].City, "zipcodes were not named, so the previous snapshot's are kept")
	require.Len(t, snap.Currencies, 7)
	size, err := c.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(33), size)

	_, err = c.Publish(ctx, lookup.Zipcodes)
	require.NoError(t, err)
	snap, err = c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, "NYC", snap.Zips["10001"].City)
	require.Contains(t, snap.Products, "PROD-900")
}

func TestPartialPublishWithoutAnySnapshotLoadsEverything(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := newCache(env)
	_, err := c.Publish(ctx, lookup.Currencies)
	require.NoError(t, err)
	snap, err := c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, 32, snap.Size())
}

func TestPublishRejectsUnknownTable(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	_, err := newCache(env).Publish(context.Background(), "customers")
	require.ErrorContains(t, err, "unknown lookup table")
}

// A published snapshot that cannot serve is rebuilt from PostgreSQL and
// republished, whatever broke it; before, workers retried it forever.
func TestBrokenSnapshotIsRebuilt(t *testing.T) {
	t.Parallel()
	breakers := map[string]func(ctx context.Context, env *testenv.Env, v int64) error{
		"tables gone, version kept": func(ctx context.Context, env *testenv.Env, v int64) error {
			for _, table := range lookup.AllTables {
				if err := env.RDB.Del(ctx, env.Keys.Lookup(v, table)).Err(); err != nil {
					return err
				}
			}
			return nil
		},
		"one table evicted": func(ctx context.Context, env *testenv.Env, v int64) error {
			return env.RDB.Del(ctx, env.Keys.Lookup(v, lookup.Zipcodes)).Err()
		},
		"garbage entry": func(ctx context.Context, env *testenv.Env, v int64) error {
			return env.RDB.HSet(ctx, env.Keys.Lookup(v, lookup.Products), "PROD-001", "{not json").Err()
		},
		"table of another type": func(ctx context.Context, env *testenv.Env, v int64) error {
			return env.RDB.Set(ctx, env.Keys.Lookup(v, lookup.Currencies), "x", 0).Err()
		},
		"version not a number": func(ctx context.Context, env *testenv.Env, _ int64) error {
			return env.RDB.Set(ctx, env.Keys.LookupVersion(), "latest", 0).Err()
		},
	}
	for name, breakIt := range breakers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			ctx := context.Background()
			c := newCache(env)
			v, err := c.Publish(ctx)
			require.NoError(t, err)
			require.NoError(t, breakIt(ctx, env, v))

			snap, err := c.Current(ctx)
			require.NoError(t, err)
			require.Equal(t, 32, snap.Size())
			require.Greater(t, snap.Version, v)
			published, err := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64()
			require.NoError(t, err)
			require.Equal(t, snap.Version, published, "the rebuilt snapshot is published for the other workers")
			size, err := c.Size(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(32), size)
			again, err := newCache(env).Current(ctx)
			require.NoError(t, err)
			require.Equal(t, snap.Version, again.Version)
		})
	}
}

// Workers that find the snapshot broken at the same moment publish one new
// version between them.
func TestBrokenSnapshotIsRepublishedOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	v, err := newCache(env).Publish(ctx)
	require.NoError(t, err)
	for _, table := range lookup.AllTables {
		require.NoError(t, env.RDB.Del(ctx, env.Keys.Lookup(v, table)).Err())
	}
	const n = 8
	snaps := make([]*lookup.Snapshot, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snaps[i], errs[i] = newCache(env).Current(ctx)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, 32, snaps[i].Size(), "every worker can enrich meanwhile")
	}
	keys, err := env.RDB.Keys(ctx, env.Keys.LookupsPattern()[:len(env.Keys.LookupsPattern())-1]+"*:"+lookup.Products).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1, "one version was published: %v", keys)
	exists, err := env.RDB.Exists(ctx, env.Keys.LookupRebuild()).Result()
	require.NoError(t, err)
	require.Zero(t, exists, "the rebuild lock is released")
}

// While another process holds the rebuild lock, a reader serves the tables
// it loaded itself and leaves publishing to that process.
func TestBrokenSnapshotServesFromPostgresWhileAnotherRebuilds(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := newCache(env)
	v, err := c.Publish(ctx)
	require.NoError(t, err)
	require.NoError(t, env.RDB.Del(ctx, env.Keys.Lookup(v, lookup.Products)).Err())
	require.NoError(t, env.RDB.Set(ctx, env.Keys.LookupRebuild(), "someone-else", time.Minute).Err())

	snap, err := c.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, 32, snap.Size())
	require.Equal(t, v, snap.Version)
	published, err := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64()
	require.NoError(t, err)
	require.Equal(t, v, published, "the lock holder publishes, not this reader")
	again, err := c.Current(ctx)
	require.NoError(t, err)
	require.Same(t, snap, again, "the fallback is not reloaded for every batch")
	owner, err := env.RDB.Get(ctx, env.Keys.LookupRebuild()).Result()
	require.NoError(t, err)
	require.Equal(t, "someone-else", owner, "another's lock is left alone")
}

// Lookup tables that are empty in PostgreSQL give an empty snapshot, not an
// error: promotion then rejects what it cannot validate, and nothing is
// republished for every batch.
func TestEmptyLookupTablesGiveAnEmptySnapshot(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := newCache(env)
	for _, table := range []string{env.Tables.Zips(), env.Tables.Currencies()} {
		_, err := env.PG.Exec(ctx, "DELETE FROM "+table)
		require.NoError(t, err)
	}
	v, err := c.Publish(ctx)
	require.NoError(t, err)

	snap, err := c.Current(ctx)
	require.NoError(t, err)
	require.Empty(t, snap.Zips)
	require.Empty(t, snap.Currencies)
	require.Len(t, snap.Products, 15)
	again, err := c.Current(ctx)
	require.NoError(t, err)
	require.Same(t, snap, again)
	published, err := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64()
	require.NoError(t, err)
	require.Equal(t, v, published, "an incomplete snapshot is not republished")
}

// A snapshot an older redpg published has text zones ("Zone-1"); the tables
// it came from have changed since. A worker replaces it instead of failing
// every batch.
func TestCurrentReplacesASnapshotOfTheOldFormat(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	const old = int64(1000)
	require.NoError(t, env.RDB.HSet(ctx, env.Keys.Lookup(old, lookup.Zipcodes),
		"10001", `{"city":"New York","state":"NY","country":"US","zone":"Zone-1"}`).Err())
	require.NoError(t, env.RDB.HSet(ctx, env.Keys.Lookup(old, lookup.Products),
		"PROD-001", `{"name":"Wireless Mouse","category":"Electronics","base_price_cents":2499}`).Err())
	require.NoError(t, env.RDB.HSet(ctx, env.Keys.Lookup(old, lookup.Currencies), "USD", "1").Err())
	require.NoError(t, env.RDB.Set(ctx, env.Keys.LookupVersion(), old, time.Hour).Err())

	snap, err := newCache(env).Current(ctx)
	require.NoError(t, err)
	require.Greater(t, snap.Version, old)
	require.Equal(t, 32, snap.Size())
	require.Equal(t, int32(1), snap.Zips["10001"].Zone)
	require.Equal(t, "Laptop Pro 15\"", snap.Products["PROD-001"].Name)
}
