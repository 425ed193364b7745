// Package config resolves redpg's settings from, in order of precedence,
// command-line flags, the process environment, a .env file and built-in
// defaults. The defaults work on a fresh machine with a local PostgreSQL and
// Redis and no configuration at all.
package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // REDPG_NAIVE_TIMEZONE must resolve on hosts without a zoneinfo database

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/queue"
)

// Config is every setting the pipeline needs. Zero values are replaced by
// WithDefaults; Validate reports settings that cannot work.
type Config struct {
	// DatabaseURL is the PostgreSQL URL used for migrations, promotion and
	// administration. Built from POSTGRES_* when DATABASE_URL is unset.
	// Defaults to the local server as the current OS user, database
	// orders_pipeline.
	DatabaseURL string

	// PgBouncerURL, when set, is the URL workers use for their Postgres work,
	// so that many workers share few server connections. Built from
	// PGBOUNCER_HOST/PGBOUNCER_PORT and the DatabaseURL's user and database.
	// Defaults to empty: workers connect directly.
	PgBouncerURL string

	// ReadDatabaseURL, when set, is a PostgreSQL URL (typically a streaming
	// replica) for read-only queries: stats and dashboard reads. Nothing
	// is ever written through it, and migrations never run there.
	// Defaults to empty: reads use DatabaseURL.
	ReadDatabaseURL string

	// RedisURL is the Redis URL: one server (redis:// or rediss://, a
	// cluster node is detected), a cluster (redis://h1:p1?addr=h2:p2) or a
	// Sentinel-managed master (redis-sentinel://s1:26379,s2:26379/<master>);
	// see package redisconn. Defaults to redis://127.0.0.1:6379/0.
	RedisURL string

	// RedisCAFile is a PEM file of certificate authorities to trust for a
	// rediss:// connection, for servers with a private CA. Defaults to the
	// system's roots.
	RedisCAFile string

	// Schema is the PostgreSQL schema holding every redpg table. Defaults to
	// public.
	Schema string

	// KeyPrefix names a deployment, so tenants and tests never collide: the
	// queue is <prefix>orders:ingestion and every other key lives under
	// redpg:{<queue>}: (see package keys). Defaults to empty: the queue is
	// orders:ingestion, where the Python reference's producers push.
	KeyPrefix string

	// Workers is the number of concurrent workers `process` runs. Defaults to 4.
	Workers int

	// BatchSize is the most messages a worker claims at once. Defaults to 5000.
	BatchSize int

	// DedupWindow is how long an order id counts as seen. Defaults to one hour.
	DedupWindow time.Duration

	// MaxQueueDepth is the queue length at which producers wait. Defaults to
	// 100000.
	MaxQueueDepth int

	// Lease is how long a worker's claim on a batch survives without a
	// heartbeat before another worker may reclaim it. Defaults to 30s.
	Lease time.Duration

	// CacheTTL is how long the lookup snapshot lives in Redis. Defaults to 24h.
	CacheTTL time.Duration

	// MaxAttempts bounds the retries of a batch that fails for a reason other
	// than a lost connection before its messages are dead-lettered one by one.
	// Defaults to 5.
	MaxAttempts int

	// MaxDeliveries is how many dead workers may have held a message before
	// it is quarantined and dead-lettered undecoded. Defaults to 10.
	MaxDeliveries int

	// NaiveTimezone is the IANA zone of an order_timestamp written without
	// a zone (Python's datetime.now().isoformat()). Defaults to UTC.
	NaiveTimezone string

	// MaxMessageBytes is the one cap on a message's size, on every path.
	// Defaults to order.DefaultMaxBytes (4 MiB).
	MaxMessageBytes int
	// RefreshInterval, RefreshFallback, ShutdownTimeout and LeaderPoll
	// configure `redpg serve`. Zero leaves each to package service's
	// default (service.DefaultRefreshInterval and so on), which is where
	// their defaults live.
	RefreshInterval time.Duration
	RefreshFallback time.Duration
	ShutdownTimeout time.Duration
	LeaderPoll      time.Duration
	// HTTPAddr is where `redpg serve` (and `redpg dashboard`) serve the
	// dashboard, API, metrics and health checks (host:port), or HTTPOff.
	// Defaults to empty, which means web.DefaultAddr (loopback only).
	HTTPAddr string

	// HTTPToken, when set, is required by every HTTP endpoint except the
	// health checks. Defaults to empty: no token.
	HTTPToken string
	// RedisWaitReplicas, when positive, makes producers confirm every chunk
	// they queue with Redis WAIT on that many replicas, so a failover cannot
	// lose what a producer was told is queued (REDPG_REDIS_WAIT_REPLICAS).
	// Defaults to 0: replication stays asynchronous.
	RedisWaitReplicas int

	// RedisWaitTimeout bounds each WAIT (REDPG_REDIS_WAIT_TIMEOUT). Zero
	// leaves the queue package's default (queue.DefaultWaitTimeout, 1s).
	RedisWaitTimeout time.Duration
	// LockTimeout, StatementTimeout and IdleInTransactionTimeout bound the
	// pipeline's own PostgreSQL transactions (REDPG_LOCK_TIMEOUT,
	// REDPG_STATEMENT_TIMEOUT, REDPG_IDLE_IN_TRANSACTION_TIMEOUT), so that a
	// frozen worker's open transaction cannot block the others for good.
	// Zero leaves them to package pipeline, which owns their defaults
	// (pipeline.DefaultLockTimeout and the like).
	LockTimeout              time.Duration
	StatementTimeout         time.Duration
	IdleInTransactionTimeout time.Duration
}

// HTTPOff as HTTPAddr (REDPG_HTTP_ADDR, --http-addr) turns off the HTTP
// server `redpg serve` runs by default.
const HTTPOff = "off"

// Default values, exported so documentation and help text can quote them.
const (
	DefaultDatabase      = "orders_pipeline"
	DefaultRedisURL      = "redis://127.0.0.1:6379/0"
	DefaultSchema        = "public"
	DefaultWorkers       = 4
	DefaultBatchSize     = pipeline.DefaultBatchSize
	DefaultDedupWindow   = pipeline.DefaultDedupWindow
	DefaultMaxQueueDepth = queue.DefaultMaxDepth
	DefaultLease         = pipeline.DefaultLease
	DefaultCacheTTL      = lookup.DefaultTTL
	DefaultMaxAttempts   = pipeline.DefaultMaxAttempts
	DefaultMaxDeliveries = queue.DefaultMaxDeliveries
	DefaultNaiveTimezone = "UTC"
	// DefaultMaxMessageBytes is the decoder's own default, quoted here.
	DefaultMaxMessageBytes = order.DefaultMaxBytes
)

// MinMessageBytes is the smallest cap REDPG_MAX_MESSAGE_BYTES may set: an
// oversized message's dead letter keeps order.KeptPrefixBytes of it and
// must itself be within the cap.
const MinMessageBytes = 16 << 10

// WithDefaults returns a copy of c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.DatabaseURL == "" {
		c.DatabaseURL = (&url.URL{Scheme: "postgres", User: url.User(currentUser()), Path: "/" + DefaultDatabase}).String()
	}
	if c.RedisURL == "" {
		c.RedisURL = DefaultRedisURL
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.MaxQueueDepth == 0 {
		c.MaxQueueDepth = DefaultMaxQueueDepth
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.NaiveTimezone == "" {
		c.NaiveTimezone = DefaultNaiveTimezone
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	return c
}

// NaiveZone resolves NaiveTimezone. "Local" is refused: it would make the
// same message mean another instant on another host.
func (c Config) NaiveZone() (*time.Location, error) {
	if c.NaiveTimezone == "Local" {
		return nil, errors.New("name a zone (such as UTC or Europe/Berlin); Local depends on the host")
	}
	loc, err := time.LoadLocation(c.NaiveTimezone)
	if err != nil {
		return nil, errors.New("not an IANA time zone name (such as UTC or America/New_York)")
	}
	return loc, nil
}

// MessageOptions are the decoder options these settings give: the zone of
// naive timestamps (UTC if NaiveTimezone does not resolve, which Validate
// reports) and the size cap.
func (c Config) MessageOptions() order.Options {
	loc, err := c.NaiveZone()
	if err != nil {
		loc = time.UTC
	}
	return order.Options{NaiveZone: loc, MaxBytes: c.MaxMessageBytes}
}

// Validate reports the first setting that cannot work, in words that say
// which variable or flag to change.
func (c Config) Validate() error {
	var errs []error
	if _, err := ParseDatabaseURL(c.DatabaseURL); err != nil {
		errs = append(errs, fmt.Errorf("DATABASE_URL: %w", err))
	}
	if c.ReadDatabaseURL != "" {
		if _, err := ParseDatabaseURL(c.ReadDatabaseURL); err != nil {
			errs = append(errs, fmt.Errorf("DATABASE_READ_URL: %w", err))
		}
	}
	if c.PgBouncerURL != "" {
		if _, err := ParseDatabaseURL(c.PgBouncerURL); err != nil {
			errs = append(errs, fmt.Errorf("PGBOUNCER_URL: %w", err))
		}
	}
	if _, err := ParseRedisURL(c.RedisURL); err != nil {
		errs = append(errs, fmt.Errorf("REDIS_URL: %w", err))
	}
	if !validIdent(c.Schema) {
		errs = append(errs, fmt.Errorf("POSTGRES_SCHEMA %q: use lower-case letters, digits and underscores, starting with a letter or underscore", c.Schema))
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		errs = append(errs, fmt.Errorf("REDPG_KEY_PREFIX %q: must not contain braces; redpg adds the Redis Cluster hash tag "+
			"itself (every key of a deployment is under redpg:{<prefix>orders:ingestion}:, in one slot)", c.KeyPrefix))
	} else if strings.ContainsAny(c.KeyPrefix, " \t\r\n*?[]") {
		errs = append(errs, fmt.Errorf("REDPG_KEY_PREFIX %q: must not contain spaces or glob characters", c.KeyPrefix))
	}
	if c.Workers < 1 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("WORKER_COUNT %d: must be between 1 and 1024", c.Workers))
	}
	if c.BatchSize < 1 || c.BatchSize > pipeline.MaxBatchSize {
		errs = append(errs, fmt.Errorf("BATCH_SIZE %d: must be between 1 and %d", c.BatchSize, pipeline.MaxBatchSize))
	}
	if c.DedupWindow < time.Second {
		errs = append(errs, fmt.Errorf("DEDUP_WINDOW_SECONDS %s: must be at least one second", c.DedupWindow))
	}
	if c.MaxQueueDepth < 1 {
		errs = append(errs, fmt.Errorf("MAX_QUEUE_DEPTH %d: must be positive", c.MaxQueueDepth))
	}
	if c.Lease < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("REDPG_LEASE %s: must be at least 100ms", c.Lease))
	}
	if c.CacheTTL < time.Second {
		errs = append(errs, fmt.Errorf("REDPG_CACHE_TTL %s: must be at least one second", c.CacheTTL))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("REDPG_MAX_ATTEMPTS %d: must be at least 1", c.MaxAttempts))
	}
	if c.MaxDeliveries < 1 {
		errs = append(errs, fmt.Errorf("REDPG_MAX_DELIVERIES %d: must be at least 1", c.MaxDeliveries))
	}
	if _, err := c.NaiveZone(); err != nil {
		errs = append(errs, fmt.Errorf("REDPG_NAIVE_TIMEZONE %q: %w", c.NaiveTimezone, err))
	}
	if c.MaxMessageBytes < MinMessageBytes || c.MaxMessageBytes > 512<<20 {
		errs = append(errs, fmt.Errorf("REDPG_MAX_MESSAGE_BYTES %d: must be between %d and %d (Redis's largest string)", c.MaxMessageBytes, MinMessageBytes, 512<<20))
	}
	if c.RefreshInterval < 0 || c.RefreshFallback < 0 || c.ShutdownTimeout < 0 || c.LeaderPoll < 0 {
		errs = append(errs, errors.New("REDPG_REFRESH_INTERVAL, REDPG_REFRESH_FALLBACK, REDPG_SHUTDOWN_TIMEOUT and REDPG_LEADER_POLL must not be negative"))
	}
	if c.LeaderPoll > 0 && c.LeaderPoll < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("REDPG_LEADER_POLL %s: must be at least 10ms", c.LeaderPoll))
	}
	if c.HTTPAddr != "" && c.HTTPAddr != HTTPOff {
		if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("REDPG_HTTP_ADDR %q: want host:port, such as 127.0.0.1:8080, or %s", c.HTTPAddr, HTTPOff))
		}
	}
	if c.RedisWaitReplicas < 0 {
		errs = append(errs, fmt.Errorf("REDPG_REDIS_WAIT_REPLICAS %d: must not be negative", c.RedisWaitReplicas))
	}
	if c.RedisWaitTimeout != 0 && c.RedisWaitTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("REDPG_REDIS_WAIT_TIMEOUT %s: must be at least 1ms", c.RedisWaitTimeout))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"REDPG_LOCK_TIMEOUT", c.LockTimeout}, {"REDPG_STATEMENT_TIMEOUT", c.StatementTimeout}, {"REDPG_IDLE_IN_TRANSACTION_TIMEOUT", c.IdleInTransactionTimeout}} {
		if d.v < 0 || d.v > 0 && d.v < time.Millisecond {
			errs = append(errs, fmt.Errorf("%s %s: must be at least 1ms (unset for the default)", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// WorkerDatabaseURL is the URL workers use: PgBouncer's when configured,
// otherwise the direct one.
func (c Config) WorkerDatabaseURL() string {
	if c.PgBouncerURL != "" {
		return c.PgBouncerURL
	}
	return c.DatabaseURL
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "postgres"
}

// FromEnv builds a Config from environment variables, looked up through get
// so that a .env file can stand behind the real environment. Unset variables
// leave fields zero for WithDefaults to fill.
func FromEnv(get func(string) string) (Config, error) {
	var c Config
	var errs []error
	c.DatabaseURL = get("DATABASE_URL")
	if c.DatabaseURL == "" {
		c.DatabaseURL = postgresURLFromParts(get, get("POSTGRES_HOST"), get("POSTGRES_PORT"))
	}
	if host, port := get("PGBOUNCER_HOST"), get("PGBOUNCER_PORT"); get("PGBOUNCER_URL") != "" {
		c.PgBouncerURL = get("PGBOUNCER_URL")
	} else if host != "" || port != "" {
		if host == "" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = "6432"
		}
		// The DatabaseURL's user, password, database and options, at
		// PgBouncer's address.
		c.PgBouncerURL = withHostPort(c.DatabaseURL, host, port)
		if c.PgBouncerURL == "" {
			c.PgBouncerURL = postgresURLFromParts(get, host, port)
		}
	}
	c.ReadDatabaseURL = get("DATABASE_READ_URL")
	c.RedisURL = get("REDIS_URL")
	if c.RedisURL == "" && (get("REDIS_HOST") != "" || get("REDIS_PORT") != "" || get("REDIS_DB") != "" ||
		get("REDIS_USER") != "" || get("REDIS_PASSWORD") != "") {
		host, port := get("REDIS_HOST"), get("REDIS_PORT")
		if host == "" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = "6379"
		}
		u := url.URL{Scheme: "redis", Host: net.JoinHostPort(host, port), Path: "/" + orDefault(get("REDIS_DB"), "0")}
		if pw := get("REDIS_PASSWORD"); pw != "" {
			u.User = url.UserPassword(get("REDIS_USER"), pw)
		}
		c.RedisURL = u.String()
	}
	c.RedisCAFile = get("REDIS_TLS_CA_FILE")
	c.Schema = get("POSTGRES_SCHEMA")
	c.KeyPrefix = get("REDPG_KEY_PREFIX")
	c.HTTPAddr = get("REDPG_HTTP_ADDR")
	c.HTTPToken = get("REDPG_HTTP_TOKEN")
	// A count or duration that is set must say something: 0 would silently
	// mean "the default", which is never what whoever wrote it meant. Only
	// REDPG_REDIS_WAIT_REPLICAS, where 0 means "do not wait", takes 0.
	intVar := func(name string, dst *int) {
		if v := get(name); v != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a whole number", name, v))
				return
			}
			if n < 1 && !(n == 0 && name == "REDPG_REDIS_WAIT_REPLICAS") {
				errs = append(errs, fmt.Errorf("%s=%q: must be at least 1 (unset it for the default)", name, v))
				return
			}
			*dst = n
		}
	}
	durVar := func(name string, dst *time.Duration, unit time.Duration) {
		if v := get(name); v != "" {
			d, err := ParseDuration(v, unit)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
				return
			}
			if d <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: must be positive (unset it for the default)", name, v))
				return
			}
			*dst = d
		}
	}
	intVar("WORKER_COUNT", &c.Workers)
	intVar("BATCH_SIZE", &c.BatchSize)
	intVar("MAX_QUEUE_DEPTH", &c.MaxQueueDepth)
	intVar("REDPG_MAX_ATTEMPTS", &c.MaxAttempts)
	intVar("REDPG_MAX_DELIVERIES", &c.MaxDeliveries)
	intVar("REDPG_MAX_MESSAGE_BYTES", &c.MaxMessageBytes)
	c.NaiveTimezone = strings.TrimSpace(get("REDPG_NAIVE_TIMEZONE"))
	durVar("DEDUP_WINDOW_SECONDS", &c.DedupWindow, time.Second)
	durVar("REDPG_LEASE", &c.Lease, time.Second)
	durVar("REDPG_CACHE_TTL", &c.CacheTTL, time.Second)
	durVar("REDPG_REFRESH_INTERVAL", &c.RefreshInterval, time.Second)
	durVar("REDPG_REFRESH_FALLBACK", &c.RefreshFallback, time.Second)
	durVar("REDPG_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, time.Second)
	durVar("REDPG_LEADER_POLL", &c.LeaderPoll, time.Second)
	intVar("REDPG_REDIS_WAIT_REPLICAS", &c.RedisWaitReplicas)
	durVar("REDPG_REDIS_WAIT_TIMEOUT", &c.RedisWaitTimeout, time.Millisecond)
	durVar("REDPG_LOCK_TIMEOUT", &c.LockTimeout, time.Second)
	durVar("REDPG_STATEMENT_TIMEOUT", &c.StatementTimeout, time.Second)
	durVar("REDPG_IDLE_IN_TRANSACTION_TIMEOUT", &c.IdleInTransactionTimeout, time.Second)
	return c, errors.Join(errs...)
}

// postgresURLFromParts composes a URL from POSTGRES_* variables, or returns
// empty when none of them is set and host and port are empty.
func postgresURLFromParts(get func(string) string, host, port string) string {
	usr, pw, db := get("POSTGRES_USER"), get("POSTGRES_PASSWORD"), get("POSTGRES_DB")
	if host == "" && port == "" && usr == "" && pw == "" && db == "" && get("POSTGRES_SSLMODE") == "" {
		return ""
	}
	u := url.URL{Scheme: "postgres", Path: "/" + orDefault(db, DefaultDatabase)}
	usr = orDefault(usr, currentUser())
	if pw != "" {
		u.User = url.UserPassword(usr, pw)
	} else {
		u.User = url.User(usr)
	}
	if host != "" || port != "" {
		u.Host = net.JoinHostPort(orDefault(host, "localhost"), orDefault(port, "5432"))
	}
	if mode := get("POSTGRES_SSLMODE"); mode != "" {
		u.RawQuery = url.Values{"sslmode": {mode}}.Encode()
	}
	return u.String()
}

// withHostPort returns the PostgreSQL URL dbURL pointed at host:port, or
// empty when dbURL is not such a URL (keyword/value strings are left to the
// POSTGRES_* parts).
func withHostPort(dbURL, host, port string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return ""
	}
	u.Host = net.JoinHostPort(host, port)
	if q := u.Query(); q.Has("host") || q.Has("port") {
		q.Del("host")
		q.Del("port")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// ParseDuration accepts a Go duration ("90s", "1h") or a bare number, read
// in unit, so that the seed's DEDUP_WINDOW_SECONDS=3600 keeps working.
func ParseDuration(s string, unit time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || n > float64(1<<62)/float64(unit) || math.IsNaN(n) {
			return 0, errors.New("out of range")
		}
		return time.Duration(n * float64(unit)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a number of seconds or a duration such as 90s or 1h")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}
