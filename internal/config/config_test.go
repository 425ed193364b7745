package config

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// env is a map-backed getter standing in for the process environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvEmpty(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(nil))
	require.NoError(t, err)
	require.Equal(t, Config{}, c, "unset variables leave every field for WithDefaults")
}

func TestFromEnvURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		database  string
		pgbouncer string
		redis     string
	}{
		{
			name:     "DATABASE_URL as given",
			env:      map[string]string{"DATABASE_URL": "postgres://app:pw@db:5433/shop?sslmode=require"},
			database: "postgres://app:pw@db:5433/shop?sslmode=require",
		},
		{
			name: "DATABASE_URL wins over POSTGRES_*",
			env: map[string]string{"DATABASE_URL": "postgres://app@db/shop", "POSTGRES_HOST": "other",
				"POSTGRES_USER": "someone", "POSTGRES_PASSWORD": "pw", "POSTGRES_DB": "elsewhere"},
			database: "postgres://app@db/shop",
		},
		{
			name: "every POSTGRES_* part",
			env: map[string]string{"POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "6543", "POSTGRES_USER": "app",
				"POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "shop", "POSTGRES_SSLMODE": "verify-full"},
			database: "postgres://app:s3cret@db.internal:6543/shop?sslmode=verify-full",
		},
		{
			name:     "POSTGRES_HOST alone gets the default port and database",
			env:      map[string]string{"POSTGRES_HOST": "db", "POSTGRES_USER": "app"},
			database: "postgres://app@db:5432/orders_pipeline",
		},
		{
			name:     "POSTGRES_PORT alone gets localhost",
			env:      map[string]string{"POSTGRES_PORT": "5433", "POSTGRES_USER": "app"},
			database: "postgres://app@localhost:5433/orders_pipeline",
		},
		{
			name:     "POSTGRES_DB alone keeps the local socket",
			env:      map[string]string{"POSTGRES_DB": "shop", "POSTGRES_USER": "app"},
			database: "postgres://app@/shop",
		},
		{
			name:     "password with URL metacharacters is escaped",
			env:      map[string]string{"POSTGRES_HOST": "db", "POSTGRES_USER": "app", "POSTGRES_PASSWORD": "p@ss:w/rd?#"},
			database: "postgres://app:p%40ss%3Aw%2Frd%3F%23@db:5432/orders_pipeline",
		},
		{
			name: "PGBOUNCER_URL wins over PGBOUNCER_HOST",
			env: map[string]string{"POSTGRES_USER": "app", "PGBOUNCER_URL": "postgres://app@pgb:6432/shop",
				"PGBOUNCER_HOST": "ignored", "PGBOUNCER_PORT": "1"},
			database:  "postgres://app@/orders_pipeline",
			pgbouncer: "postgres://app@pgb:6432/shop",
		},
		{
			name: "PGBOUNCER_HOST with the POSTGRES_* credentials",
			env: map[string]string{"POSTGRES_HOST": "db", "POSTGRES_USER": "app", "POSTGRES_PASSWORD": "pw",
				"POSTGRES_DB": "shop", "PGBOUNCER_HOST": "pgb"},
			database:  "postgres://app:pw@db:5432/shop",
			pgbouncer: "postgres://app:pw@pgb:6432/shop",
		},
		{
			name:      "PGBOUNCER_PORT alone means the local PgBouncer",
			env:       map[string]string{"POSTGRES_USER": "app", "PGBOUNCER_PORT": "7432"},
			database:  "postgres://app@/orders_pipeline",
			pgbouncer: "postgres://app@127.0.0.1:7432/orders_pipeline",
		},
		{
			name: "PGBOUNCER_HOST takes DATABASE_URL's user, password, database and options",
			env: map[string]string{"DATABASE_URL": "postgres://app:pw@db:5432/shop?sslmode=require",
				"PGBOUNCER_HOST": "pgb", "PGBOUNCER_PORT": "6000"},
			database:  "postgres://app:pw@db:5432/shop?sslmode=require",
			pgbouncer: "postgres://app:pw@pgb:6000/shop?sslmode=require",
		},
		{
			name:  "REDIS_URL as given",
			env:   map[string]string{"REDIS_URL": "rediss://user:pw@cache:6380/2", "REDIS_HOST": "ignored"},
			redis: "rediss://user:pw@cache:6380/2",
		},
		{
			name:  "REDIS_HOST alone",
			env:   map[string]string{"REDIS_HOST": "cache"},
			redis: "redis://cache:6379/0",
		},
		{
			name:  "REDIS_PORT alone",
			env:   map[string]string{"REDIS_PORT": "6380"},
			redis: "redis://127.0.0.1:6380/0",
		},
		{
			name:  "every REDIS_* part",
			env:   map[string]string{"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_DB": "3", "REDIS_USER": "app", "REDIS_PASSWORD": "p@ss"},
			redis: "redis://app:p%40ss@cache:6380/3",
		},
		{
			name:  "REDIS_PASSWORD without a user",
			env:   map[string]string{"REDIS_HOST": "cache", "REDIS_PASSWORD": "pw"},
			redis: "redis://:pw@cache:6379/0",
		},
		{
			name:  "REDIS_PASSWORD alone is not ignored",
			env:   map[string]string{"REDIS_PASSWORD": "pw"},
			redis: "redis://:pw@127.0.0.1:6379/0",
		},
		{
			name:  "REDIS_DB alone is not ignored",
			env:   map[string]string{"REDIS_DB": "5"},
			redis: "redis://127.0.0.1:6379/5",
		},
		{
			name:  "IPv6 host",
			env:   map[string]string{"REDIS_HOST": "::1"},
			redis: "redis://[::1]:6379/0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := FromEnv(env(tc.env))
			require.NoError(t, err)
			require.Equal(t, tc.database, c.DatabaseURL)
			require.Equal(t, tc.pgbouncer, c.PgBouncerURL)
			require.Equal(t, tc.redis, c.RedisURL)
			// What FromEnv builds, the drivers accept.
			d := c.WithDefaults()
			require.NoError(t, d.Validate())
		})
	}
}

func TestFromEnvNumbersAndDurations(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{
		"WORKER_COUNT": " 8 ", "BATCH_SIZE": "250", "MAX_QUEUE_DEPTH": "1000", "REDPG_MAX_ATTEMPTS": "2",
		"DEDUP_WINDOW_SECONDS": "3600", "REDPG_LEASE": "90s", "REDPG_CACHE_TTL": "1.5",
		"POSTGRES_SCHEMA": "tenant_1", "REDPG_KEY_PREFIX": "t1:", "REDIS_TLS_CA_FILE": "/etc/ca.pem",
		"REDPG_NAIVE_TIMEZONE": " America/New_York ", "REDPG_MAX_MESSAGE_BYTES": "1048576",
		"REDPG_REDIS_WAIT_REPLICAS": "1", "REDPG_REDIS_WAIT_TIMEOUT": "250",
		"REDPG_LOCK_TIMEOUT": "2", "REDPG_STATEMENT_TIMEOUT": "90s", "REDPG_IDLE_IN_TRANSACTION_TIMEOUT": "0.5",
	}))
	require.NoError(t, err)
	require.Equal(t, "America/New_York", c.NaiveTimezone)
	require.Equal(t, 1<<20, c.MaxMessageBytes)
	opt := c.WithDefaults().MessageOptions()
	require.Equal(t, "America/New_York", opt.NaiveZone.String())
	require.Equal(t, 1<<20, opt.MaxBytes)
	require.Equal(t, 1, c.RedisWaitReplicas)
	require.Equal(t, 250*time.Millisecond, c.RedisWaitTimeout, "a bare number is milliseconds")
	require.Equal(t, 8, c.Workers)
	require.Equal(t, 250, c.BatchSize)
	require.Equal(t, 1000, c.MaxQueueDepth)
	require.Equal(t, 2, c.MaxAttempts)
	require.Equal(t, time.Hour, c.DedupWindow)
	require.Equal(t, 90*time.Second, c.Lease)
	require.Equal(t, 1500*time.Millisecond, c.CacheTTL)
	require.Equal(t, "tenant_1", c.Schema)
	require.Equal(t, "t1:", c.KeyPrefix)
	require.Equal(t, "/etc/ca.pem", c.RedisCAFile)
	require.Equal(t, 2*time.Second, c.LockTimeout)
	require.Equal(t, 90*time.Second, c.StatementTimeout)
	require.Equal(t, 500*time.Millisecond, c.IdleInTransactionTimeout)
}

func TestFromEnvErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		val  string
	}{
		{"WORKER_COUNT", "four"},
		{"BATCH_SIZE", "1.5"},
		{"MAX_QUEUE_DEPTH", "1e5"},
		{"REDPG_MAX_ATTEMPTS", "-"},
		{"DEDUP_WINDOW_SECONDS", "abc"},
		{"DEDUP_WINDOW_SECONDS", "-5"},
		{"DEDUP_WINDOW_SECONDS", "NaN"},
		{"REDPG_LEASE", "-1s"},
		{"REDPG_CACHE_TTL", "1 day"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.val, func(t *testing.T) {
			t.Parallel()
			_, err := FromEnv(env(map[string]string{tc.name: tc.val}))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.name)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", tc.val))
		})
	}

	// Every bad variable is reported, not only the first.
	_, err := FromEnv(env(map[string]string{"WORKER_COUNT": "x", "REDPG_LEASE": "y"}))
	require.ErrorContains(t, err, "WORKER_COUNT")
	require.ErrorContains(t, err, "REDPG_LEASE")
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		unit time.Duration
		want time.Duration
	}{
		{"3600", time.Second, time.Hour},
		{" 60 ", time.Second, time.Minute},
		{"0.5", time.Second, 500 * time.Millisecond},
		{"250", time.Millisecond, 250 * time.Millisecond},
		{"0", time.Second, 0},
		{"90s", time.Second, 90 * time.Second},
		{"1h30m", time.Second, 90 * time.Minute},
		{"100ms", time.Hour, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in, tc.unit)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "abc", "-1", "-1s", "NaN", "Inf", "1e300", "10 s", "1 hour"} {
		d, err := ParseDuration(bad, time.Second)
		require.Error(t, err, "%q gave %v", bad, d)
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	d := Config{}.WithDefaults()
	require.Equal(t, DefaultRedisURL, d.RedisURL)
	require.Equal(t, DefaultSchema, d.Schema)
	require.Equal(t, DefaultWorkers, d.Workers)
	require.Equal(t, DefaultBatchSize, d.BatchSize)
	require.Equal(t, DefaultDedupWindow, d.DedupWindow)
	require.Equal(t, time.Hour, d.DedupWindow)
	require.Equal(t, DefaultMaxQueueDepth, d.MaxQueueDepth)
	require.Equal(t, DefaultLease, d.Lease)
	require.Equal(t, DefaultCacheTTL, d.CacheTTL)
	require.Equal(t, DefaultMaxAttempts, d.MaxAttempts)
	require.Equal(t, DefaultMaxDeliveries, d.MaxDeliveries)
	require.Equal(t, "UTC", d.NaiveTimezone)
	require.Equal(t, 4<<20, d.MaxMessageBytes)
	require.Equal(t, time.UTC, d.MessageOptions().NaiveZone)
	require.Empty(t, d.PgBouncerURL, "workers connect directly by default")
	require.Empty(t, d.KeyPrefix)
	require.Equal(t, d.DatabaseURL, d.WorkerDatabaseURL())

	u, err := url.Parse(d.DatabaseURL)
	require.NoError(t, err)
	require.Equal(t, "postgres", u.Scheme)
	require.Equal(t, "/"+DefaultDatabase, u.Path)
	require.NotEmpty(t, u.User.Username())
	require.NoError(t, d.Validate(), "the defaults must work as they are")

	set := Config{DatabaseURL: "postgres://a@b/c", PgBouncerURL: "postgres://a@p/c", RedisURL: "redis://r:1/2", Schema: "s",
		KeyPrefix: "k:", Workers: 9, BatchSize: 8, DedupWindow: time.Minute, MaxQueueDepth: 7, Lease: time.Second,
		CacheTTL: time.Minute, MaxAttempts: 3, MaxDeliveries: 4, RedisCAFile: "ca.pem",
		NaiveTimezone: "Asia/Kolkata", MaxMessageBytes: 1 << 20}
	require.Equal(t, set, set.WithDefaults(), "set fields are kept")
	require.Equal(t, "postgres://a@p/c", set.WorkerDatabaseURL())
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := Config{}.WithDefaults()
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error
	}{
		{"empty database URL", func(c *Config) { c.DatabaseURL = " " }, []string{"DATABASE_URL", "empty"}},
		{"bad database URL", func(c *Config) { c.DatabaseURL = "postgres://app:s3cret@db:notaport/x" }, []string{"DATABASE_URL"}},
		{"bad PgBouncer URL", func(c *Config) { c.PgBouncerURL = "mysql://x:s3cret@y:z" }, []string{"PGBOUNCER_URL"}},
		{"bad read database URL", func(c *Config) { c.ReadDatabaseURL = "postgres://app:s3cret@db:notaport/x" }, []string{"DATABASE_READ_URL"}},
		{"bad Redis URL", func(c *Config) { c.RedisURL = "http://cache:6379" }, []string{"REDIS_URL"}},
		{"bad Redis URL with a password", func(c *Config) { c.RedisURL = "redis://u:s3cret@cache:port/0" }, []string{"REDIS_URL"}},
		{"empty Redis URL", func(c *Config) { c.RedisURL = "" }, []string{"REDIS_URL", "empty"}},
		{"schema with capitals", func(c *Config) { c.Schema = "Orders" }, []string{"POSTGRES_SCHEMA", `"Orders"`}},
		{"schema starting with a digit", func(c *Config) { c.Schema = "1x" }, []string{"POSTGRES_SCHEMA"}},
		{"schema with SQL", func(c *Config) { c.Schema = "x; drop table y" }, []string{"POSTGRES_SCHEMA"}},
		{"prefix with a glob", func(c *Config) { c.KeyPrefix = "t*:" }, []string{"REDPG_KEY_PREFIX"}},
		{"prefix with a space", func(c *Config) { c.KeyPrefix = "a b" }, []string{"REDPG_KEY_PREFIX"}},
		{"prefix with a hash tag", func(c *Config) { c.KeyPrefix = "{eu}:" }, []string{"REDPG_KEY_PREFIX", "adds the Redis Cluster hash tag"}},
		{"sentinel URL without a master", func(c *Config) { c.RedisURL = "redis-sentinel://s1:26379" }, []string{"REDIS_URL", "no master name", "redis-sentinel://"}},
		{"cluster URL with a database", func(c *Config) { c.RedisURL = "redis://n1:7000/2?addr=n2:7001" }, []string{"REDIS_URL", "database 0 only"}},
		{"no workers", func(c *Config) { c.Workers = -1 }, []string{"WORKER_COUNT", "-1", "between 1 and 1024"}},
		{"too many workers", func(c *Config) { c.Workers = 5000 }, []string{"WORKER_COUNT"}},
		{"batch too big", func(c *Config) { c.BatchSize = 100001 }, []string{"BATCH_SIZE", "100001"}},
		{"window too short", func(c *Config) { c.DedupWindow = time.Millisecond }, []string{"DEDUP_WINDOW_SECONDS", "1ms"}},
		{"queue depth", func(c *Config) { c.MaxQueueDepth = -5 }, []string{"MAX_QUEUE_DEPTH"}},
		{"lease too short", func(c *Config) { c.Lease = time.Millisecond }, []string{"REDPG_LEASE"}},
		{"cache TTL too short", func(c *Config) { c.CacheTTL = time.Millisecond }, []string{"REDPG_CACHE_TTL"}},
		{"negative lock timeout", func(c *Config) { c.LockTimeout = -time.Second }, []string{"REDPG_LOCK_TIMEOUT"}},
		{"statement timeout under 1ms", func(c *Config) { c.StatementTimeout = time.Microsecond }, []string{"REDPG_STATEMENT_TIMEOUT"}},
		{"negative idle timeout", func(c *Config) { c.IdleInTransactionTimeout = -1 }, []string{"REDPG_IDLE_IN_TRANSACTION_TIMEOUT"}},
		{"attempts", func(c *Config) { c.MaxAttempts = -1 }, []string{"REDPG_MAX_ATTEMPTS"}},
		{"unknown naive zone", func(c *Config) { c.NaiveTimezone = "Mars/Olympus" }, []string{"REDPG_NAIVE_TIMEZONE", "Mars/Olympus", "IANA"}},
		{"naive zone Local", func(c *Config) { c.NaiveTimezone = "Local" }, []string{"REDPG_NAIVE_TIMEZONE", "Local"}},
		{"message cap too small", func(c *Config) { c.MaxMessageBytes = 1000 }, []string{"REDPG_MAX_MESSAGE_BYTES", "1000"}},
		{"message cap too large", func(c *Config) { c.MaxMessageBytes = 1 << 30 }, []string{"REDPG_MAX_MESSAGE_BYTES"}},
		{"wait replicas", func(c *Config) { c.RedisWaitReplicas = -1 }, []string{"REDPG_REDIS_WAIT_REPLICAS"}},
		{"wait timeout", func(c *Config) { c.RedisWaitTimeout = time.Microsecond }, []string{"REDPG_REDIS_WAIT_TIMEOUT"}},
		{"several at once", func(c *Config) { c.Workers, c.BatchSize = -1, -1 }, []string{"WORKER_COUNT", "BATCH_SIZE"}},
		{"HTTP address without a port", func(c *Config) { c.HTTPAddr = "localhost" }, []string{"REDPG_HTTP_ADDR", "host:port"}},
		{"HTTP address with an empty port", func(c *Config) { c.HTTPAddr = "127.0.0.1:" }, []string{"REDPG_HTTP_ADDR"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.change(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "s3cret", "a password leaked into %q", err)
		})
	}

	// Keyword/value strings and PgBouncer URLs are fine too.
	c := good
	c.DatabaseURL = "host=/tmp dbname=x user=y"
	c.PgBouncerURL = "postgres://app@pgb:6432/shop"
	c.HTTPAddr = ":9090"
	require.NoError(t, c.Validate())
	c.HTTPAddr = HTTPOff
	require.NoError(t, c.Validate(), "off turns the HTTP server off")
	c.HTTPAddr = ":9090"
	require.Equal(t, c.PgBouncerURL, c.WorkerDatabaseURL())
	require.True(t, strings.HasPrefix(good.DatabaseURL, "postgres://"))
}

func TestFromEnvServeSettings(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{
		"REDPG_REFRESH_INTERVAL": "5", "REDPG_REFRESH_FALLBACK": "1m", "REDPG_SHUTDOWN_TIMEOUT": "20s", "REDPG_LEADER_POLL": "250ms",
	}))
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, c.RefreshInterval)
	require.Equal(t, time.Minute, c.RefreshFallback)
	require.Equal(t, 20*time.Second, c.ShutdownTimeout)
	require.Equal(t, 250*time.Millisecond, c.LeaderPoll)
	require.NoError(t, c.WithDefaults().Validate())
	require.Zero(t, c.WithDefaults().RefreshInterval-5*time.Second, "serve's defaults belong to package service; config keeps what was set")

	c.LeaderPoll = time.Millisecond
	require.ErrorContains(t, c.WithDefaults().Validate(), "REDPG_LEADER_POLL")
	_, err = FromEnv(env(map[string]string{"REDPG_SHUTDOWN_TIMEOUT": "-1s"}))
	require.ErrorContains(t, err, "REDPG_SHUTDOWN_TIMEOUT")
}

func TestFromEnvHTTP(t *testing.T) {
	t.Parallel()
	c, err := FromEnv(env(map[string]string{"REDPG_HTTP_ADDR": "0.0.0.0:9000", "REDPG_HTTP_TOKEN": "tok"}))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", c.HTTPAddr)
	require.Equal(t, "tok", c.HTTPToken)
	require.Empty(t, Config{}.WithDefaults().HTTPToken, "no token unless one is set")
	require.Empty(t, Config{}.WithDefaults().HTTPAddr, "empty means web.DefaultAddr, decided by package web")
}

// TestReadDatabaseURLFromEnv: DATABASE_READ_URL is taken as it is, with no
// default: unset, reads use DATABASE_URL.
func TestReadDatabaseURLFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_READ_URL": "postgres://app@replica:5432/shop"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.WithDefaults().ReadDatabaseURL != "postgres://app@replica:5432/shop" {
		t.Fatalf("ReadDatabaseURL = %q", c.ReadDatabaseURL)
	}
	c, err = FromEnv(func(string) string { return "" })
	if err != nil || c.WithDefaults().ReadDatabaseURL != "" {
		t.Fatalf("unset: %q, %v", c.ReadDatabaseURL, err)
	}
}
