package cli

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/metrics"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/web"
)

// httpEndpoints is the help text's list of what the HTTP server answers.
const httpEndpoints = `  /            dashboard (updates itself; every asset is embedded in the binary)
  /api/stats   the fields of ` + "`stats --json`" + ` (live windows and workers included), plus batch rate and version
  /api/views   the materialized views' figures behind the charts
  /api/dlq     dead letters by reason and a page of samples (?reason= &limit= &after= &newest=1)
  /metrics     Prometheus metrics
  /healthz     the process is up          (no token needed)
  /readyz      Redis and PostgreSQL answer and migrations are current (no token needed)`

// httpFlags adds --http-addr and --http-token; offable says whether "off"
// is accepted (serve, demo) or the command exists to serve HTTP.
func httpFlags(cmd *cobra.Command, addr, token *string, offable bool) {
	usage := "listen on host:port (env REDPG_HTTP_ADDR; default " + web.DefaultAddr + ", loopback only)"
	if offable {
		usage = "serve the dashboard, API, metrics and health checks on host:port, or " + config.HTTPOff +
			" (env REDPG_HTTP_ADDR; default " + web.DefaultAddr + ", loopback only)"
	}
	cmd.Flags().StringVar(addr, "http-addr", "", usage)
	cmd.Flags().StringVar(token, "http-token", "", "require this bearer token on all but /healthz and /readyz (env REDPG_HTTP_TOKEN; default none)")
}

// applyHTTPFlags lets the HTTP flags the user set win over the
// environment. An explicitly empty --http-addr means off, as "off" does.
func (a *app) applyHTTPFlags(cmd *cobra.Command, addr, token string) {
	f := cmd.Flags()
	if f.Changed("http-addr") {
		a.cfg.HTTPAddr = cmp.Or(addr, config.HTTPOff)
	}
	if f.Changed("http-token") {
		a.cfg.HTTPToken = token
	}
}

// httpAddr is where to listen: the configured address, web.DefaultAddr if
// none, or "" when HTTP is off.
func (a *app) httpAddr() string {
	if a.cfg.HTTPAddr == config.HTTPOff {
		return ""
	}
	return cmp.Or(a.cfg.HTTPAddr, web.DefaultAddr)
}

// observeWorkers returns the metrics registry that counts this process's
// workers' batches and reads the shared state at each scrape. Call it
// before open: the pipeline is built with it.
func (a *app) observeWorkers() *metrics.Metrics {
	m := metrics.New(metrics.Config{Gauges: func(ctx context.Context) (metrics.Gauges, error) {
		return metrics.FromPipeline(a.pipe)(ctx) // a.pipe exists before anything scrapes
	}})
	a.timings = &pipeline.StageTimes{Observer: m}
	return m
}

// listenHTTP builds the web handler over the open pipeline (with m's
// /metrics when m is set) and listens on httpAddr, saying where on stderr.
// Listening here, before any worker starts, turns a taken port into an
// immediate error.
func (a *app) listenHTTP(m *metrics.Metrics) (net.Listener, http.Handler, error) {
	cfg := web.Config{Pipeline: a.pipe, PG: a.pg, RDB: a.rdb, Token: a.cfg.HTTPToken, Logger: a.log}
	if m != nil {
		cfg.Metrics = m.Handler()
	}
	h, err := web.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	addr := a.httpAddr()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w — pick another with --http-addr or REDPG_HTTP_ADDR (%s turns HTTP off)", addr, err, config.HTTPOff)
	}
	note := "no token"
	if a.cfg.HTTPToken != "" {
		note = "token required"
	} else if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) {
		note = "no token, and not loopback: anyone who can reach it can read the pipeline's data; set REDPG_HTTP_TOKEN"
	}
	fmt.Fprintf(a.stderr, "dashboard on http://%s/ (%s)\n", ln.Addr(), note)
	return ln, h, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
