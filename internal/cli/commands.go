package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/ingest"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/version"
)

func (a *app) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the database and schema, and apply pending migrations",
		Long: `Creates the database if it does not exist and applies the embedded, ordered SQL
migrations that are not yet recorded in <schema>.redpg_migrations. Every other
command does this too, so running it by hand is only needed to prepare ahead.`,
		Example: `  redpg migrate
  redpg migrate --schema tenant_a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.finish(); err != nil {
				return err
			}
			if err := a.openPostgres(cmd.Context()); err != nil {
				return err
			}
			migs, err := schema.Migrations()
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "schema %s is at migration %03d (%s)\n", a.cfg.Schema, migs[len(migs)-1].Version, config.PostgresAddr(a.cfg.DatabaseURL))
			return nil
		},
	}
}

func (a *app) initCacheCommand() *cobra.Command {
	var all, products, currencies, zipcodes bool
	cmd := &cobra.Command{
		Use:   "init-cache",
		Short: "Snapshot lookup tables from PostgreSQL into Redis",
		Long: `Copies product_catalog, currency_rates and zip_code_zones into Redis hashes under
a new snapshot version, with a TTL (REDPG_CACHE_TTL, default 24h). Workers hold
the snapshot in memory and reload it when the version changes. Tables not named
are carried over from the current snapshot. Workers publish a snapshot by
themselves when none exists, so this is needed only after changing a table.`,
		Example: `  redpg init-cache --all
  redpg init-cache --products     # after adding a product`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tables []string
			for _, t := range []struct {
				on   bool
				name string
			}{{products, lookup.Products}, {currencies, lookup.Currencies}, {zipcodes, lookup.Zipcodes}} {
				if t.on || all {
					tables = append(tables, t.name)
				}
			}
			if len(tables) == 0 {
				return usageError{errors.New("say what to cache: --all, --products, --currencies or --zipcodes")}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			v, err := a.pipe.InitCache(cmd.Context(), tables...)
			if err != nil {
				return err
			}
			n, err := a.pipe.Lookups().Size(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "lookup snapshot v%d published: %s (%d entries, TTL %s)\n", v, strings.Join(tables, ", "), n, a.cfg.CacheTTL)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "cache every lookup table")
	cmd.Flags().BoolVar(&products, "products", false, "cache product_catalog")
	cmd.Flags().BoolVar(&currencies, "currencies", false, "cache currency_rates")
	cmd.Flags().BoolVar(&zipcodes, "zipcodes", false, "cache zip_code_zones")
	return cmd
}

func (a *app) generateCommand() *cobra.Command {
	var count int
	var gc generate.Config
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate realistic orders and push them onto the queue",
		Long: `Builds realistic orders — timestamps within the last hour (or one instant with
--burst), a bounded pool of repeat customers, products, currencies and zip codes
from the lookup tables, user_agent/ip/session_id for raw_data — and LPUSHes them in
multi-value batches. --duplicates re-sends earlier orders unchanged; --invalid
emits malformed or invalid orders that must end in the dead-letter store.

When the queue holds MAX_QUEUE_DEPTH messages the producer waits (and says so)
until workers catch up: it never drops an order.`,
		Example: `  redpg generate --count 10000 --duplicates 0.05
  redpg generate --count 5000 --burst
  redpg generate --count 1000 --invalid 0.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 {
				return usageError{fmt.Errorf("--count %d: must be at least 1", count)}
			}
			if err := gc.Validate(); err != nil {
				return usageError{err}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			start := time.Now()
			bar := newProgress(a.stderr, "generate")
			c, err := a.pipe.Generate(cmd.Context(), count, gc, bar.update)
			bar.done()
			if err != nil {
				return err
			}
			el := time.Since(start)
			fmt.Fprintf(a.stdout, "queued %d orders in %s (%.0f/s): %d unique valid, %d duplicates, %d invalid\n",
				c.Total, el.Round(time.Millisecond), float64(c.Total)/el.Seconds(), c.Unique, c.Duplicates, c.Invalid)
			return nil
		},
	}
	generatorFlags(cmd, &count, &gc, 0)
	return cmd
}

// generatorFlags declares the flags shaping generated orders, shared by
// generate and demo; they differ only in the default duplicate rate.
func generatorFlags(cmd *cobra.Command, count *int, gc *generate.Config, duplicates float64) {
	f := cmd.Flags()
	f.IntVar(count, "count", 10000, "number of orders")
	f.Float64Var(&gc.Duplicates, "duplicates", duplicates, "fraction of re-sent earlier orders (0-1)")
	f.Float64Var(&gc.Invalid, "invalid", 0, "fraction of malformed or invalid orders (0-1)")
	f.BoolVar(&gc.Burst, "burst", false, "give every order the same timestamp")
	f.Uint64Var(&gc.Seed, "seed", 0, "random seed for a reproducible stream (0: random)")
	f.IntVar(&gc.Customers, "customers", 1000, "size of the repeat-customer pool")
}

func (a *app) ingestCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ingest FILE|-",
		Short: "Queue orders from an NDJSON or CSV file (or standard input)",
		Long: `Reads orders — one JSON object per line, or CSV with a header row naming the
message fields (see docs/MESSAGE.md) — and queues each record as one message.
Broken records are queued too, so they are dead-lettered with a reason rather
than silently skipped. Backpressure applies as for generate.`,
		Example: `  redpg ingest orders.ndjson
  redpg ingest --format csv orders.csv
  cat orders.ndjson | redpg ingest -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
				if format == ingest.Auto && strings.HasSuffix(strings.ToLower(args[0]), ".csv") {
					format = ingest.CSV
				}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			bar := newProgress(a.stderr, "ingest")
			cfg := ingest.Config{Format: format, Chunk: ingest.DefaultChunk, MaxBytes: a.cfg.MaxMessageBytes}
			n, err := ingest.Read(r, cfg, func(msgs [][]byte) error {
				return a.pipe.Push(cmd.Context(), msgs, func(depth int64) { bar.update(0, 0, depth) })
			})
			bar.done()
			var rec *ingest.RecordError
			if errors.As(err, &rec) {
				return err // it says what was queued
			}
			if err != nil {
				return fmt.Errorf("after queueing %d records: %w", n, err)
			}
			// `redpg serve` refreshes the views now rather than at its next tick.
			_ = a.pipe.Announce(cmd.Context(), pipeline.EventIngestDone)
			fmt.Fprintf(a.stdout, "queued %d records from %s\n", n, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", ingest.Auto, "input format: ndjson, csv or auto")
	return cmd
}

func (a *app) processCommand() *cobra.Command {
	var opts pipeline.RunOptions
	var direct bool
	cmd := &cobra.Command{
		Use:   "process",
		Short: "Run workers that make queued orders durable in PostgreSQL",
		Long: `Runs --workers concurrent workers. Each claims a batch atomically into its own
processing list (a Lua script, not BRPOP), decodes it, drops ids seen within the
de-dup window, enriches from the cached lookups, COPYs into the UNLOGGED staging
table and promotes set-wise into orders in one transaction, and only then
acknowledges the batch in Redis. Workers heartbeat; a batch whose worker died is
returned to the queue when its lease (REDPG_LEASE, default 30s) expires.

With PGBOUNCER_URL (or PGBOUNCER_HOST/PORT) set, workers connect through
PgBouncer; --direct bypasses it. Ctrl-C stops after the batches in hand.`,
		Example: `  redpg process --workers 4 --until-empty
  redpg process --workers 1 --iterations 10 --batch-size 1000
  PGBOUNCER_PORT=6432 redpg process --workers 8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.applyWorkerFlags(cmd, &opts); err != nil {
				return err
			}
			a.usePgBouncer = !direct
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			return a.runWorkers(cmd.Context(), opts)
		},
	}
	a.workerFlags(cmd, &opts)
	cmd.Flags().IntVar(&opts.Iterations, "iterations", 0, "stop each worker after this many batches (0: no limit; an idle worker waits for work unless --until-empty)")
	cmd.Flags().BoolVar(&opts.UntilEmpty, "until-empty", false, "return once nothing is queued or in flight")
	cmd.Flags().BoolVar(&direct, "direct", false, "connect workers straight to PostgreSQL even if PgBouncer is configured")
	return cmd
}

// workerFlags declares the flags shared by process and demo.
func (a *app) workerFlags(cmd *cobra.Command, opts *pipeline.RunOptions) {
	f := cmd.Flags()
	f.IntVarP(&opts.Workers, "workers", "w", config.DefaultWorkers, "concurrent workers (env WORKER_COUNT)")
	f.Int("batch-size", config.DefaultBatchSize, "most messages per batch (env BATCH_SIZE)")
	f.Duration("lease", config.DefaultLease, "how long a silent worker keeps its batch (env REDPG_LEASE)")
	f.Duration("lock-timeout", pipeline.DefaultLockTimeout, "longest a batch's statement waits for a lock before retrying (env REDPG_LOCK_TIMEOUT)")
	f.Duration("statement-timeout", pipeline.DefaultStatementTimeout, "longest one statement of a batch may run (env REDPG_STATEMENT_TIMEOUT)")
	f.Duration("idle-in-transaction-timeout", pipeline.DefaultIdleInTransactionTimeout,
		"how long PostgreSQL keeps a batch's transaction whose worker stopped talking (env REDPG_IDLE_IN_TRANSACTION_TIMEOUT)")
}

// applyWorkerFlags lets flags the user set win over the environment. A flag
// set to zero or less is a usage error, not a request for the default.
func (a *app) applyWorkerFlags(cmd *cobra.Command, opts *pipeline.RunOptions) error {
	if err := positiveFlags(cmd, "workers", "batch-size", "lease"); err != nil {
		return err
	}
	f := cmd.Flags()
	if f.Changed("workers") {
		a.cfg.Workers = opts.Workers
	}
	if f.Changed("batch-size") {
		a.cfg.BatchSize, _ = f.GetInt("batch-size")
	}
	if f.Changed("lease") {
		a.cfg.Lease, _ = f.GetDuration("lease")
	}
	for name, dst := range map[string]*time.Duration{"lock-timeout": &a.cfg.LockTimeout, "statement-timeout": &a.cfg.StatementTimeout,
		"idle-in-transaction-timeout": &a.cfg.IdleInTransactionTimeout} {
		if f.Changed(name) {
			*dst, _ = f.GetDuration(name)
		}
	}
	a.cfg = a.cfg.WithDefaults()
	opts.Workers = a.cfg.Workers
	return nil
}

// positiveFlags refuses any of the named flags that the user set to zero or
// less: "--workers 0" would otherwise quietly mean the default.
func positiveFlags(cmd *cobra.Command, names ...string) error {
	for _, name := range names {
		fl := cmd.Flags().Lookup(name)
		if fl == nil || !fl.Changed {
			continue
		}
		v := fl.Value.String()
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			continue
		}
		return usageError{fmt.Errorf("--%s %s: must be positive", name, v)}
	}
	return nil
}

func (a *app) runWorkers(ctx context.Context, opts pipeline.RunOptions) error {
	start := time.Now()
	bar := newProgress(a.stderr, "process")
	var seen atomic.Int64
	opts.OnBatch = func(r pipeline.BatchReport) {
		bar.update(int(seen.Add(r.Counts.Received)), 0, 0)
	}
	fmt.Fprintf(a.stderr, "processing with %d workers, batches of %d (%s)\n", opts.Workers, a.cfg.BatchSize, a.workerTarget())
	c, err := a.pipe.Run(ctx, opts)
	bar.done()
	el := time.Since(start)
	fmt.Fprintf(a.stdout, "processed %d messages in %s (%.0f/s): %d promoted, %d duplicates, %d rejected\n",
		c.Received, el.Round(time.Millisecond), float64(c.Received)/max(el.Seconds(), 1e-9), c.Promoted, c.Duplicates, c.Rejected)
	if ctx.Err() != nil {
		fmt.Fprintln(a.stderr, "interrupted: batches in hand were finished or left to their lease")
	}
	return err
}

func (a *app) workerTarget() string {
	if a.wpg != a.pg && a.cfg.PgBouncerURL != "" && a.usePgBouncer {
		return "via PgBouncer " + config.PostgresAddr(a.cfg.PgBouncerURL)
	}
	return "direct to " + config.PostgresAddr(a.cfg.DatabaseURL)
}

func (a *app) promoteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "promote",
		Short: "Refresh the materialized views (workers promote every batch themselves)",
		Long: `Workers validate and promote each batch in the same transaction that stages it,
because UNLOGGED staging is not durable on its own, and staging rows never outlive
that transaction: nothing is left for a separate promotion step. This command,
the seed's promotion step, refreshes the materialized views CONCURRENTLY, so
dashboards keep reading while it runs.`,
		Example: `  redpg promote`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			start := time.Now()
			if err := a.pipe.Promote(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "refreshed %s in %s\n",
				strings.Join(schema.Views, ", "), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func (a *app) statsCommand() *cobra.Command {
	var watch, asJSON bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show queue, window, cache, table and view sizes",
		Example: `  redpg stats
  redpg stats --json | jq .production_rows
  redpg stats --watch --interval 2s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			var prev *pipeline.Stats
			for {
				s, err := a.pipe.Stats(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(a.stdout)
					if err := enc.Encode(s); err != nil {
						return err
					}
				} else {
					var b strings.Builder
					printStats(&b, s)
					if watch {
						printRates(&b, prev, s)
					}
					redraw(a.stdout, watch && isTerminal(a.stdout), b.String())
				}
				prev = &s
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "refresh interval with --watch")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func printStats(w io.Writer, s pipeline.Stats) {
	row := func(k string, v int64) { fmt.Fprintf(w, "  %-26s %12d\n", k, v) }
	fmt.Fprintf(w, "redpg %s stats at %s\n", version.String(), s.TakenAt.Format(time.RFC3339))
	fmt.Fprintln(w, "Redis")
	row("queue depth", s.QueueDepth)
	row("quarantined", s.Quarantined)
	row("processing", s.Processing)
	row("workers", s.Workers)
	row("dedup window size", s.DedupWindowSize)
	row("lookup cache size", s.LookupCacheSize)
	row("produced total", s.Produced)
	row("arrived total", s.Arrived)
	for _, wk := range s.WorkerList {
		fmt.Fprintf(w, "    worker %s  %s pid %d  version %s  lease until %s\n",
			wk.ID, wk.Host, wk.PID, wk.Version, wk.LeaseUntil.Format(time.RFC3339))
	}
	row("producers waiting", s.ProducersWaiting)
	fmt.Fprintf(w, "  %-26s %12s\n", "producers waited", (time.Duration(s.ProducerWaitSeconds * float64(time.Second))).Round(time.Millisecond))
	row("window size (orders)", s.WindowSize)
	row("window revenue buckets", s.WindowBuckets)
	row("lookup keys (snapshots)", s.LookupKeys)
	row("lookup version", s.LookupVersion)
	leader := s.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "  %-26s %12s\n", "serve leader", leader)
	if len(s.Windows) > 0 {
		fmt.Fprintln(w, "Live windows (by order time)")
		for _, f := range s.Windows {
			fmt.Fprintf(w, "  last %-21s %12d orders %14.2f USD\n", f.Span, f.Orders, float64(f.RevenueUSDCents)/100)
		}
	}
	fmt.Fprintln(w, "PostgreSQL")
	row("staging rows", s.StagingRows)
	row("production rows", s.ProductionRows)
	row("rejected rows", s.RejectedRows)
	row("duplicates total", s.DuplicatesTotal)
	row("batches", s.Batches)
	for _, k := range slices.Sorted(maps.Keys(s.RejectedByReason)) {
		fmt.Fprintf(w, "    rejected: %-20s %8d\n", k, s.RejectedByReason[k])
	}
	fmt.Fprintln(w, "Materialized views (rows)")
	for _, v := range schema.Views {
		row(v, s.Views[v])
	}
	printServer(w, s)
}

// printServer adds the PostgreSQL server lines: version, io_method on 18,
// and the read replica's lag when reads go to one.
func printServer(w io.Writer, s pipeline.Stats) {
	fmt.Fprintln(w, "PostgreSQL server")
	fmt.Fprintf(w, "  %-26s %12s\n", "version", s.Version)
	if s.IOMethod != "" {
		fmt.Fprintf(w, "  %-26s %12s\n", "io_method", s.IOMethod)
	}
	r := s.ReadReplica
	switch {
	case r == nil:
	case !r.Standby:
		fmt.Fprintf(w, "  %-26s %12s\n", "read server", "not a standby")
	default:
		fmt.Fprintf(w, "  %-26s %12d\n", "replica lag (bytes)", r.Bytes)
		fmt.Fprintf(w, "  %-26s %12.1f\n", "replica lag (seconds)", r.Seconds)
		if r.ReplayPaused {
			fmt.Fprintf(w, "  %-26s %12s\n", "replica replay", "PAUSED")
		}
	}
}

func (a *app) reconcileCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Account for every order that reached the queue; exit 3 if any is unaccounted for",
		Long: `Checks arrived = promoted + duplicates + rejected + queued + in flight + discarded.
Arrivals are counted when a worker claims a batch, whoever produced the messages
(redpg, the Python reference's producers, a bare LPUSH); those from producers that
do not count themselves are shown, not treated as an error.

One atomic reading of Redis is matched batch by batch against the ledger in
PostgreSQL, so the figures are exact while workers run: a batch that left Redis
without its ledger row shows as unaccounted in every reading. It also checks that
the ledger agrees with the orders and orders_rejected tables, and that the Redis
account belongs to this database. Exits 0 when everything is accounted for and 3
otherwise.`,
		Example: `  redpg reconcile
  redpg reconcile --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			r, err := a.pipe.Reconcile(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				if err := json.NewEncoder(a.stdout).Encode(r); err != nil {
					return err
				}
			} else {
				fmt.Fprint(a.stdout, r.String())
			}
			if !r.OK() {
				return exitCode(3)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay dead letters (orders_rejected)",
		Example: `  redpg dlq list --reason unknown_product
  redpg dlq show 42
  redpg dlq replay --reason unknown_product`,
	}
	var f dlq.Filter
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first, with counts by reason",
		Example: `  redpg dlq list
  redpg dlq list --reason unknown_product --limit 200
  redpg dlq list --json | jq '.[].order_id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			t := schema.Tables{Schema: a.cfg.Schema}
			letters, err := dlq.List(cmd.Context(), a.rpg, t, f)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(letters)
			}
			counts, err := dlq.CountByReason(cmd.Context(), a.pg, t)
			if err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(counts)) {
				fmt.Fprintf(a.stdout, "%-24s %d\n", k, counts[k])
			}
			if len(letters) > 0 {
				fmt.Fprintf(a.stdout, "\n%-8s %-28s %-22s %s\n", "ID", "ORDER", "REASON", "DETAIL")
			}
			for _, l := range letters {
				fmt.Fprintf(a.stdout, "%-8d %-28.28s %-22s %.80s\n", l.ID, l.OrderID, l.Reason, l.Detail)
			}
			return nil
		},
	}
	list.Flags().StringVar(&f.Reason, "reason", "", "only this reason code")
	list.Flags().IntVar(&f.Limit, "limit", 50, "at most this many letters")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one dead letter with its raw payload",
		Example: `  redpg dlq show 42`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("dead letter id %q: want a number from `redpg dlq list`", args[0])}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			l, err := dlq.Show(cmd.Context(), a.rpg, schema.Tables{Schema: a.cfg.Schema}, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "id:          %d\norder_id:    %s\nreason:      %s\ndetail:      %s\nbatch:       %s\nrejected_at: %s\npayload:     %s\n",
				l.ID, l.OrderID, l.Reason, l.Detail, l.BatchID, l.RejectedAt.Format(time.RFC3339), strconv.Quote(string(l.Payload)))
			return nil
		},
	}
	var ro pipeline.ReplayOptions
	replay := &cobra.Command{
		Use:   "replay [ID...]",
		Short: "Run dead letters through validation and promotion again",
		Long: `After the cause is fixed — say a missing product added to product_catalog and
` + "`redpg init-cache --products`" + ` run — replay promotes each letter that is now valid exactly
once and removes it from the store; letters still invalid are rejected again with
their current reason.`,
		Example: `  redpg dlq replay --reason unknown_product
  redpg dlq replay 17 18 19`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, s := range args {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("dead letter id %q: want a number", s)}
				}
				ro.IDs = append(ro.IDs, id)
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			res, err := a.pipe.Replay(cmd.Context(), ro)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "replayed %d dead letters: %d promoted, %d duplicates, %d rejected again\n",
				res.Replayed, res.Promoted, res.Duplicates, res.StillRejected)
			return nil
		},
	}
	replay.Flags().StringVar(&ro.Reason, "reason", "", "only letters with this reason code")
	cmd.AddCommand(list, show, replay)
	return cmd
}

func (a *app) clearCommand() *cobra.Command {
	var o pipeline.ClearOptions
	cmd := &cobra.Command{
		Use:   "clear",
		Short: "Clear the cache, the de-dup window, the queue, or everything",
		Long: `--cache drops the lookup snapshot, --dedup the de-duplication window, --queue the
queued and in-flight messages (stop workers first; reconcile counts them as
discarded). --account starts the Redis account over and binds it to this database,
once you have dealt with what reconcile reported (a Redis that lost its data, a
deployment moved to another database). --all also empties orders, staging, dead
letters and the batch ledger; lookup tables are never touched.

Only this deployment's keys are removed: its queue and the keys under
redpg:{<queue>}: — never another deployment's, whatever the prefixes, nor the
Python reference's own keys.`,
		Example: `  redpg clear --dedup
  redpg clear --account
  redpg clear --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !o.All && !o.Cache && !o.Dedup && !o.Queue && !o.Account {
				return usageError{errors.New("say what to clear: --cache, --dedup, --queue, --account or --all")}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			if err := a.pipe.Clear(cmd.Context(), o); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "cleared")
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Cache, "cache", false, "drop the lookup snapshot")
	cmd.Flags().BoolVar(&o.Dedup, "dedup", false, "forget the de-dup window")
	cmd.Flags().BoolVar(&o.Queue, "queue", false, "drop queued and in-flight messages")
	cmd.Flags().BoolVar(&o.Account, "account", false, "start the Redis account over, bound to this database")
	cmd.Flags().BoolVar(&o.All, "all", false, "all of the above, plus every pipeline row in PostgreSQL")
	return cmd
}
