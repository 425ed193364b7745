// Package lookup snapshots the small lookup tables (products, currency
// rates, zip code zones) from PostgreSQL into Redis, versioned and with a
// TTL, and serves them to workers from memory. A worker asks Redis only for
// the snapshot's version once per batch and reloads the tables when it
// changes: no per-row round trip and no join against Postgres.
package lookup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/schema"
)

// Product is one row of product_catalog.
type Product struct {
	Name           string `json:"name"`
	Category       string `json:"category"`
	BasePriceCents int64  `json:"base_price_cents"`
}

// Zip is one row of zip_code_zones.
type Zip struct {
	City    string `json:"city"`
	State   string `json:"state"`
	Country string `json:"country"`
	Zone    int32  `json:"zone"` // shipping_zone, an integer as in the reference
}

// Snapshot is one consistent version of all lookup tables.
type Snapshot struct {
	Version    int64
	Products   map[string]Product
	Currencies map[string]money.Rate // code → currency_rates.rate_to_usd exactly: units per USD, divided by
	Zips       map[string]Zip
}

// FloatRates returns the currency rates as floats, for what needs no
// exactness (the generator's made-up prices).
func (s *Snapshot) FloatRates() map[string]float64 {
	out := make(map[string]float64, len(s.Currencies))
	for code, r := range s.Currencies {
		out[code] = r.Float64()
	}
	return out
}

// Size is the number of entries across all tables.
func (s *Snapshot) Size() int { return len(s.Products) + len(s.Currencies) + len(s.Zips) }

// Table names, as accepted by Publish and used in Redis key names.
const (
	Products   = "products"
	Currencies = "currencies"
	Zipcodes   = "zipcodes"
)

// AllTables lists every lookup table.
var AllTables = []string{Products, Currencies, Zipcodes}

// DefaultTTL is how long a lookup snapshot lives in Redis.
const DefaultTTL = 24 * time.Hour

// Config configures a Cache.
type Config struct {
	// Keys is the Redis key space.
	Keys keys.Space
	// Tables names the Postgres relations.
	Tables schema.Tables
	// TTL is how long a published snapshot lives in Redis. Defaults to 24h.
	TTL time.Duration
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Tables.Schema == "" {
		c.Tables.Schema = "public"
	}
	return c
}

// Cache publishes and reads lookup snapshots. It is safe for concurrent use.
type Cache struct {
	cfg Config
	rdb redis.UniversalClient
	pg  *pgxpool.Pool

	mu  sync.Mutex
	cur *Snapshot
	// retryAt, when set, says cur was loaded from PostgreSQL because the
	// published snapshot was broken and could not be republished (another
	// process was doing it, or a table is empty): it serves until then, and
	// the next call after it tries the published snapshot again.
	retryAt time.Time
}

// Rebuilding a broken snapshot.
const (
	// RebuildLockTTL bounds how long the process republishing a broken
	// snapshot holds the lock, should it die holding it.
	RebuildLockTTL = 10 * time.Second
	// FallbackRetry is how long a snapshot loaded straight from PostgreSQL
	// serves before the published one is tried again.
	FallbackRetry = time.Minute
)

// errBroken marks a published snapshot that cannot serve: a table's hash is
// missing or empty (evicted, deleted, expired mid-read, or published while
// the table was empty), or holds what redpg did not write.
var errBroken = errors.New("lookup snapshot is missing or broken")

// releaseScript frees the rebuild lock only while it still holds the
// caller's token, so that a holder whose lock expired never frees the lock
// of the process that took it over.
//
// KEYS[1]: the lock (keys.Space.LookupRebuild). ARGV[1]: the holder's token.
// Returns 1 when it deleted the lock, 0 when the lock was not the caller's.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// New returns a Cache. pg is used to (re)build snapshots from the source
// tables.
func New(rdb redis.UniversalClient, pg *pgxpool.Pool, cfg Config) *Cache {
	return &Cache{cfg: cfg.WithDefaults(), rdb: rdb, pg: pg}
}

// Load reads the lookup tables from Postgres.
func Load(ctx context.Context, pg *pgxpool.Pool, t schema.Tables) (*Snapshot, error) {
	s := &Snapshot{Products: map[string]Product{}, Currencies: map[string]money.Rate{}, Zips: map[string]Zip{}}
	rows, _ := pg.Query(ctx, "SELECT product_id, product_name, category, (base_price * 100)::bigint FROM "+t.Products())
	var id string
	var p Product
	if _, err := pgx.ForEachRow(rows, []any{&id, &p.Name, &p.Category, &p.BasePriceCents}, func() error {
		s.Products[id] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read product_catalog: %w", err)
	}
	// The rate as text is the numeric exactly: USD totals are computed from
	// it in Go, and must equal what promotion computes from the table.
	var rate string
	rows, _ = pg.Query(ctx, "SELECT currency_code, rate_to_usd::text FROM "+t.Currencies())
	if _, err := pgx.ForEachRow(rows, []any{&id, &rate}, func() error {
		r, err := money.ParseRate(rate)
		if err != nil {
			return fmt.Errorf("currency %s: %w", id, err)
		}
		s.Currencies[id] = r
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read currency_rates: %w", err)
	}
	var z Zip
	rows, _ = pg.Query(ctx, "SELECT zip_code, city, state, country, shipping_zone FROM "+t.Zips())
	if _, err := pgx.ForEachRow(rows, []any{&id, &z.City, &z.State, &z.Country, &z.Zone}, func() error {
		s.Zips[id] = z
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read zip_code_zones: %w", err)
	}
	return s, nil
}

func (s *Snapshot) table(name string) (map[string]any, error) {
	out := map[string]any{}
	put := func(k string, v any) error {
		b, err := json.Marshal(v)
		out[k] = b
		return err
	}
	var err error
	switch name {
	case Products:
		for k, v := range s.Products {
			err = errors.Join(err, put(k, v))
		}
	case Currencies:
		for k, v := range s.Currencies {
			out[k] = v.String()
		}
	case Zipcodes:
		for k, v := range s.Zips {
			err = errors.Join(err, put(k, v))
		}
	default:
		return nil, fmt.Errorf("unknown lookup table %q (want products, currencies or zipcodes)", name)
	}
	return out, err
}

// Publish copies the named tables from Postgres into Redis as a new snapshot
// version and switches readers to it atomically. Tables not named are carried
// over from the current snapshot (or loaded from Postgres if there is none).
// It returns the new version.
func (c *Cache) Publish(ctx context.Context, tables ...string) (int64, error) {
	if len(tables) == 0 {
		tables = AllTables
	}
	for _, t := range tables {
		if t != Products && t != Currencies && t != Zipcodes {
			return 0, fmt.Errorf("unknown lookup table %q (want products, currencies or zipcodes)", t)
		}
	}
	fresh, err := Load(ctx, c.pg, c.cfg.Tables)
	if err != nil {
		return 0, err
	}
	return c.publish(ctx, fresh, tables)
}

// publish writes fresh's named tables as a new snapshot version, carrying
// the others over from the current version, and switches readers to it.
func (c *Cache) publish(ctx context.Context, fresh *Snapshot, tables []string) (int64, error) {
	k := c.cfg.Keys
	old, err := c.rdb.Get(ctx, k.LookupVersion()).Int64()
	hasOld := err == nil
	if err != nil && !unusable(err) {
		return 0, err
	}
	// Versions are clock-based rather than a counter so that a version is
	// never reused after the cache is cleared: a worker holding an old
	// snapshot in memory always sees the change.
	version := time.Now().UnixMilli()
	if hasOld && version <= old {
		version = old + 1
	}
	selected := map[string]bool{}
	for _, t := range tables {
		selected[t] = true
	}
	pipe := c.rdb.TxPipeline()
	for _, t := range AllTables {
		dst := k.Lookup(version, t)
		if !selected[t] && hasOld {
			if n, err := c.rdb.Exists(ctx, k.Lookup(old, t)).Result(); err == nil && n == 1 {
				// COPY without DB: the client's own database, not 0.
				pipe.Do(ctx, "COPY", k.Lookup(old, t), dst, "REPLACE")
				pipe.Expire(ctx, dst, c.cfg.TTL)
				continue
			}
		}
		fields, err := fresh.table(t)
		if err != nil {
			return 0, err
		}
		pipe.Del(ctx, dst)
		if len(fields) > 0 {
			pipe.HSet(ctx, dst, fields)
		}
		pipe.Expire(ctx, dst, c.cfg.TTL)
	}
	pipe.Set(ctx, k.LookupVersion(), version, c.cfg.TTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("publish lookup snapshot: %w", err)
	}
	if hasOld && old != version {
		// Readers switch on the version key; let the old tables go soon
		// rather than linger for a whole TTL.
		for _, t := range AllTables {
			c.rdb.Expire(ctx, k.Lookup(old, t), time.Minute)
		}
	}
	return version, nil
}

// Current returns the snapshot in force, reloading it from Redis only when
// its version changed. A snapshot that is not there or cannot serve — never
// published, expired, evicted, deleted, a table missing or empty, contents
// redpg did not write — is rebuilt from PostgreSQL and republished by one
// process at a time, so a broken cache never stops the workers: the others
// use the tables they loaded themselves until the new version is out.
func (c *Cache) Current(ctx context.Context) (*Snapshot, error) {
	k := c.cfg.Keys
	version, err := c.rdb.Get(ctx, k.LookupVersion()).Int64()
	published := err == nil
	if err != nil && !unusable(err) {
		return nil, fmt.Errorf("read lookup version: %w", err)
	}
	if !published {
		version = 0
	}
	c.mu.Lock()
	cur, retryAt := c.cur, c.retryAt
	c.mu.Unlock()
	if cur != nil && cur.Version == version && (retryAt.IsZero() || time.Now().Before(retryAt)) {
		return cur, nil
	}
	if published {
		snap, err := c.read(ctx, version)
		if err == nil {
			c.use(snap, false)
			return snap, nil
		}
		if !errors.Is(err, errBroken) {
			return nil, err
		}
	}
	return c.rebuild(ctx, version)
}

// use makes snap the snapshot Current serves; a fallback serves only until
// FallbackRetry has passed.
func (c *Cache) use(snap *Snapshot, fallback bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = snap
	c.retryAt = time.Time{}
	if fallback {
		c.retryAt = time.Now().Add(FallbackRetry)
	}
}

// rebuild loads the tables from PostgreSQL in place of the broken snapshot
// version (0: none published) and republishes them, unless another process
// is doing so or a table is empty (publishing it would only break the next
// reader too); the loaded tables then serve this process as a fallback.
func (c *Cache) rebuild(ctx context.Context, broken int64) (*Snapshot, error) {
	fresh, err := Load(ctx, c.pg, c.cfg.Tables)
	if err != nil {
		return nil, err
	}
	if complete(fresh) {
		v, err := c.republish(ctx, broken, fresh)
		if err != nil {
			return nil, err
		}
		if v != 0 {
			fresh.Version = v
			c.use(fresh, false)
			return fresh, nil
		}
	}
	fresh.Version = broken
	c.use(fresh, true)
	return fresh, nil
}

// republish publishes fresh in place of the broken version under the
// rebuild lock and returns the new version, or 0 when another process holds
// the lock or has already replaced the broken version.
func (c *Cache) republish(ctx context.Context, broken int64, fresh *Snapshot) (int64, error) {
	k := c.cfg.Keys
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	ok, err := c.rdb.SetNX(ctx, k.LookupRebuild(), token, RebuildLockTTL).Result()
	if err != nil || !ok {
		return 0, err
	}
	defer releaseScript.Run(context.WithoutCancel(ctx), c.rdb, []string{k.LookupRebuild()}, token) //nolint:errcheck // the lock expires anyway
	now, err := c.rdb.Get(ctx, k.LookupVersion()).Int64()
	switch {
	case err != nil && !unusable(err):
		return 0, err
	case err == nil && now != broken:
		return 0, nil // replaced since we read it
	}
	return c.publish(ctx, fresh, AllTables)
}

// complete reports whether every table of s has entries.
func complete(s *Snapshot) bool {
	return len(s.Products) > 0 && len(s.Currencies) > 0 && len(s.Zips) > 0
}

// unusable reports whether err, from reading a snapshot key, means the key
// holds nothing redpg can use (missing, of another type, not a number)
// rather than that Redis could not be asked.
func unusable(err error) bool {
	var rerr redis.Error
	var numErr *strconv.NumError
	return errors.As(err, &rerr) || errors.As(err, &numErr)
}

func (c *Cache) read(ctx context.Context, version int64) (*Snapshot, error) {
	k := c.cfg.Keys
	pipe := c.rdb.Pipeline()
	cmds := map[string]*redis.MapStringStringCmd{}
	for _, t := range AllTables {
		cmds[t] = pipe.HGetAll(ctx, k.Lookup(version, t))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if unusable(err) {
			return nil, fmt.Errorf("read lookup snapshot %d: %w: %w", version, errBroken, err)
		}
		return nil, fmt.Errorf("read lookup snapshot %d: %w", version, err)
	}
	s := &Snapshot{Version: version, Products: map[string]Product{}, Currencies: map[string]money.Rate{}, Zips: map[string]Zip{}}
	for id, v := range cmds[Products].Val() {
		var p Product
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return nil, fmt.Errorf("lookup snapshot %d: product %q: %w: %w", version, id, errBroken, err)
		}
		s.Products[id] = p
	}
	for code, v := range cmds[Currencies].Val() {
		// A snapshot published before rates were exact holds Go's
		// shortest float form ("1.36", "1e-05"): ParseRate reads it too.
		rate, err := money.ParseRate(v)
		if err != nil {
			return nil, fmt.Errorf("lookup snapshot %d: currency %q has rate %q: %w", version, code, v, errBroken)
		}
		s.Currencies[code] = rate
	}
	for zip, v := range cmds[Zipcodes].Val() {
		var z Zip
		if err := json.Unmarshal([]byte(v), &z); err != nil {
			return nil, fmt.Errorf("lookup snapshot %d: zip %q: %w: %w", version, zip, errBroken, err)
		}
		s.Zips[zip] = z
	}
	if !complete(s) {
		return nil, fmt.Errorf("lookup snapshot %d has %d products, %d currencies and %d zip codes: %w",
			version, len(s.Products), len(s.Currencies), len(s.Zips), errBroken)
	}
	return s, nil
}

// Size is the number of entries in the published snapshot, 0 when none.
func (c *Cache) Size(ctx context.Context) (int64, error) {
	k := c.cfg.Keys
	version, err := c.rdb.Get(ctx, k.LookupVersion()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range AllTables {
		m, err := c.rdb.HLen(ctx, k.Lookup(version, t)).Result()
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}
