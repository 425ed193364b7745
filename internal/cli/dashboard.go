package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/metrics"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/web"
)

func (a *app) dashboardCommand() *cobra.Command {
	var addr, token string
	var opts pipeline.RunOptions
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the dashboard, JSON API, Prometheus metrics and health checks over HTTP",
		Long: `Serves, until Ctrl-C, a read-only HTTP view of the configured pipeline:

  /            dashboard (updates itself; every asset is embedded in the binary)
  /api/stats   the fields of ` + "`stats --json`" + ` plus live windows and worker leases
  /api/views   the materialized views' figures behind the charts
  /api/dlq     dead letters by reason and a page of samples (?reason= &limit= &after= &newest=1)
  /metrics     Prometheus metrics
  /healthz     the process is up          (no token needed)
  /readyz      Redis and PostgreSQL answer and migrations are current (no token needed)

It listens on ` + web.DefaultAddr + ` unless --http-addr (REDPG_HTTP_ADDR) says otherwise. With a
token (--http-token or REDPG_HTTP_TOKEN), every endpoint but the health checks needs
"Authorization: Bearer <token>"; browsers ask for it (any user name, the token as
password). With --workers N it also runs N workers, whose batches then show in
/metrics' worker counters and histograms.`,
		Example: `  redpg dashboard
  redpg dashboard --workers 4                 # serve and process
  REDPG_HTTP_TOKEN=$(openssl rand -hex 16) redpg dashboard --http-addr 0.0.0.0:8080
  curl -s localhost:8080/api/stats | jq .queue_depth`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if f.Changed("http-addr") {
				a.cfg.HTTPAddr = addr
			}
			if f.Changed("http-token") {
				a.cfg.HTTPToken = token
			}
			workers := opts.Workers
			if workers > 0 {
				a.applyWorkerFlags(cmd, &opts)
			}
			// One registry counts this process's workers and reads the
			// shared state; a.pipe exists before anything scrapes.
			m := metrics.New(metrics.Config{Gauges: func(ctx context.Context) (metrics.Gauges, error) {
				return metrics.FromPipeline(a.pipe)(ctx)
			}})
			a.timings = &pipeline.StageTimes{Observer: m}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			return a.serveDashboard(cmd.Context(), m, workers, opts)
		},
	}
	cmd.Flags().StringVar(&addr, "http-addr", "", "listen on host:port (env REDPG_HTTP_ADDR; default "+web.DefaultAddr+", loopback only)")
	cmd.Flags().StringVar(&token, "http-token", "", "require this bearer token on all but /healthz and /readyz (env REDPG_HTTP_TOKEN; default none)")
	cmd.Flags().IntVarP(&opts.Workers, "workers", "w", 0, "also run this many workers in this process (0: only serve)")
	cmd.Flags().Int("batch-size", 0, "most messages per batch for --workers (env BATCH_SIZE)")
	cmd.Flags().Duration("lease", 0, "lease for --workers (env REDPG_LEASE)")
	return cmd
}

// serveDashboard listens, serves the web handler and, with workers > 0,
// runs workers beside it, until ctx ends.
func (a *app) serveDashboard(ctx context.Context, m *metrics.Metrics, workers int, opts pipeline.RunOptions) error {
	h, err := web.New(web.Config{Pipeline: a.pipe, PG: a.pg, RDB: a.rdb, Metrics: m.Handler(), Token: a.cfg.HTTPToken, Logger: a.log})
	if err != nil {
		return err
	}
	addr := cmp.Or(a.cfg.HTTPAddr, web.DefaultAddr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w — pick another with --http-addr or REDPG_HTTP_ADDR", addr, err)
	}
	note := "no token"
	if a.cfg.HTTPToken != "" {
		note = "token required"
	} else if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) {
		note = "no token, and not loopback: anyone who can reach it can read the pipeline's data; set REDPG_HTTP_TOKEN"
	}
	fmt.Fprintf(a.stderr, "dashboard on http://%s/ (%s); Ctrl-C stops\n", ln.Addr(), note)
	a.log.Info("serving HTTP", "addr", ln.Addr().String(), "token", a.cfg.HTTPToken != "")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var runErr error
	if workers > 0 {
		opts.Workers = a.cfg.Workers
		fmt.Fprintf(a.stderr, "processing with %d workers, batches of %d (%s)\n", opts.Workers, a.cfg.BatchSize, a.workerTarget())
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, runErr = a.pipe.Run(ctx, opts)
		}()
	}
	err = web.Serve(ctx, ln, h)
	cancel()
	wg.Wait()
	return errors.Join(err, runErr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
