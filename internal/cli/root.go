package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/version"
)

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "redpg",
		Short: "Data pipelines on nothing but Redis and PostgreSQL",
		Long: `redpg runs an e-commerce order pipeline on the Redis and PostgreSQL you already have:
orders are queued in a Redis list, de-duplicated in a sliding window, enriched from
lookup tables cached in Redis, bulk-loaded with COPY into an UNLOGGED staging table,
validated and promoted into durable tables, and summarised in materialized views.

A message leaves Redis only once its effect is durable in PostgreSQL; bad input is
dead-lettered with a reason, never dropped.

Configuration comes from flags, then the environment, then a .env file, then
defaults that work against a local PostgreSQL and Redis with no setup at all.`,
		Example: `  redpg demo                                   # the whole flow on 10,000 orders
  redpg generate --count 50000 --duplicates 0.05
  redpg process --workers 4 --until-empty
  redpg stats --watch
  DATABASE_URL=postgres://app@db/orders REDIS_URL=redis://cache:6379/2 redpg process`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolve(cmd)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.envFile, "env-file", ".env", "read settings from this file when the environment lacks them")
	f.StringVar(&a.databaseURL, "database-url", "", "PostgreSQL URL (env DATABASE_URL, or POSTGRES_HOST/PORT/USER/PASSWORD/DB; default: local server, database "+config.DefaultDatabase+")")
	f.StringVar(&a.readDatabaseURL, "read-database-url", "", "PostgreSQL URL for read-only queries such as stats, typically a streaming replica (env DATABASE_READ_URL; default: --database-url)")
	f.StringVar(&a.pgbouncerURL, "pgbouncer-url", "", "PgBouncer URL for workers (env PGBOUNCER_URL or PGBOUNCER_HOST/PGBOUNCER_PORT)")
	f.StringVar(&a.redisURL, "redis-url", "", "Redis URL, redis:// or rediss:// (env REDIS_URL or REDIS_HOST/REDIS_PORT; default "+config.DefaultRedisURL+")")
	f.StringVar(&a.redisCAFile, "redis-ca-file", "", "PEM CA bundle to trust for rediss:// (env REDIS_TLS_CA_FILE; default system roots)")
	f.StringVar(&a.schemaName, "schema", "", "PostgreSQL schema for redpg's tables (env POSTGRES_SCHEMA; default public)")
	f.StringVar(&a.keyPrefix, "key-prefix", "", "prefix for every Redis key (env REDPG_KEY_PREFIX; default none)")
	f.StringVar(&a.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.StringVar(&a.naiveZone, "naive-timezone", "", "IANA zone of order timestamps written without one (env REDPG_NAIVE_TIMEZONE; default "+config.DefaultNaiveTimezone+")")
	f.IntVar(&a.maxMsgBytes, "max-message-bytes", 0, "largest message accepted on every path; larger ones are dead-lettered with their size and first 4 KiB (env REDPG_MAX_MESSAGE_BYTES; default "+strconv.Itoa(config.DefaultMaxMessageBytes)+")")
	f.StringVar(&a.logFormat, "log-format", "text", "log format: text (for people) or json (one object per line, for machines)")

	root.SetVersionTemplate("redpg {{.Version}}\n")
	root.AddCommand(
		a.migrateCommand(),
		a.initCacheCommand(),
		a.generateCommand(),
		a.ingestCommand(),
		a.processCommand(),
		a.serveCommand(),
		a.promoteCommand(),
		a.statsCommand(),
		a.reconcileCommand(),
		a.dlqCommand(),
		a.clearCommand(),
		a.demoCommand(),
		a.benchmarkCommand(),
		a.dashboardCommand(),
		a.partitionCommand(),
		a.retentionCommand(),
	)
	return root
}
