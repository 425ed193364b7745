package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/leader"
	"github.com/redpg/redpg/internal/metrics"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/service"
	"github.com/redpg/redpg/internal/web"
)

func (a *app) serveCommand() *cobra.Command {
	var opts pipeline.RunOptions
	var direct bool
	var sc service.Config
	var httpAddr, httpToken string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the always-on pipeline: workers, reaper, view refresher, window keeper, lookup watcher",
		Long: `Runs until stopped: --workers workers with their heartbeat and lease reaper (as
process does), a keeper that trims the live order windows, and a leader election
among every serve process on the same schema and key prefix (a PostgreSQL
advisory lock on a direct connection). The leader alone

  - refreshes the materialized views CONCURRENTLY when workers announce a
    promotion on the events channel: at most once per --refresh-interval, only
    when something changed, and every --refresh-fallback in case a notice was lost;
  - LISTENs for changes to product_catalog, currency_rates and zip_code_zones
    and republishes the lookup snapshot, which workers load at their next batch.

When the leader dies another serve process takes over within about
--leader-poll. SIGTERM or Ctrl-C stops claiming, finishes the batches in hand
and exits 0 within --shutdown-timeout; a second signal exits at once (leases
return unfinished batches to the queue).

Every serve process also serves HTTP on --http-addr (REDPG_HTTP_ADDR, default
` + web.DefaultAddr + `, loopback only; ` + config.HTTPOff + ` turns it off), read-only:

` + httpEndpoints + `

/metrics counts this process's workers (batches, promoted, duplicates, dead
letters, step and latency histograms) beside the shared state. With a token
(--http-token or REDPG_HTTP_TOKEN) every endpoint but the health checks needs
"Authorization: Bearer <token>"; browsers ask for it (the token as password).
The HTTP server stops after the workers, so the dashboard shows them finish.`,
		Example: `  redpg serve                                  # dashboard on http://` + web.DefaultAddr + `/
  redpg serve --workers 8 --refresh-interval 5s --http-addr off
  REDPG_HTTP_TOKEN=$(openssl rand -hex 16) redpg serve --http-addr 0.0.0.0:8080
  REDPG_SHUTDOWN_TIMEOUT=30s redpg serve --log-level info`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.applyWorkerFlags(cmd, &opts); err != nil {
				return err
			}
			a.applyHTTPFlags(cmd, httpAddr, httpToken)
			f := cmd.Flags()
			durFlag := func(name string, dst *time.Duration, v time.Duration) {
				if f.Changed(name) {
					*dst = v
				}
			}
			durFlag("refresh-interval", &a.cfg.RefreshInterval, sc.RefreshInterval)
			durFlag("refresh-fallback", &a.cfg.RefreshFallback, sc.RefreshFallback)
			durFlag("shutdown-timeout", &a.cfg.ShutdownTimeout, sc.ShutdownTimeout)
			durFlag("leader-poll", &a.cfg.LeaderPoll, sc.LeaderPoll)
			sc = service.Config{Workers: opts.Workers, RefreshInterval: a.cfg.RefreshInterval, RefreshFallback: a.cfg.RefreshFallback,
				ShutdownTimeout: a.cfg.ShutdownTimeout, LeaderPoll: a.cfg.LeaderPoll, Logger: a.log}.WithDefaults()
			// Batches in hand get most of the shutdown time; the rest is
			// for leaving the lease set and stopping the other parts.
			a.shutdownGrace = sc.ShutdownTimeout * 3 / 4
			a.usePgBouncer = !direct
			var m *metrics.Metrics
			if a.httpAddr() != "" {
				m = a.observeWorkers()
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			if m != nil {
				ln, h, err := a.listenHTTP(m)
				if err != nil {
					return err
				}
				sc.HTTPListener, sc.HTTPHandler = ln, h
			}
			svc, err := service.New(sc, a.pipe, a.pg, a.rdb)
			if err != nil {
				if sc.HTTPListener != nil {
					_ = sc.HTTPListener.Close()
				}
				return usageError{err}
			}
			fmt.Fprintf(a.stderr, "serving with %d workers, batches of %d (%s); views refreshed at most every %s\n",
				sc.Workers, a.cfg.BatchSize, a.workerTarget(), sc.RefreshInterval)
			err = svc.Run(cmd.Context())
			c, batches := svc.Processed()
			fmt.Fprintf(a.stdout, "served %d batches: %d promoted, %d duplicates, %d rejected; %d view refreshes here\n",
				batches, c.Promoted, c.Duplicates, c.Rejected, svc.Refreshes())
			return err
		},
	}
	a.workerFlags(cmd, &opts)
	f := cmd.Flags()
	f.DurationVar(&sc.RefreshInterval, "refresh-interval", service.DefaultRefreshInterval, "least time between two view refreshes (env REDPG_REFRESH_INTERVAL)")
	f.DurationVar(&sc.RefreshFallback, "refresh-fallback", service.DefaultRefreshFallback, "check for unrefreshed changes this often without a notice (env REDPG_REFRESH_FALLBACK)")
	f.DurationVar(&sc.ShutdownTimeout, "shutdown-timeout", service.DefaultShutdownTimeout, "exit at most this long after SIGTERM/Ctrl-C (env REDPG_SHUTDOWN_TIMEOUT)")
	f.DurationVar(&sc.LeaderPoll, "leader-poll", leader.DefaultPoll, "how often a non-leader tries to take the leader's roles (env REDPG_LEADER_POLL)")
	f.BoolVar(&direct, "direct", false, "connect workers straight to PostgreSQL even if PgBouncer is configured")
	httpFlags(cmd, &httpAddr, &httpToken, true)
	return cmd
}
