package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/web"
)

func (a *app) dashboardCommand() *cobra.Command {
	var addr, token string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the dashboard, API, metrics and health checks without running workers",
		Long: `Serves, until Ctrl-C, the same read-only HTTP view that ` + "`redpg serve`" + ` serves beside
its workers, from a process that runs none: to watch a pipeline driven by
` + "`redpg process`" + `, or from a host that should not take work.

` + httpEndpoints + `

Its /metrics has the shared state (queue depth, in flight, windows, workers
alive); the worker counters and histograms come from the processes that run
workers, each ` + "`redpg serve`" + ` on its own --http-addr.

It listens on ` + web.DefaultAddr + ` unless --http-addr (REDPG_HTTP_ADDR) says otherwise. With a
token (--http-token or REDPG_HTTP_TOKEN), every endpoint but the health checks needs
"Authorization: Bearer <token>"; browsers ask for it (any user name, the token as
password).`,
		Example: `  redpg dashboard
  REDPG_HTTP_TOKEN=$(openssl rand -hex 16) redpg dashboard --http-addr 0.0.0.0:8080
  curl -s localhost:8080/api/stats | jq .queue_depth`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.applyHTTPFlags(cmd, addr, token)
			if a.cfg.HTTPAddr == config.HTTPOff {
				return usageError{errors.New("dashboard only serves HTTP: --http-addr (REDPG_HTTP_ADDR) cannot be " + config.HTTPOff)}
			}
			if err := a.open(cmd.Context()); err != nil {
				return err
			}
			ln, h, err := a.listenHTTP(nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stderr, "read-only, no workers; Ctrl-C stops")
			a.log.Info("serving HTTP", "addr", ln.Addr().String(), "token", a.cfg.HTTPToken != "")
			return web.Serve(cmd.Context(), ln, h)
		},
	}
	httpFlags(cmd, &addr, &token, false)
	return cmd
}
