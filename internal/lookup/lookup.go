// Package lookup snapshots the small lookup tables (products, currency
// rates, zip code zones) from PostgreSQL into Redis, versioned and with a
// TTL, and serves them to workers from memory. A worker asks Redis only for
// the snapshot's version once per batch and reloads the tables when it
// changes: no per-row round trip and no join against Postgres.
package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
}

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
	k := c.cfg.Keys
	old, err := c.rdb.Get(ctx, k.LookupVersion()).Int64()
	hasOld := err == nil
	if err != nil && !errors.Is(err, redis.Nil) {
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
// its version changed. When no snapshot is published (never initialised, or
// expired) it publishes one from Postgres first, so a missing cache never
// drops orders.
func (c *Cache) Current(ctx context.Context) (*Snapshot, error) {
	k := c.cfg.Keys
	version, err := c.rdb.Get(ctx, k.LookupVersion()).Int64()
	if errors.Is(err, redis.Nil) {
		if version, err = c.Publish(ctx); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read lookup version: %w", err)
	}
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if cur != nil && cur.Version == version {
		return cur, nil
	}
	snap, err := c.read(ctx, version)
	if errors.Is(err, errOldFormat) {
		// Published by an older redpg (zones were text then), from tables
		// a migration has since changed: replace it rather than fail.
		if version, err = c.Publish(ctx); err == nil {
			snap, err = c.read(ctx, version)
		}
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cur = snap
	c.mu.Unlock()
	return snap, nil
}

// errOldFormat marks a snapshot entry this version of redpg cannot decode.
var errOldFormat = errors.New("entry not in the current snapshot format")

func (c *Cache) read(ctx context.Context, version int64) (*Snapshot, error) {
	k := c.cfg.Keys
	pipe := c.rdb.Pipeline()
	cmds := map[string]*redis.MapStringStringCmd{}
	for _, t := range AllTables {
		cmds[t] = pipe.HGetAll(ctx, k.Lookup(version, t))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read lookup snapshot %d: %w", version, err)
	}
	s := &Snapshot{Version: version, Products: map[string]Product{}, Currencies: map[string]money.Rate{}, Zips: map[string]Zip{}}
	for id, v := range cmds[Products].Val() {
		var p Product
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return nil, fmt.Errorf("lookup snapshot %d: product %q: %w: %w", version, id, errOldFormat, err)
		}
		s.Products[id] = p
	}
	for code, v := range cmds[Currencies].Val() {
		// A snapshot published before rates were exact holds Go's
		// shortest float form ("1.36", "1e-05"): ParseRate reads it too.
		rate, err := money.ParseRate(v)
		if err != nil {
			return nil, fmt.Errorf("lookup snapshot %d: currency %q has rate %q", version, code, v)
		}
		s.Currencies[code] = rate
	}
	for zip, v := range cmds[Zipcodes].Val() {
		var z Zip
		if err := json.Unmarshal([]byte(v), &z); err != nil {
			return nil, fmt.Errorf("lookup snapshot %d: zip %q: %w: %w", version, zip, errOldFormat, err)
		}
		s.Zips[zip] = z
	}
	if s.Size() == 0 {
		return nil, fmt.Errorf("lookup snapshot %d is empty or expired mid-read; run `redpg init-cache --all`", version)
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
