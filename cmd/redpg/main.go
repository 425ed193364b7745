// Command redpg runs data pipelines on Redis and PostgreSQL. See
// `redpg --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redpg/redpg/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
