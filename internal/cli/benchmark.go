package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/bench"
	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/schema"
)

func (a *app) benchmarkCommand() *cobra.Command {
	var bc bench.Config
	var asJSON, viaBouncer bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "benchmark",
		Short: "Measure each stage of the pipeline against raw Redis and PostgreSQL baselines",
		Long: `Runs the whole pipeline on --total generated orders in a fresh private schema
(bench_<random>) and Redis key prefix (bench:<random>:), and removes both at the end,
also when interrupted with Ctrl-C (--keep leaves them for inspection).

In the same run, on the same orders, it first measures the raw baselines: LPUSH
and RPOP of the very payloads, and COPY of the very enriched rows straight into a
table identical to orders (same indexes, checks and foreign key), over --workers
connections in chunks of --batch-size, a transaction per chunk. It then times
the producer alone (generate + enqueue), and runs producer and workers together
flat out, timing every step of every batch inside the workers:

  generate_enqueue   generate + queue.Push, alone                      (vs LPUSH)
  enqueue            queue.Push of ready payloads, alone               (vs LPUSH)
  generate_enqueue_in_run   the producer while the workers run        (vs LPUSH)
  consume            claim + decode + de-dup + enrich + transform      (vs RPOP)
    claim            of which the claim script taking a batch          (vs RPOP)
    prepare          of which decode, de-dup, enrich, transform        (vs RPOP)
  stage              COPY into the UNLOGGED staging table              (vs COPY)
  promote            the set-wise INSERT ... SELECT into orders        (vs COPY)
  commit             BEGIN, ledger row, COMMIT                         (vs COPY)
  ack                acknowledge in Redis + mark the de-dup window     (vs RPOP)
  refresh            REFRESH MATERIALIZED VIEW CONCURRENTLY, all three (vs COPY)
  end_to_end         first order queued to last order durable          (vs COPY)

Steps inside the workers are orders per second of one worker's time in that
step (time summed over workers), compared with one COPY stream of the parallel
baseline; the others are wall-clock. Every ratio is to a baseline measured a
minute earlier on the same machine: on a shared machine, compare ratios across
runs, not absolute rates.

Latency is per order, from the LPUSH that queued it to the COMMIT that made it
durable: flat out (which includes waiting in the queue behind the backlog) and
then in a paced phase offering --latency-load of the measured rate. Peak RSS is
the process's VmHWM during the flat-out run: workers, producer and benchmark
all run in this process.

--preload N first fills orders with N rows, to see whether throughput stays flat
as the table grows. --mixed runs dashboard queries on the materialized views in
a loop, with a concurrent refresh every second, while the pipeline runs and
then while it is idle, and reports their p50/p99.`,
		Example: `  redpg benchmark
  redpg benchmark --total 200000 --batch-size 2000 --workers 4 --json
  redpg benchmark --pgbouncer
  redpg benchmark --preload 5000000 --total 100000
  redpg benchmark --mixed --json | jq .mixed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if bc.Workers < 1 || bc.Workers > 256 {
				return usageError{fmt.Errorf("--workers %d: must be between 1 and 256", bc.Workers)}
			}
			a.cfg.Workers = bc.Workers
			a.cfg.BatchSize = bc.BatchSize
			if err := a.finish(); err != nil {
				return err
			}
			if err := a.openBenchmark(ctx, &bc, viaBouncer); err != nil {
				return err
			}
			bc.Logger = a.log
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return usageError{fmt.Errorf("--cpuprofile: %w", err)}
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			pr := &benchProgress{w: a.stderr}
			res, err := bench.Run(ctx, bc, pr.update)
			pr.finish()
			if res != nil && (err == nil || asJSON) {
				if asJSON {
					enc := json.NewEncoder(a.stdout)
					enc.SetIndent("", "  ")
					if jerr := enc.Encode(res); jerr != nil {
						return errors.Join(err, jerr)
					}
				} else {
					printBenchmark(a.stdout, res)
				}
			}
			if res != nil && res.Kept {
				fmt.Fprintf(a.stderr, "kept schema %s and Redis keys %s*\n", res.Schema, res.KeyPrefix)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&bc.Total, "total", 100000, "orders to push through the pipeline")
	f.IntVar(&bc.BatchSize, "batch-size", pipeline.DefaultBatchSize, "workers' batch size (and the baselines' chunk size)")
	f.IntVarP(&bc.Workers, "workers", "w", config.DefaultWorkers, "pipeline workers (and parallel COPY streams in the baseline), as many as redpg process runs by default")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	f.BoolVar(&viaBouncer, "pgbouncer", false, "workers connect through PgBouncer (PGBOUNCER_URL, or 127.0.0.1:6432)")
	f.BoolVar(&bc.Keep, "keep", false, "keep the benchmark's schema and Redis keys")
	f.IntVar(&bc.Preload, "preload", 0, "fill orders with this many rows before measuring")
	f.BoolVar(&bc.Mixed, "mixed", false, "run dashboard queries and view refreshes alongside, and idle")
	f.DurationVar(&bc.RefreshEvery, "refresh-every", 0, "refresh interval of --mixed (default 1s)")
	f.Float64Var(&bc.LatencyLoad, "latency-load", 0.5, "paced phase load as a fraction of the measured rate (negative: skip)")
	f.DurationVar(&bc.LatencyDuration, "latency-duration", 0, "how long the paced phase offers orders (default 5s)")
	f.IntVar(&bc.BaselineOrders, "baseline-orders", 0, "orders the baselines use (default min(total, 100000))")
	f.IntVar(&bc.MaxQueueDepth, "max-queue-depth", 0, fmt.Sprintf("queue length at which the producer waits (default %d)", queue.DefaultMaxDepth))
	f.Uint64Var(&bc.Seed, "seed", 0, "random seed for the generated orders (0: random)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

// openBenchmark connects for a benchmark: a direct pool for set-up,
// baselines and dashboards, a pool for the workers (direct or through
// PgBouncer), and Redis. Nothing is migrated outside the benchmark's own
// schema.
func (a *app) openBenchmark(ctx context.Context, bc *bench.Config, viaBouncer bool) error {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := schema.EnsureDatabase(cctx, a.cfg.DatabaseURL); err != nil {
		return unreachablePostgres(a.cfg.DatabaseURL, err, "DATABASE_URL")
	}
	open := func(rawURL string, conns int, variable string) (*pgxpool.Pool, error) {
		pc, err := poolConfig(rawURL, int32(conns))
		if err != nil {
			return nil, err
		}
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err == nil {
			if err = pool.Ping(cctx); err != nil {
				pool.Close()
			}
		}
		if err != nil {
			return nil, unreachablePostgres(rawURL, err, variable)
		}
		return pool, nil
	}
	var err error
	if a.pg, err = open(a.cfg.DatabaseURL, bc.Workers+4, "DATABASE_URL"); err != nil {
		return err
	}
	workerURL, variable := a.cfg.DatabaseURL, "DATABASE_URL"
	if viaBouncer {
		if workerURL, err = pgBouncerURL(a.cfg); err != nil {
			return usageError{err}
		}
		variable = "PGBOUNCER_URL (or PGBOUNCER_HOST/PGBOUNCER_PORT)"
	}
	if a.wpg, err = open(workerURL, bc.Workers+2, variable); err != nil {
		return err
	}
	if err := a.openRedis(ctx); err != nil {
		return err
	}
	bc.PG, bc.WorkerPG, bc.Redis, bc.ViaPgBouncer = a.pg, a.wpg, a.rdb, viaBouncer
	return nil
}

// pgBouncerURL is the configured PgBouncer URL, or the database URL pointed
// at PgBouncer's usual address.
func pgBouncerURL(c config.Config) (string, error) {
	if c.PgBouncerURL != "" {
		return c.PgBouncerURL, nil
	}
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("--pgbouncer: set PGBOUNCER_URL (or PGBOUNCER_HOST/PGBOUNCER_PORT); DATABASE_URL is not a postgres:// URL to derive it from")
	}
	u.Host = net.JoinHostPort("127.0.0.1", "6432")
	return u.String(), nil
}

// benchProgress shows one progress bar per benchmark phase.
type benchProgress struct {
	w     io.Writer
	phase string
	bar   *progress
}

func (p *benchProgress) update(phase string, done, total int) {
	if phase != p.phase {
		p.finish()
		p.phase = phase
		p.bar = newProgress(p.w, phase)
		if total == 0 {
			fmt.Fprintf(p.w, "%s...\n", phase)
		}
	}
	if total > 0 {
		p.bar.update(done, total, 0)
	}
}

func (p *benchProgress) finish() {
	if p.bar != nil {
		p.bar.done()
	}
}

// printBenchmark renders a result for people.
func printBenchmark(w io.Writer, r *bench.Result) {
	via := "direct to PostgreSQL"
	if r.PgBouncer {
		via = "through PgBouncer"
	}
	workers := "workers"
	if r.Workers == 1 {
		workers = "worker"
	}
	fmt.Fprintf(w, "redpg benchmark: %d orders, batches of %d, %d %s %s", r.Total, r.BatchSize, r.Workers, workers, via)
	if r.Preload > 0 {
		fmt.Fprintf(w, ", %d rows preloaded in %.0fs", r.Preload, r.PreloadSeconds)
	}
	fmt.Fprintf(w, "\n%d CPUs, %s, PostgreSQL %s (shared_buffers %s, synchronous_commit %s, autovacuum %s), Redis %s\n\n",
		r.Machine.CPUs, r.Machine.GoVersion, r.Machine.PostgresVersion, r.Machine.SharedBuffers,
		r.Machine.SynchronousCommit, r.Machine.Autovacuum, r.Machine.RedisVersion)
	fmt.Fprintf(w, "%-24s %10s  %-10s  %-13s %10s  %6s\n", "stage", "orders/s", "timing", "baseline", "orders/s", "ratio")
	for _, name := range bench.StageOrder {
		s, ok := r.Stages[name]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "%-24s %10.0f  %-10s  %-13s %10.0f  %6.2f\n", name, s.OrdersPerSec, s.Timing, s.Baseline, s.BaselineOrdersPerSec, s.Ratio)
	}
	fmt.Fprintf(w, "\nbaselines: LPUSH %.0f/s, RPOP %.0f/s, COPY into orders %.0f/s over %d stream(s), %.0f/s over one (end to end is %.2f of that)\n",
		r.Baselines[bench.BaselineLPush].OrdersPerSec, r.Baselines[bench.BaselineRPop].OrdersPerSec,
		r.Baselines[bench.BaselineCopy].OrdersPerSec, r.Workers, r.Baselines[bench.BaselineCopySingle].OrdersPerSec, r.EndToEndVsSingleStream)
	l := r.Latency
	fmt.Fprintf(w, "\nlatency, enqueue to durable, flat out:  p50 %.0f ms  p90 %.0f ms  p99 %.0f ms  max %.0f ms (%d orders; includes queueing behind the backlog)\n",
		l.P50, l.P90, l.P99, l.Max, l.Count)
	if p := r.Paced; p != nil {
		fmt.Fprintf(w, "latency at %.0f%% load (%.0f orders/s offered, %.0f achieved):  p50 %.0f ms  p90 %.0f ms  p99 %.0f ms  max %.0f ms\n",
			100*p.Load, p.OfferedPerSec, p.AchievedPerSec, p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.Max)
	}
	if m := r.Mixed; m != nil {
		fmt.Fprintf(w, "dashboard queries: idle p50 %.1f ms p99 %.1f ms; busy p50 %.1f ms p99 %.1f ms (p99 x%.1f); refresh of all views: idle p50 %.0f ms, busy p50 %.0f ms\n",
			m.Idle.P50, m.Idle.P99, m.Busy.P50, m.Busy.P99, m.P99Ratio, m.RefreshIdle.P50, m.RefreshBusy.P50)
	}
	fmt.Fprintf(w, "peak RSS: %.0f MB (%s)\n", r.PeakRSSMB, r.PeakRSSScope)
	fmt.Fprintf(w, "promoted %d, duplicates %d, rejected %d\n\ntargets:\n", r.Counts.Promoted, r.Counts.Duplicates, r.Counts.Rejected)
	for _, t := range r.Targets {
		met := "MISSED"
		if t.Met {
			met = "met"
		}
		fmt.Fprintf(w, "  %-36s want %-6s got %8.2f  %s\n", t.Name, t.Want, t.Got, met)
	}
	if !r.Kept {
		fmt.Fprintf(w, "\nremoved schema %s and keys %s*\n", r.Schema, strings.TrimSuffix(r.KeyPrefix, ":")+":")
	}
}
