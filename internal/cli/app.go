// Package cli is redpg's command-line interface: it resolves configuration
// (flags > environment > .env > defaults), connects to PostgreSQL, Redis
// and optionally PgBouncer with errors that say what to start, and drives
// package pipeline.
package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/version"
)

// app carries what every command shares. It is built per invocation: no
// globals, so tests can run commands side by side.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	// global flags
	envFile         string
	databaseURL     string
	readDatabaseURL string
	pgbouncerURL    string
	redisURL        string
	redisCAFile     string
	schemaName      string
	keyPrefix       string
	logLevel        string
	naiveZone       string
	maxMsgBytes     int
	logFormat       string
	usePgBouncer    bool
	// shutdownGrace, when set, is the pipeline's ShutdownGrace (serve).
	shutdownGrace time.Duration

	// timings, if set before open, collects step times and observes
	// workers (the dashboard's metrics).
	timings *pipeline.StageTimes

	cfg config.Config
	log *slog.Logger

	pg   *pgxpool.Pool
	wpg  *pgxpool.Pool
	rpg  *pgxpool.Pool // read-only queries; a.pg unless DATABASE_READ_URL is set
	rdb  redis.UniversalClient
	pipe *pipeline.Pipeline
}

// resolve builds the configuration: defaults, then .env, then the
// environment, then flags the user set.
func (a *app) resolve(cmd *cobra.Command) error {
	get := a.getenv
	if get == nil {
		lookup, err := config.Lookup(a.envFile)
		if err != nil {
			return err
		}
		get = lookup
	}
	cfg, err := config.FromEnv(get)
	if err != nil {
		return usageError{err}
	}
	flags := cmd.Flags()
	set := func(name string, dst *string, v string) {
		if flags.Changed(name) {
			*dst = v
		}
	}
	set("database-url", &cfg.DatabaseURL, a.databaseURL)
	set("read-database-url", &cfg.ReadDatabaseURL, a.readDatabaseURL)
	set("pgbouncer-url", &cfg.PgBouncerURL, a.pgbouncerURL)
	set("redis-url", &cfg.RedisURL, a.redisURL)
	set("redis-ca-file", &cfg.RedisCAFile, a.redisCAFile)
	set("schema", &cfg.Schema, a.schemaName)
	set("key-prefix", &cfg.KeyPrefix, a.keyPrefix)
	set("naive-timezone", &cfg.NaiveTimezone, a.naiveZone)
	if flags.Changed("max-message-bytes") {
		cfg.MaxMessageBytes = a.maxMsgBytes
	}
	a.cfg = cfg
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.logFormat {
	case "text", "":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", a.logFormat)}
	}
	// go-redis logs dial failures itself; route them to debug so a down
	// server yields our one-line message, not a screenful.
	redis.SetLogger(redisLogger{a.log})
	return nil
}

// redisLogger adapts slog to go-redis's logger interface.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, config.RedactText(fmt.Sprintf(format, v...)), "component", "go-redis")
}

// finish fills defaults and validates, after commands applied their flags.
func (a *app) finish() error {
	a.cfg = a.cfg.WithDefaults()
	if err := a.cfg.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// usageError marks errors caused by the invocation, for exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// connectTimeout bounds how long a command waits for a server at start-up.
const connectTimeout = 5 * time.Second

// open connects to everything the pipeline needs and applies migrations.
func (a *app) open(ctx context.Context) error {
	if err := a.finish(); err != nil {
		return err
	}
	if err := a.openPostgres(ctx); err != nil {
		return err
	}
	if err := a.openRedis(ctx); err != nil {
		return err
	}
	tables, err := a.tables(ctx)
	if err != nil {
		return err
	}
	p, err := pipeline.New(pipeline.Config{
		Keys: keys.Space{Prefix: a.cfg.KeyPrefix}, Tables: tables,
		BatchSize: a.cfg.BatchSize, DedupWindow: a.cfg.DedupWindow, MaxQueueDepth: a.cfg.MaxQueueDepth,
		Lease: a.cfg.Lease, CacheTTL: a.cfg.CacheTTL, MaxAttempts: a.cfg.MaxAttempts, MaxDeliveries: a.cfg.MaxDeliveries, Logger: a.log,
		Version: version.String(), Message: a.cfg.MessageOptions(),
		ShutdownGrace:     a.shutdownGrace,
		Timings:           a.timings,
		Reader:            a.rpg,
		RedisWaitReplicas: a.cfg.RedisWaitReplicas, RedisWaitTimeout: a.cfg.RedisWaitTimeout,
		LockTimeout: a.cfg.LockTimeout, StatementTimeout: a.cfg.StatementTimeout, IdleInTransactionTimeout: a.cfg.IdleInTransactionTimeout,
	}, a.pg, a.wpg, a.rdb)
	if err != nil {
		return err
	}
	a.pipe = p
	return nil
}

// tables names the schema's relations, and says whether orders is
// partitioned, which decides how promotion keeps order ids unique.
func (a *app) tables(ctx context.Context) (schema.Tables, error) {
	t := schema.Tables{Schema: a.cfg.Schema}
	var err error
	t.Partitioned, err = partition.Detect(ctx, a.pg, t)
	return t, err
}

// poolConfig parses a URL for a pool. Every query uses the exec mode, which
// needs no server-side prepared statement or session state, so the same
// code works directly and through PgBouncer in transaction mode.
func poolConfig(url string, maxConns int32) (*pgxpool.Config, error) {
	pc, err := config.ParseDatabaseURL(url)
	if err != nil {
		return nil, err
	}
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pc.MaxConns = maxConns
	pc.ConnConfig.ConnectTimeout = connectTimeout
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "redpg"
	return pc, nil
}

func (a *app) openPostgres(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := schema.EnsureDatabase(cctx, a.cfg.DatabaseURL); err != nil {
		return unreachablePostgres(a.cfg.DatabaseURL, err, "DATABASE_URL")
	}
	pc, err := poolConfig(a.cfg.DatabaseURL, 4)
	if err != nil {
		return err
	}
	if a.pg, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return unreachablePostgres(a.cfg.DatabaseURL, err, "DATABASE_URL")
	}
	if err := a.pg.Ping(cctx); err != nil {
		return unreachablePostgres(a.cfg.DatabaseURL, err, "DATABASE_URL")
	}
	if _, err := schema.MigrateWith(ctx, a.pg, a.cfg.Schema, schema.Options{NaiveTimeZone: a.cfg.NaiveTimezone}); err != nil {
		return fmt.Errorf("apply migrations to schema %s: %w", a.cfg.Schema, err)
	}
	if err := a.openReader(ctx); err != nil {
		return err
	}
	a.wpg = a.pg
	if a.cfg.PgBouncerURL != "" && a.usePgBouncer {
		wpc, err := poolConfig(a.cfg.PgBouncerURL, int32(a.cfg.Workers)+2)
		if err != nil {
			return err
		}
		if a.wpg, err = pgxpool.NewWithConfig(ctx, wpc); err == nil {
			err = a.wpg.Ping(cctx)
		}
		if err != nil {
			return fmt.Errorf("cannot reach PgBouncer at %s: %s — start it (`bash scripts/services.sh`), fix PGBOUNCER_URL (or PGBOUNCER_HOST/PGBOUNCER_PORT), or run with --direct",
				config.PostgresAddr(a.cfg.PgBouncerURL), short(err, a.cfg.PgBouncerURL))
		}
	} else if a.cfg.Workers+2 > 4 {
		// Workers need a connection each; give them their own direct pool.
		wpc, err := poolConfig(a.cfg.DatabaseURL, int32(a.cfg.Workers)+2)
		if err != nil {
			return err
		}
		if a.wpg, err = pgxpool.NewWithConfig(ctx, wpc); err != nil {
			return unreachablePostgres(a.cfg.DatabaseURL, err, "DATABASE_URL")
		}
	}
	return nil
}

// readerConns is the read pool's size: stats and dashboard reads are a
// few queries at a time.
const readerConns = 2

// openReader connects the read-only pool. The reader is never migrated or
// created: a streaming replica cannot be written, and its schema comes from
// the primary.
func (a *app) openReader(ctx context.Context) error {
	a.rpg = a.pg
	if a.cfg.ReadDatabaseURL == "" {
		return nil
	}
	pc, err := poolConfig(a.cfg.ReadDatabaseURL, readerConns)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if a.rpg, err = pgxpool.NewWithConfig(ctx, pc); err == nil {
		err = a.rpg.Ping(cctx)
	}
	if err != nil {
		return unreachablePostgres(a.cfg.ReadDatabaseURL, err, "DATABASE_READ_URL")
	}
	return nil
}

func (a *app) openRedis(ctx context.Context) error {
	target, err := config.ParseRedisURL(a.cfg.RedisURL)
	if err != nil {
		return usageError{err}
	}
	if a.cfg.RedisCAFile != "" && !target.TLS() {
		return usageError{fmt.Errorf("REDIS_TLS_CA_FILE is set but REDIS_URL %s does not use TLS (rediss:// or rediss-sentinel://)", config.Redact(a.cfg.RedisURL))}
	}
	if a.cfg.RedisCAFile != "" {
		pem, err := os.ReadFile(a.cfg.RedisCAFile)
		if err != nil {
			return usageError{fmt.Errorf("REDIS_TLS_CA_FILE: %w", err)}
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return usageError{fmt.Errorf("REDIS_TLS_CA_FILE %s holds no PEM certificate", a.cfg.RedisCAFile)}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	a.rdb, err = redisconn.Open(cctx, target, redisconn.Options{
		CAFile: a.cfg.RedisCAFile, PoolSize: max(10, 2*a.cfg.Workers+4), DialTimeout: connectTimeout,
	})
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "NOPERM") {
			return fmt.Errorf("Redis at %s refused the credentials: %s — check the user and password in REDIS_URL",
				target, short(err, a.cfg.RedisURL))
		}
		return fmt.Errorf("cannot reach Redis at %s: %s — start it (redis-server --daemonize yes, or `make services`) or set REDIS_URL",
			target, short(err, a.cfg.RedisURL))
	}
	a.log.Debug("connected to Redis", "at", target.String(), "topology", string(target.Topology))
	return nil
}

func unreachablePostgres(url string, err error, variable string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") { // invalid authorization
		return fmt.Errorf("PostgreSQL at %s refused the login: %s — check the user and password in %s",
			config.PostgresAddr(url), config.RedactText(pgErr.Message), variable)
	}
	return fmt.Errorf("cannot reach PostgreSQL at %s: %s — start it (pg_ctlcluster <version> main start, or `make services`) or set %s",
		config.PostgresAddr(url), short(err, url), variable)
}

// short reduces a driver error to its last, most specific clause, without
// credentials.
func short(err error, url string) string {
	msg := config.RedactText(config.RedactIn(err.Error(), url))
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

// close releases connections.
func (a *app) close() {
	if a.wpg != nil && a.wpg != a.pg {
		a.wpg.Close()
	}
	if a.rpg != nil && a.rpg != a.pg {
		a.rpg.Close()
	}
	if a.pg != nil {
		a.pg.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
}

// Execute runs redpg with args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	defer a.close()
	if err == nil {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintln(stderr, "redpg: "+config.RedactText(err.Error())+" (see redpg --help)")
		return 2
	}
	fmt.Fprintln(stderr, "redpg: "+config.RedactText(err.Error()))
	return 1
}

// isCobraUsage recognises cobra's own complaints about the command line,
// which it returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "arg(s)", "required flag"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// exitCode ends a command with a specific status after it printed its own
// report (reconcile uses 3 for "not everything is accounted for").
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
