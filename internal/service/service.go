// Package service is `redpg serve`: the always-on pipeline in one process.
//
// A Service runs, until its context ends:
//
//   - the workers, heartbeat and lease reaper of pipeline.Run;
//   - the window keeper, which trims the live order windows (every process);
//   - a leader campaign (package leader). The elected process alone runs the
//     view refresher, which refreshes the materialized views CONCURRENTLY
//     when the events channel says a batch was promoted — at most once per
//     RefreshInterval and only if something changed, with a slow fallback
//     tick for lost notices — and the lookup watcher, which LISTENs for
//     changes to the lookup tables and republishes the Redis snapshot, so
//     workers switch to it at their next batch.
//
// On shutdown (ctx cancelled) workers stop claiming and finish the batches
// in hand; Run returns within ShutdownTimeout even if one cannot finish, as
// its lease returns it to the queue.
//
// Other packages build on a Service without reaching into it: Stats returns
// what `redpg stats --json` prints (including the live windows), Windows the
// windows alone, Leader whether this process holds the single-actor roles.
// An HTTP handler (in `redpg serve`, the dashboard, API, metrics and health
// checks) is served next to the pipeline when Config.HTTPListener and
// Config.HTTPHandler are set, and Run accepts further Runnables that live
// and die with the service. Both outlive the workers at shutdown, so the
// dashboard shows the last batches finish.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/leader"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/window"
)

// Defaults, in one place; the CLI quotes them in its help.
const (
	// DefaultWorkers is how many workers a service runs.
	DefaultWorkers = 4
	// DefaultRefreshInterval is the least time between two view refreshes:
	// a burst of promotions costs one refresh, not one per batch.
	DefaultRefreshInterval = 2 * time.Second
	// DefaultRefreshFallback is how often the refresher looks for changes
	// without being told, in case a pub/sub notice was lost.
	DefaultRefreshFallback = 30 * time.Second
	// DefaultShutdownTimeout bounds how long Run takes to return after
	// its context ends.
	DefaultShutdownTimeout = 15 * time.Second
	// DefaultKeepInterval is how often the window keeper trims.
	DefaultKeepInterval = 30 * time.Second
	// DefaultLookupSettle is how long the lookup watcher gathers more
	// change notices before republishing, so a script updating the three
	// tables one after the other causes one new snapshot, not three.
	DefaultLookupSettle = 200 * time.Millisecond
)

// Config configures a Service.
type Config struct {
	// Workers is the number of concurrent workers. Defaults to
	// DefaultWorkers.
	Workers int
	// RefreshInterval is the least time between two view refreshes.
	// Defaults to DefaultRefreshInterval.
	RefreshInterval time.Duration
	// RefreshFallback is how often the refresher checks for changes it was
	// not told about. Defaults to DefaultRefreshFallback.
	RefreshFallback time.Duration
	// ShutdownTimeout bounds how long Run takes to return once its context
	// ends. Give the pipeline's ShutdownGrace less, so batches in hand can
	// finish within it. Defaults to DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// KeepInterval is how often the window keeper trims old orders.
	// Defaults to DefaultKeepInterval.
	KeepInterval time.Duration
	// LeaderPoll is how often a process that does not lead tries to; a
	// dead leader's roles are taken over within about this long. Defaults
	// to leader.DefaultPoll.
	LeaderPoll time.Duration
	// LookupSettle is how long the lookup watcher gathers change notices
	// before republishing. Defaults to DefaultLookupSettle.
	LookupSettle time.Duration
	// Name identifies this process in logs and in `stats` (the leader).
	// Defaults to <hostname>-<pid>.
	Name string
	// HTTPListener and HTTPHandler, when both set, serve HTTPHandler on
	// HTTPListener for as long as the service runs; Run closes the
	// listener. The caller listens, so that a taken port is reported
	// before any worker starts and an address with port 0 can be printed.
	// Defaults to none.
	HTTPListener net.Listener
	HTTPHandler  http.Handler
	// Logger receives operational messages. Defaults to a discarding logger.
	Logger *slog.Logger
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.RefreshFallback == 0 {
		c.RefreshFallback = DefaultRefreshFallback
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.KeepInterval == 0 {
		c.KeepInterval = DefaultKeepInterval
	}
	if c.LeaderPoll == 0 {
		c.LeaderPoll = leader.DefaultPoll
	}
	if c.LookupSettle == 0 {
		c.LookupSettle = DefaultLookupSettle
	}
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", name, d))
		}
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers %d must be at least 1", c.Workers))
	}
	positive("refresh interval", c.RefreshInterval)
	positive("refresh fallback", c.RefreshFallback)
	positive("shutdown timeout", c.ShutdownTimeout)
	positive("keep interval", c.KeepInterval)
	positive("lookup settle", c.LookupSettle)
	if c.LeaderPoll < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("leader poll %s must be at least 10ms", c.LeaderPoll))
	}
	if (c.HTTPListener == nil) != (c.HTTPHandler == nil) {
		errs = append(errs, errors.New("HTTPListener and HTTPHandler go together"))
	}
	return errors.Join(errs...)
}

// Runnable is something that runs beside the pipeline until ctx ends.
type Runnable func(ctx context.Context) error

// Service is the always-on pipeline. Build it with New, run it with Run.
type Service struct {
	cfg  Config
	pipe *pipeline.Pipeline
	pg   *pgxpool.Pool
	rdb  redis.UniversalClient
	log  *slog.Logger

	leading   atomic.Bool
	refreshes atomic.Int64

	mu        sync.Mutex
	processed ledger.Counts
	batches   int64
}

// New assembles a service around p. pg must reach PostgreSQL directly,
// never through PgBouncer: the leader lock and LISTEN need a session of
// their own. rdb is the client p uses.
func New(cfg Config, p *pipeline.Pipeline, pg *pgxpool.Pool, rdb redis.UniversalClient) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return &Service{cfg: cfg, pipe: p, pg: pg, rdb: rdb, log: cfg.Logger.With("process", cfg.Name)}, nil
}

// Config returns the service's effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Pipeline is the pipeline the service runs.
func (s *Service) Pipeline() *pipeline.Pipeline { return s.pipe }

// Stats is what `redpg stats --json` reports, live windows included.
func (s *Service) Stats(ctx context.Context) (pipeline.Stats, error) { return s.pipe.Stats(ctx) }

// Windows are the live order windows (last 1, 5 and 60 minutes).
func (s *Service) Windows(ctx context.Context) ([]window.Figure, error) {
	return s.pipe.Windows().Read(ctx)
}

// Leader reports whether this process holds the single-actor roles now.
func (s *Service) Leader() bool { return s.leading.Load() }

// Refreshes is how many times this process refreshed the views.
func (s *Service) Refreshes() int64 { return s.refreshes.Load() }

// Processed is what this process's workers have done so far, and in how
// many batches.
func (s *Service) Processed() (ledger.Counts, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.processed, s.batches
}

// Run runs the service and extra until ctx ends, then shuts down: workers
// stop claiming and finish the batches in hand. It returns within
// ShutdownTimeout of ctx ending; a batch that could not finish by then is
// left to its lease. It returns the first error that stopped a part early.
func (s *Service) Run(ctx context.Context, extra ...Runnable) error {
	s.log.Info("serving", "workers", s.cfg.Workers, "refresh_interval", s.cfg.RefreshInterval)
	// Background parts stop only once the workers have: the refresher may
	// still see their last promotions.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()

	var wg sync.WaitGroup
	errs := make(chan error, 4+len(extra))
	start := func(name string, ctx context.Context, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start("keeper", bg, s.keep)
	start("leader", bg, func(ctx context.Context) error {
		return leader.Run(ctx, leader.Config{Name: "serve:" + s.pipe.Config().Tables.Schema + ":" + s.pipe.Config().Keys.Prefix,
			Poll: s.cfg.LeaderPoll, Logger: s.log}, s.connect, s.lead)
	})
	if s.cfg.HTTPHandler != nil {
		start("http", bg, s.serveHTTP)
	}
	for i, r := range extra {
		start(fmt.Sprintf("runnable %d", i), bg, r)
	}

	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	workersDone := make(chan error, 1)
	go func() {
		_, err := s.pipe.Run(wctx, pipeline.RunOptions{Workers: s.cfg.Workers, OnBatch: s.count})
		workersDone <- err
	}()

	var err error
	finished := false
	select {
	case err = <-workersDone:
		finished = true
	case err = <-errs:
		s.log.Error("a part of the service failed; shutting down", "err", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: no new batches; finishing the ones in hand")
	stopWorkers()
	timeout := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timeout.Stop()
	if !finished {
		select {
		case werr := <-workersDone:
			err = errors.Join(err, werr)
		case <-timeout.C:
			s.log.Warn("shutdown timeout: batches still in hand are left to their lease", "timeout", s.cfg.ShutdownTimeout)
			return err
		}
	}
	stopBG()
	bgDone := make(chan struct{})
	go func() { wg.Wait(); close(bgDone) }()
	select {
	case <-bgDone:
	case <-timeout.C:
		s.log.Warn("shutdown timeout: background parts did not stop in time", "timeout", s.cfg.ShutdownTimeout)
	}
	c, _ := s.Processed()
	s.log.Info("stopped", "promoted", c.Promoted, "duplicates", c.Duplicates, "rejected", c.Rejected)
	return err
}

// count adds a durable batch to this process's totals.
func (s *Service) count(r pipeline.BatchReport) {
	s.mu.Lock()
	s.processed = s.processed.Add(r.Counts)
	s.batches++
	s.mu.Unlock()
}

// connect opens the leader session: straight to PostgreSQL, with the
// direct pool's settings, outside the pool so it never takes a worker's
// connection.
func (s *Service) connect(ctx context.Context) (*pgx.Conn, error) {
	cc := s.pg.Config().ConnConfig
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = "redpg serve leader"
	return pgx.ConnectConfig(ctx, cc)
}

// HTTP server limits: slow or idle clients cannot hold connections
// forever, and open requests get shutdownHTTPGrace to finish.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownHTTPGrace = 5 * time.Second
)

// serveHTTP serves the configured handler until ctx ends.
func (s *Service) serveHTTP(ctx context.Context) error {
	ln := s.cfg.HTTPListener
	srv := &http.Server{Handler: s.cfg.HTTPHandler, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownHTTPGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("serving HTTP", "addr", ln.Addr().String())
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped // open requests finished or their grace ended
		return nil
	}
	return err
}

// keep trims the live windows every KeepInterval: orders older than the
// longest window leave the sorted set and their revenue buckets the hash.
// Every process keeps; trimming twice is harmless.
func (s *Service) keep(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.KeepInterval)
	defer tick.Stop()
	for {
		if n, err := s.pipe.Windows().Trim(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("window keeper could not trim", "err", err)
		} else if n > 0 {
			s.log.Debug("window keeper trimmed old orders", "orders", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
