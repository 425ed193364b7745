// Package bench measures the order pipeline end to end, stage by stage, and
// against raw baselines taken in the same run on the same rows: LPUSH and
// RPOP of the very payloads the producer queues, and COPY of the very rows
// the workers promote straight into a table identical to orders. Because
// the machines it runs on are shared and noisy, the figures that matter are
// the ratios to those baselines rather than absolute rates.
//
// Each run works in a fresh PostgreSQL schema (bench_<random>) and Redis key
// prefix (bench:<random>:) and removes both when it ends, also when its
// context is cancelled, unless told to keep them.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/schema"
)

// Config configures a benchmark run.
type Config struct {
	// PG is a pool of direct connections to PostgreSQL, used for set-up,
	// the baselines, view refreshes and the dashboard queries of Mixed. It
	// should allow Workers+4 connections. Required.
	PG *pgxpool.Pool
	// WorkerPG is the pool the pipeline's workers use: PG itself, another
	// direct pool, or one through PgBouncer. It should allow Workers+2
	// connections. Defaults to PG.
	WorkerPG *pgxpool.Pool
	// ViaPgBouncer says WorkerPG goes through PgBouncer; it is only
	// reported. Defaults to false.
	ViaPgBouncer bool
	// Redis is the Redis client. Required.
	Redis redis.UniversalClient

	// Total is how many orders the measured run pushes through the
	// pipeline. Defaults to 100000.
	Total int
	// BatchSize is the workers' batch size, and the chunk size of the LPUSH
	// and COPY baselines. Defaults to pipeline.DefaultBatchSize.
	BatchSize int
	// Workers is the number of pipeline workers, and of parallel COPY
	// streams in the COPY baseline. Defaults to config.DefaultWorkers (4),
	// what redpg process runs unless told otherwise.
	Workers int
	// MaxQueueDepth is the queue length at which the producer waits, as
	// in production. Defaults to queue.DefaultMaxDepth.
	MaxQueueDepth int
	// BaselineOrders is how many of the run's orders the baselines and the
	// isolated enqueue pass use; they are held in memory. Defaults to
	// min(Total, 100000).
	BaselineOrders int
	// Preload fills orders with this many generated rows before measuring,
	// to see how throughput depends on the table's size. Defaults to 0.
	Preload int
	// Mixed runs dashboard queries on the materialized views in a loop,
	// with a concurrent REFRESH every RefreshEvery, while the pipeline runs
	// flat out and then while it is idle, and reports their latencies.
	// Defaults to false.
	Mixed bool
	// RefreshEvery is the refresh interval of Mixed. Defaults to 1s.
	RefreshEvery time.Duration
	// LatencyLoad is the fraction of the measured end-to-end rate at which
	// a paced phase after the flat-out run offers orders, to measure
	// latency below saturation. Defaults to 0.5; negative disables it.
	LatencyLoad float64
	// LatencyDuration is how long the paced phase offers orders. Defaults
	// to 5s.
	LatencyDuration time.Duration
	// StallTimeout aborts the run when no batch commits for this long.
	// Defaults to 2 minutes.
	StallTimeout time.Duration
	// Keep leaves the schema and keys in place for inspection. Defaults to
	// false: both are removed.
	Keep bool
	// Seed makes the generated orders reproducible. Defaults to a random
	// seed.
	Seed uint64
	// Logger receives the pipeline's operational messages. Defaults to a
	// discarding logger.
	Logger *slog.Logger
}

// WithDefaults returns c with unset fields filled.
func (c Config) WithDefaults() Config {
	if c.WorkerPG == nil {
		c.WorkerPG = c.PG
	}
	if c.Total == 0 {
		c.Total = 100000
	}
	if c.BatchSize == 0 {
		c.BatchSize = pipeline.DefaultBatchSize
	}
	if c.Workers == 0 {
		c.Workers = config.DefaultWorkers
	}
	if c.MaxQueueDepth == 0 {
		c.MaxQueueDepth = queue.DefaultMaxDepth
	}
	if c.BaselineOrders == 0 {
		c.BaselineOrders = min(c.Total, 100000)
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = time.Second
	}
	if c.LatencyLoad == 0 {
		c.LatencyLoad = 0.5
	}
	if c.LatencyDuration == 0 {
		c.LatencyDuration = 5 * time.Second
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = 2 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = mrand.Uint64() | 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.PG == nil {
		errs = append(errs, errors.New("a PostgreSQL pool is required"))
	}
	if c.Redis == nil {
		errs = append(errs, errors.New("a Redis client is required"))
	}
	if c.Total < 1 {
		errs = append(errs, fmt.Errorf("total %d must be positive", c.Total))
	}
	if c.BatchSize < 1 || c.BatchSize > pipeline.MaxBatchSize {
		errs = append(errs, fmt.Errorf("batch size %d must be between 1 and %d", c.BatchSize, pipeline.MaxBatchSize))
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers %d must be between 1 and 256", c.Workers))
	}
	if c.MaxQueueDepth < 1 {
		errs = append(errs, fmt.Errorf("max queue depth %d must be positive", c.MaxQueueDepth))
	}
	if c.BaselineOrders < 1 || c.BaselineOrders > c.Total {
		errs = append(errs, fmt.Errorf("baseline orders %d must be between 1 and total %d", c.BaselineOrders, c.Total))
	}
	if c.Preload < 0 {
		errs = append(errs, fmt.Errorf("preload %d must not be negative", c.Preload))
	}
	if c.RefreshEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("refresh interval %s must be at least 10ms", c.RefreshEvery))
	}
	if c.LatencyLoad > 1 {
		errs = append(errs, fmt.Errorf("latency load %v must be at most 1 (a fraction of the measured rate)", c.LatencyLoad))
	}
	if c.LatencyDuration < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("latency phase %s must last at least 100ms", c.LatencyDuration))
	}
	return errors.Join(errs...)
}

// Progress is told how far a phase is: done of total (0: unknown).
type Progress func(phase string, done, total int)

// Stage names, the keys of Result.Stages, in reporting order.
const (
	StageGenerateEnqueue      = "generate_enqueue"        // generate + queue.Push, alone
	StageEnqueue              = "enqueue"                 // queue.Push of ready payloads, alone
	StageGenerateEnqueueInRun = "generate_enqueue_in_run" // generate + queue.Push while the workers run
	StageConsume              = "consume"                 // claim + decode + de-dup + enrich + transform
	StageClaim                = "claim"                   // of which: the claim script taking a batch from Redis
	StagePrepare              = "prepare"                 // of which: decode, de-dup, enrich, transform
	StageStage                = "stage"                   // COPY into staging
	StagePromote              = "promote"                 // the set-wise promotion statement
	StageCommit               = "commit"                  // BEGIN, ledger row, COMMIT
	StageAck                  = "ack"                     // acknowledge + mark the de-dup window
	StageRefresh              = "refresh"                 // REFRESH MATERIALIZED VIEW CONCURRENTLY, all three
	StageEndToEnd             = "end_to_end"              // first order queued to last order durable
)

// StageOrder lists the stages in the order they are reported.
var StageOrder = []string{StageGenerateEnqueue, StageEnqueue, StageGenerateEnqueueInRun, StageConsume, StageClaim, StagePrepare, StageStage,
	StagePromote, StageCommit, StageAck, StageRefresh, StageEndToEnd}

// Baseline names, the keys of Result.Baselines.
const (
	BaselineLPush      = "lpush"         // LPUSH of the payloads in the chunks queue.Push sends
	BaselineRPop       = "rpop"          // RPOP count BatchSize of the same
	BaselineCopy       = "copy_orders"   // COPY of the enriched rows into a copy of orders, Workers streams
	BaselineCopySingle = "copy_orders_1" // the same over one stream
)

// Figure is a measured rate.
type Figure struct {
	// OrdersPerSec is Orders / Seconds.
	OrdersPerSec float64 `json:"orders_per_sec"`
	// Orders is how many orders the figure is based on.
	Orders int64 `json:"orders"`
	// Seconds is the time they took: wall-clock, or summed over workers
	// for the workers' steps.
	Seconds float64 `json:"seconds"`
}

func figure(n int64, d time.Duration) Figure {
	f := Figure{Orders: n, Seconds: d.Seconds()}
	if d > 0 {
		f.OrdersPerSec = float64(n) / d.Seconds()
	}
	return f
}

// Stage is one stage's figure and its ratio to a baseline of the same run.
type Stage struct {
	Figure
	// Timing says how Seconds was measured: "wall", or "per worker" for
	// the steps inside workers, whose time is summed over all workers, so
	// OrdersPerSec is what one worker does per second of that step.
	Timing string `json:"timing"`
	// Baseline names the entry of Result.Baselines the stage is compared
	// with.
	Baseline string `json:"baseline"`
	// BaselineOrdersPerSec is the baseline rate the ratio uses: the
	// baseline's rate, or for a per-worker step compared with a parallel
	// baseline, that rate per stream (divided by Workers), so that both
	// sides were measured under the same concurrency.
	BaselineOrdersPerSec float64 `json:"baseline_orders_per_sec"`
	// Ratio is OrdersPerSec / BaselineOrdersPerSec.
	Ratio float64 `json:"ratio"`
}

// Paced is the latency of the paced phase.
type Paced struct {
	// Load is the fraction of the end-to-end rate offered.
	Load float64 `json:"load"`
	// OfferedPerSec is the rate offered.
	OfferedPerSec float64 `json:"offered_per_sec"`
	// AchievedPerSec is the rate at which orders became durable.
	AchievedPerSec float64 `json:"achieved_per_sec"`
	// Latency is enqueue-to-durable latency per order.
	Latency Percentiles `json:"latency"`
}

// Mixed is the dashboard workload's result.
type Mixed struct {
	// Idle is the latency of dashboard queries while the pipeline is idle.
	Idle Percentiles `json:"idle"`
	// Busy is the same while the pipeline runs flat out.
	Busy Percentiles `json:"busy"`
	// RefreshIdle and RefreshBusy are the durations of the concurrent
	// refreshes of all three views.
	RefreshIdle Percentiles `json:"refresh_idle"`
	RefreshBusy Percentiles `json:"refresh_busy"`
	// P99Ratio is Busy.P99 / Idle.P99.
	P99Ratio float64 `json:"p99_ratio"`
}

// Target is one of the goals the benchmark checks.
type Target struct {
	Name string  `json:"name"` // what is compared
	Want string  `json:"want"` // the goal, as a comparison
	Got  float64 `json:"got"`  // the measured value
	Met  bool    `json:"met"`  // whether Got meets Want
}

// Machine describes where the run happened.
type Machine struct {
	CPUs              int    `json:"cpus"`               // logical CPUs
	GoVersion         string `json:"go_version"`         // runtime.Version()
	PostgresVersion   string `json:"postgres_version"`   // server_version
	RedisVersion      string `json:"redis_version"`      // from INFO server
	SharedBuffers     string `json:"shared_buffers"`     // PostgreSQL setting
	SynchronousCommit string `json:"synchronous_commit"` // PostgreSQL setting
	Autovacuum        string `json:"autovacuum"`         // PostgreSQL setting
}

// Counts is what the measured run did with its orders.
type Counts struct {
	Received   int64 `json:"received"`   // taken from the queue by workers
	Promoted   int64 `json:"promoted"`   // inserted into orders
	Duplicates int64 `json:"duplicates"` // dropped as already seen
	Rejected   int64 `json:"rejected"`   // dead-lettered
}

// Result is a benchmark run's report.
type Result struct {
	Schema         string  `json:"schema"`          // the run's private schema
	KeyPrefix      string  `json:"key_prefix"`      // the run's private Redis key prefix
	Kept           bool    `json:"kept"`            // schema and keys were left in place
	Total          int     `json:"total"`           // Config.Total
	BatchSize      int     `json:"batch_size"`      // Config.BatchSize
	Workers        int     `json:"workers"`         // Config.Workers
	PgBouncer      bool    `json:"pgbouncer"`       // workers went through PgBouncer
	Preload        int     `json:"preload"`         // Config.Preload
	BaselineOrders int     `json:"baseline_orders"` // orders the baselines used
	Machine        Machine `json:"machine"`         // where the run happened

	// Stages holds each stage's figure, keyed by the Stage* names.
	Stages map[string]Stage `json:"stages"`
	// Baselines holds the raw operations' rates, keyed by the Baseline*
	// names.
	Baselines map[string]Figure `json:"baselines"`
	// Latency is enqueue-to-durable latency per order in the flat-out run:
	// it includes the time orders wait in the queue while the producer
	// outruns the workers.
	Latency Percentiles `json:"latency_flat_out"`
	// Paced is the latency below saturation, when LatencyLoad > 0.
	Paced *Paced `json:"latency_paced,omitempty"`
	// PeakRSSMB is the process's peak resident set during the flat-out run
	// (workers, producer and bench together, all in this process).
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// PeakRSSScope is "pipeline" when the peak was reset before the run,
	// "process" when it covers the whole process.
	PeakRSSScope string `json:"peak_rss_scope"`
	// Counts is what the flat-out run did with its orders.
	Counts Counts `json:"counts"`
	// Mixed is the dashboard workload's result, with Config.Mixed.
	Mixed *Mixed `json:"mixed,omitempty"`
	// Targets are the goals checked and whether they were met.
	Targets []Target `json:"targets"`
	// EndToEndVsSingleStream is the end-to-end rate divided by one COPY
	// stream's (copy_orders_1), for comparison with single-stream figures.
	EndToEndVsSingleStream float64 `json:"end_to_end_vs_single_stream"`
	// PreloadSeconds is how long filling orders took.
	PreloadSeconds float64 `json:"preload_seconds,omitempty"`
	// Seconds is the whole run, set-up and clean-up included.
	Seconds float64 `json:"seconds"`
}

// Run performs one benchmark run. On any error, and when ctx is cancelled,
// it still removes its schema and keys (unless cfg.Keep), and returns what
// it measured so far along with the error.
func Run(ctx context.Context, cfg Config, progress Progress) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("benchmark: %w", err)
	}
	if progress == nil {
		progress = func(string, int, int) {}
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	tag := hex.EncodeToString(id[:])
	r := &runner{
		cfg: cfg, progress: progress, tag: tag,
		tables: schema.Tables{Schema: "bench_" + tag},
		keys:   keys.Space{Prefix: "bench:" + tag + ":"},
	}
	r.res = &Result{
		Schema: r.tables.Schema, KeyPrefix: r.keys.Prefix, Kept: cfg.Keep,
		Total: cfg.Total, BatchSize: cfg.BatchSize, Workers: cfg.Workers, PgBouncer: cfg.ViaPgBouncer,
		Preload: cfg.Preload, BaselineOrders: cfg.BaselineOrders,
		Stages: map[string]Stage{}, Baselines: map[string]Figure{},
	}
	start := time.Now()
	err := r.run(ctx)
	if !cfg.Keep {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		err = errors.Join(err, r.cleanup(cctx))
		cancel()
	}
	r.res.Seconds = time.Since(start).Seconds()
	return r.res, err
}
