// Package pipeline wires the parts — queue, dedup, lookup, transform, stage,
// promote, ledger, views — into the order pipeline: workers that take
// batches from Redis and make them durable in PostgreSQL exactly once in
// effect, a reaper that returns dead workers' batches, producers, stats,
// reconciliation and dead-letter replay. Everything runs under a context and
// shuts down cleanly, so the same code serves the CLI and a long-running
// daemon.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/dedup"
	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/window"
)

// Defaults, in one place: config, the CLI and the benchmark refer to these
// (and to queue.DefaultMaxDepth, queue.DefaultMaxDeliveries and
// lookup.DefaultTTL).
const (
	DefaultBatchSize     = 5000
	MaxBatchSize         = 100000 // a claim script's reply must stay modest
	DefaultDedupWindow   = time.Hour
	DefaultLease         = 30 * time.Second
	DefaultMaxAttempts   = 5
	DefaultIdleWait      = time.Second
	DefaultShutdownGrace = 10 * time.Second
)

// Config configures a Pipeline.
type Config struct {
	// Keys is the Redis key space.
	Keys keys.Space
	// Tables names the PostgreSQL relations.
	Tables schema.Tables
	// BatchSize is the most messages a worker claims at once. Defaults to
	// DefaultBatchSize.
	BatchSize int
	// DedupWindow is how long a promoted order id counts as seen. Defaults
	// to one hour.
	DedupWindow time.Duration
	// MaxQueueDepth is the queue length at which producers wait. Defaults to
	// 100000.
	MaxQueueDepth int
	// Lease is how long a worker's claim survives without a heartbeat.
	// Defaults to 30s.
	Lease time.Duration
	// CacheTTL is the lookup snapshot's lifetime in Redis. Defaults to 24h.
	CacheTTL time.Duration
	// MaxAttempts bounds retries of a batch failing for a non-transient
	// reason before its messages are tried one by one and the failing ones
	// dead-lettered. Defaults to 5.
	MaxAttempts int
	// MaxDeliveries is how many dead workers may have held a message before
	// it is quarantined and dead-lettered undecoded as poison_message.
	// Defaults to 10.
	MaxDeliveries int
	// RedisWaitReplicas and RedisWaitTimeout make producers confirm each
	// chunk on that many replicas (queue.Config.WaitReplicas, WaitTimeout).
	// Default to 0 (no wait) and queue.DefaultWaitTimeout.
	RedisWaitReplicas int
	RedisWaitTimeout  time.Duration
	// IdleWait is the longest an idle worker sleeps before looking at the
	// queue again; a pub/sub notice wakes it sooner. Defaults to 1s.
	IdleWait time.Duration
	// ShutdownGrace is how long a worker may keep working on the batch in
	// hand after shutdown was requested. Defaults to 10s.
	ShutdownGrace time.Duration
	// Message adapts decoding: the zone of naive timestamps and the one
	// size cap, which workers, the one-by-one fallback, dlq replay and every
	// dead letter hold to. Defaults to order.Options' defaults (UTC, 4 MiB).
	Message order.Options
	// WindowRetention is how far back the live order windows keep order
	// times. Defaults to window.DefaultRetention (61 minutes).
	WindowRetention time.Duration
	// Reader serves read-only queries (Stats, and dashboards through
	// Reader()): typically a pool on a streaming replica, so reads take no
	// capacity from the primary. Nothing is ever written through it.
	// Defaults to the primary pool.
	Reader *pgxpool.Pool
	// LockTimeout bounds how long a statement of the pipeline's own
	// transactions (batches, the reaper's fence, replay) waits for a lock,
	// such as the order ids or the ledger row of a frozen worker's open
	// transaction; a wait that times out is retried with backoff. Defaults to
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// StatementTimeout bounds one statement of those transactions. Defaults
	// to DefaultStatementTimeout.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout is how long PostgreSQL lets one of those
	// transactions sit idle (its client frozen, paused or cut off) before it
	// ends the session and so releases its locks. Defaults to
	// DefaultIdleInTransactionTimeout.
	IdleInTransactionTimeout time.Duration
	// Logger receives operational messages. Defaults to a discarding logger.
	Logger *slog.Logger
	// Version is the build each worker registers itself with, so `stats`
	// shows which version every worker runs. Defaults to "unknown".
	Version string
	// Hooks are fault-injection points for tests; production code leaves
	// them unset.
	Hooks Hooks
	// Timings, if set, collects how long workers spend in each step of a
	// batch (see StageTimes). Defaults to nil: nothing is measured.
	Timings *StageTimes
}

// Hooks are fault-injection points used by the crash-recovery tests
// (internal/chaos) to stop a worker at a precise step of committing a
// batch. Each hook, when set, is called with the batch's context and id.
// An error it returns is a failure at that step: inside the transaction
// (BeforeStage, BeforePromote, BeforeCommit) the transaction rolls back;
// after it (AfterCommit) the batch is left unacknowledged. A hook that
// cancels the context passed to Run and returns an error makes the worker
// stop right there with the batch still claimed, as if the process had
// died. Only the normal batch commit calls them, not the one-by-one
// fallback.
type Hooks struct {
	// BeforeStage runs in the batch's transaction before COPY into staging.
	BeforeStage func(ctx context.Context, batchID string) error
	// BeforePromote runs after the COPY, before promotion into orders.
	BeforePromote func(ctx context.Context, batchID string) error
	// BeforeCommit runs after promotion and the ledger row, before COMMIT.
	BeforeCommit func(ctx context.Context, batchID string) error
	// AfterCommit runs after COMMIT, before the batch is acknowledged in
	// Redis.
	AfterCommit func(ctx context.Context, batchID string) error
}

// call runs fn, one of h's hooks, if it is set.
func (h Hooks) call(ctx context.Context, fn func(context.Context, string) error, batchID string) error {
	if fn == nil {
		return nil
	}
	return fn(ctx, batchID)
}

// Defaults of the session timeouts. A batch's statements take
// milliseconds and its transaction is never idle for longer than the Go code
// between two statements, so these only ever end what is stuck.
const (
	DefaultLockTimeout              = 5 * time.Second
	DefaultStatementTimeout         = time.Minute
	DefaultIdleInTransactionTimeout = 30 * time.Second
)

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.DedupWindow = cmp.Or(c.DedupWindow, DefaultDedupWindow)
	c.MaxQueueDepth = cmp.Or(c.MaxQueueDepth, queue.DefaultMaxDepth)
	c.Lease = cmp.Or(c.Lease, DefaultLease)
	c.CacheTTL = cmp.Or(c.CacheTTL, lookup.DefaultTTL)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.IdleWait = cmp.Or(c.IdleWait, DefaultIdleWait)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, DefaultShutdownGrace)
	if c.Tables.Schema == "" {
		c.Tables.Schema = schema.DefaultSchema
	}
	if c.Version == "" {
		c.Version = "unknown"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Message = c.Message.WithDefaults()
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.IdleInTransactionTimeout == 0 {
		c.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch size %d must be positive", c.BatchSize))
	}
	if c.Lease < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease %s must be at least 100ms", c.Lease))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d must be at least 1", c.MaxAttempts))
	}
	if c.DedupWindow < time.Second {
		errs = append(errs, fmt.Errorf("dedup window %s must be at least 1s", c.DedupWindow))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"lock timeout", c.LockTimeout}, {"statement timeout", c.StatementTimeout}, {"idle-in-transaction timeout", c.IdleInTransactionTimeout}} {
		if d.v < time.Millisecond {
			errs = append(errs, fmt.Errorf("%s %s must be at least 1ms", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// Pipeline is the assembled order pipeline. It is safe for concurrent use.
type Pipeline struct {
	cfg Config
	pg  *pgxpool.Pool // migrations, admin, views
	wpg *pgxpool.Pool // workers' batches: PgBouncer when configured
	rdb redis.UniversalClient

	queue   *queue.Queue
	dedup   *dedup.Window
	lookups *lookup.Cache
	bound   atomic.Bool // Bind succeeded
	recMu   sync.Mutex
	rec     *windowRecorder // records the live windows while Run runs
	windows *window.Windows
	tx      pgx.TxOptions // begins the pipeline's own transactions with their timeouts
}

// New assembles a pipeline. workerPG may be the same pool as pg; it is the
// one workers' transactions use, typically through PgBouncer.
func New(cfg Config, pg, workerPG *pgxpool.Pool, rdb redis.UniversalClient) (*Pipeline, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if workerPG == nil {
		workerPG = pg
	}
	if cfg.Reader == nil {
		cfg.Reader = pg
	}
	q, err := queue.New(rdb, queue.Config{Keys: cfg.Keys, MaxDepth: cfg.MaxQueueDepth, MaxDeliveries: cfg.MaxDeliveries,
		WaitReplicas: cfg.RedisWaitReplicas, WaitTimeout: cfg.RedisWaitTimeout})
	if err != nil {
		return nil, err
	}
	return &Pipeline{
		cfg: cfg, pg: pg, wpg: workerPG, rdb: rdb, queue: q,
		dedup:   dedup.New(rdb, cfg.Keys.Dedup(), cfg.DedupWindow),
		lookups: lookup.New(rdb, pg, lookup.Config{Keys: cfg.Keys, Tables: cfg.Tables, TTL: cfg.CacheTTL}),
		windows: window.New(rdb, cfg.Keys, cfg.WindowRetention),
		tx:      pgx.TxOptions{BeginQuery: beginSQL(cfg)},
	}, nil
}

// Reader is the pool for read-only queries: the read replica when one is
// configured, else the primary.
func (p *Pipeline) Reader() *pgxpool.Pool { return p.cfg.Reader }

// beginSQL starts a transaction with the configured timeouts. They are set
// with SET LOCAL, in the same round trip as BEGIN (pgx sends a query
// without arguments as one simple-protocol message, whatever the exec
// mode): a setting that lasts exactly one transaction is what PgBouncer in
// transaction pooling can honour, whereas connection parameters it either
// refuses or does not pass on, and a session SET would follow the server
// connection to its next client.
func beginSQL(c Config) string {
	return fmt.Sprintf("BEGIN; SET LOCAL lock_timeout = %d; SET LOCAL statement_timeout = %d; SET LOCAL idle_in_transaction_session_timeout = %d",
		c.LockTimeout.Milliseconds(), c.StatementTimeout.Milliseconds(), c.IdleInTransactionTimeout.Milliseconds())
}

// batchTx begins a batch's transaction with the timeouts and names it
// after the batch (application_name, set for this transaction only), so
// that a reaper fencing the batch of a worker that froze inside it can find
// its session: a backend waiting for a frozen client in the middle of a
// COPY is beyond statement_timeout and idle_in_transaction_session_timeout,
// and only ending the session releases its locks.
func (p *Pipeline) batchTx(batchID string) pgx.TxOptions {
	o := p.tx
	o.BeginQuery += "; SET LOCAL application_name = " + quoteLiteral(p.batchSession(batchID))
	return o
}

// batchSession is the application_name of a batch's transaction: the batch
// id and a hash of the schema, so deployments sharing a server (and tests
// reusing batch ids) never name each other's sessions.
func (p *Pipeline) batchSession(batchID string) string {
	h := fnv.New32a()
	h.Write([]byte(p.cfg.Tables.Schema))
	return fmt.Sprintf("redpg %08x %s", h.Sum32(), batchID)
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Queue is the pipeline's ingestion queue.
func (p *Pipeline) Queue() *queue.Queue { return p.queue }

// Lookups is the pipeline's lookup cache.
func (p *Pipeline) Lookups() *lookup.Cache { return p.lookups }

// Dedup is the pipeline's de-duplication window.
func (p *Pipeline) Dedup() *dedup.Window { return p.dedup }

// Windows are the live order windows.
func (p *Pipeline) Windows() *window.Windows { return p.windows }

// Config returns the pipeline's effective configuration.
func (p *Pipeline) Config() Config { return p.cfg }
