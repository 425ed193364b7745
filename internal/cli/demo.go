package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
)

func (a *app) demoCommand() *cobra.Command {
	var count int
	var gc generate.Config
	var opts pipeline.RunOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole flow: cache, generate, process, promote, stats",
		Long: `The seed's ./run.sh demo, checked: publishes the lookup cache, generates --count
orders with --duplicates re-sends, processes them with --workers workers until
the queue is empty, refreshes the materialized views and prints stats. It then
checks that this run promoted exactly the unique valid orders it generated and
that every order ever produced is accounted for (as ` + "`redpg reconcile`" + ` does), and exits
non-zero if not. Orders already queued before the demo are processed too; the
per-run comparison is then skipped, the accounting check is not.`,
		Example: `  redpg demo
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
			fmt.Fprintf(out, "OK: all %d orders ever produced are accounted for (redpg reconcile)\n", r.Produced)
			return nil
		},
	}
	generatorFlags(cmd, &count, &gc, 0.05)
	a.workerFlags(cmd, &opts)
	return cmd
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
