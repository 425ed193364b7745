package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/service"
)

func (a *app) demoCommand() *cobra.Command {
	var count int
	var gc generate.Config
	var opts pipeline.RunOptions
	var serve bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole flow: cache, generate, process, promote, stats",
		Long: `The seed's ./run.sh demo, checked: publishes the lookup cache, generates --count
orders with --duplicates re-sends, processes them with --workers workers until
the queue is empty, refreshes the materialized views and prints stats. It then
checks that this run promoted exactly the unique valid orders it generated and
that every order that reached the queue is accounted for (as ` + "`redpg reconcile`" + ` does), and exits
non-zero if not. Orders already queued before the demo are processed too; the
per-run comparison is then skipped, the accounting check is not.`,
		Example: `  redpg demo
  redpg demo --serve      # steps 3 and 4 by redpg serve, in-process
  redpg demo --count 100000 --duplicates 0.05 --invalid 0.01 --workers 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if count < 1 {
				return usageError{fmt.Errorf("--count %d: must be at least 1", count)}
			}
			if err := gc.Validate(); err != nil {
				return usageError{err}
			}
			if err := a.applyWorkerFlags(cmd, &opts); err != nil {
				return err
			}
			a.usePgBouncer = true
			if err := a.open(ctx); err != nil {
				return err
			}
			out := a.stdout
			step := func(n int, what string) { fmt.Fprintf(out, "\n[%d/5] %s\n", n, what) }

			step(1, "publish the lookup cache")
			v, err := a.pipe.InitCache(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "lookup snapshot v%d\n", v)
			before, err := a.pipe.Stats(ctx)
			if err != nil {
				return err
			}
			if before.QueueDepth+before.Processing > 0 {
				fmt.Fprintf(out, "note: %d messages were already queued or in flight; they are processed too\n", before.QueueDepth+before.Processing)
			}

			step(2, fmt.Sprintf("generate %d orders (%.0f%% duplicates, %.0f%% invalid)", count, 100*gc.Duplicates, 100*gc.Invalid))
			start := time.Now()
			bar := newProgress(a.stderr, "generate")
			gen, err := a.pipe.Generate(ctx, count, gc, bar.update)
			bar.done()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "queued %d: %d unique valid, %d duplicates, %d invalid (%s)\n",
				gen.Total, gen.Unique, gen.Duplicates, gen.Invalid, time.Since(start).Round(time.Millisecond))

			if serve {
				if err := a.demoServe(ctx, step, opts.Workers, before, gen); err != nil {
					return err
				}
			} else {
				step(3, fmt.Sprintf("process with %d workers until the queue is empty", opts.Workers))
				opts.UntilEmpty = true
				if err := a.runWorkers(ctx, opts); err != nil {
					return err
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}

				step(4, "refresh materialized views")
				if err := a.pipe.Promote(ctx); err != nil {
					return err
				}
			}

			step(5, "stats")
			after, err := a.pipe.Stats(ctx)
			if err != nil {
				return err
			}
			printStats(out, after)
			if err := a.checkDemo(before, after, gen); err != nil {
				return err
			}
			r, err := a.pipe.Reconcile(ctx)
			if err != nil {
				return err
			}
			if !r.OK() {
				fmt.Fprint(out, "\n"+r.String())
				return fmt.Errorf("demo check failed: not every order is accounted for")
			}
			fmt.Fprintf(out, "OK: all %d orders that reached the queue are accounted for (redpg reconcile)\n", r.Arrived)
			return nil
		},
	}
	generatorFlags(cmd, &count, &gc, 0.05)
	a.workerFlags(cmd, &opts)
	cmd.Flags().BoolVar(&serve, "serve", false, "let `redpg serve`, started in-process, do steps 3 and 4: workers and the event-driven view refresher")
	return cmd
}

// demoServe runs steps 3 and 4 with a service started in-process: its
// workers promote the orders generate queued, and its refresher, told by
// pub/sub, refreshes the views; nobody runs process or promote.
func (a *app) demoServe(ctx context.Context, step func(int, string), workers int, before pipeline.Stats, gen generate.Counts) error {
	step(3, fmt.Sprintf("redpg serve (%d workers, in-process) promotes the orders and refreshes the views by itself", workers))
	svc, err := service.New(service.Config{Workers: workers, Logger: a.log}, a.pipe, a.pg, a.rdb)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- svc.Run(sctx) }()
	t := schema.Tables{Schema: a.cfg.Schema}
	want := before.PromotedTotal + before.DuplicatesTotal + before.RejectedTotal + int64(gen.Total) + before.QueueDepth + before.Processing
	for {
		s, err := a.pipe.Stats(ctx)
		if err != nil {
			return err
		}
		var counted int64
		if err := a.pg.QueryRow(ctx, "SELECT coalesce(sum(order_count), 0)::bigint FROM "+t.View("shipping_zone_stats")).Scan(&counted); err != nil {
			return err
		}
		decided := s.PromotedTotal + s.DuplicatesTotal + s.RejectedTotal
		finished := decided >= want && counted == s.ProductionRows
		if isTerminal(a.stderr) {
			fmt.Fprintf(a.stderr, "\r  %s: %d of %d messages decided, %d orders in the views, %d view refreshes   ",
				time.Since(start).Round(100*time.Millisecond), decided, want, counted, svc.Refreshes())
			if finished {
				fmt.Fprintln(a.stderr)
			}
		}
		if finished {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("serve stopped early: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	fmt.Fprintf(a.stdout, "every order in orders and in the views after %s, %d view refreshes (at most one per %s)\n",
		time.Since(start).Round(10*time.Millisecond), svc.Refreshes(), svc.Config().RefreshInterval)

	step(4, "stop serve (as on SIGTERM)")
	stop()
	if err := <-done; err != nil {
		return err
	}
	c, batches := svc.Processed()
	fmt.Fprintf(a.stdout, "served %d batches: %d promoted, %d duplicates, %d rejected\n", batches, c.Promoted, c.Duplicates, c.Rejected)
	return nil
}

// checkDemo verifies that this run's orders all ended where they should.
func (a *app) checkDemo(before, after pipeline.Stats, gen generate.Counts) error {
	promoted := after.ProductionRows - before.ProductionRows
	dups := after.DuplicatesTotal - before.DuplicatesTotal
	rejected := after.RejectedTotal - before.RejectedTotal
	fmt.Fprintf(a.stdout, "\nthis run: %d promoted (generated %d unique valid), %d duplicates (generated %d), %d rejected (generated %d invalid)\n",
		promoted, gen.Unique, dups, gen.Duplicates, rejected, gen.Invalid)
	extra := before.QueueDepth + before.Processing
	if extra == 0 && (promoted != int64(gen.Unique) || dups != int64(gen.Duplicates) || rejected != int64(gen.Invalid)) {
		return fmt.Errorf("demo check failed: the counts above should match; run `redpg reconcile` for details")
	}
	if extra == 0 {
		fmt.Fprintln(a.stdout, "OK: production rows grew by exactly the unique valid orders generated")
	}
	return nil
}
