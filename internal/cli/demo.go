package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/redpg/redpg/internal/config"
	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/metrics"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/service"
	"github.com/redpg/redpg/internal/web"
)

func (a *app) demoCommand() *cobra.Command {
	var count int
	var gc generate.Config
	var opts pipeline.RunOptions
	var serve bool
	var pace, linger time.Duration
	var httpAddr, httpToken string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole flow: cache, generate, process, promote, stats",
		Long: `The seed's ./run.sh demo, checked: publishes the lookup cache, generates --count
orders with --duplicates re-sends, processes them with --workers workers until
the queue is empty, refreshes the materialized views and prints stats. It then
checks that this run promoted exactly the unique valid orders it generated and
that every order that reached the queue is accounted for (as ` + "`redpg reconcile`" + ` does), and exits
non-zero if not. Orders already queued before the demo are processed too; the
per-run comparison is then skipped, the accounting check is not.

With --serve, ` + "`redpg serve`" + ` runs in-process from step 2 on, with its HTTP server
(--http-addr, default ` + web.DefaultAddr + `; the URL is printed): its workers promote the
orders as they arrive and its refresher keeps the views fresh, so nobody runs
process or promote. --pace spreads generation over that long, so that whoever
opens the dashboard sees the orders arrive, and --linger keeps serving that long
after the last order is in the views (Ctrl-C ends it early; the checks still run).`,
		Example: `  redpg demo
  redpg demo --serve      # steps 3 and 4 by redpg serve, in-process
  redpg demo --serve --pace 20s --linger 1m   # what make demo runs: watch http://` + web.DefaultAddr + `/
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
			if pace < 0 || linger < 0 {
				return usageError{fmt.Errorf("--pace %s and --linger %s must not be negative", pace, linger)}
			}
			if !serve && (pace > 0 || linger > 0 || cmd.Flags().Changed("http-addr")) {
				return usageError{errors.New("--pace, --linger and --http-addr go with --serve")}
			}
			a.applyHTTPFlags(cmd, httpAddr, httpToken)
			var m *metrics.Metrics
			if serve && a.httpAddr() != "" {
				m = a.observeWorkers()
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

			var svc *demoService
			if serve {
				if svc, err = a.startDemoService(ctx, opts.Workers, m); err != nil {
					return err
				}
				defer func() { _ = svc.stop() }()
			}
			what := fmt.Sprintf("generate %d orders (%.0f%% duplicates, %.0f%% invalid)", count, 100*gc.Duplicates, 100*gc.Invalid)
			if pace > 0 {
				what += fmt.Sprintf(" over %s", pace)
			}
			if serve {
				what += ", while redpg serve takes them"
			}
			step(2, what)
			start := time.Now()
			gen, err := a.demoGenerate(ctx, count, gc, pace)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "queued %d: %d unique valid, %d duplicates, %d invalid (%s)\n",
				gen.Total, gen.Unique, gen.Duplicates, gen.Invalid, time.Since(start).Round(time.Millisecond))

			if serve {
				if ctx, err = a.demoServe(ctx, step, svc, before, gen, linger); err != nil {
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
	cmd.Flags().BoolVar(&serve, "serve", false, "let `redpg serve`, started in-process, do steps 3 and 4: workers, the event-driven view refresher and the dashboard")
	cmd.Flags().DurationVar(&pace, "pace", 0, "with --serve: spread generation over this long, so the dashboard shows orders arrive (0: all at once)")
	cmd.Flags().DurationVar(&linger, "linger", 0, "with --serve: keep serving the dashboard this long after the last order is in the views")
	httpFlags(cmd, &httpAddr, &httpToken, true)
	return cmd
}

// demoService is `redpg serve` running in-process for the demo.
type demoService struct {
	svc    *service.Service
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop stops the service, as SIGTERM would, and waits for it; calling it
// again returns the same result.
func (d *demoService) stop() error {
	d.once.Do(func() {
		d.cancel()
		d.err = <-d.done
	})
	return d.err
}

// startDemoService starts the service, with its HTTP server when m is set.
// A port already taken costs the demo its dashboard, not its run.
func (a *app) startDemoService(ctx context.Context, workers int, m *metrics.Metrics) (*demoService, error) {
	sc := service.Config{Workers: workers, Logger: a.log}
	if m != nil {
		ln, h, err := a.listenHTTP(m)
		if err != nil {
			fmt.Fprintf(a.stderr, "no dashboard this time: %s\n", config.RedactText(err.Error()))
		} else {
			sc.HTTPListener, sc.HTTPHandler = ln, h
		}
	}
	svc, err := service.New(sc, a.pipe, a.pg, a.rdb)
	if err != nil {
		if sc.HTTPListener != nil {
			_ = sc.HTTPListener.Close()
		}
		return nil, err
	}
	// The demo stops the service itself on every path, after lingering
	// even when Ctrl-C ended the linger.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &demoService{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- svc.Run(sctx) }()
	fmt.Fprintf(a.stdout, "redpg serve runs in-process: %d workers, views refreshed at most every %s\n", workers, svc.Config().RefreshInterval)
	return d, nil
}

// demoGenerate queues count orders: at once, or with pace in one round a
// second, each with its own seed so that rounds do not repeat each other.
func (a *app) demoGenerate(ctx context.Context, count int, gc generate.Config, pace time.Duration) (generate.Counts, error) {
	rounds := 1
	if pace > 0 {
		rounds = max(1, min(count, int(pace/time.Second)))
	}
	bar := newProgress(a.stderr, "generate")
	defer bar.done()
	var total generate.Counts
	start := time.Now()
	for i := range rounds {
		if wait := time.Until(start.Add(pace * time.Duration(i) / time.Duration(rounds))); wait > 0 {
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(wait):
			}
		}
		n := count/rounds + btoi(i < count%rounds)
		rc := gc
		if gc.Seed != 0 {
			rc.Seed = gc.Seed + uint64(i)
		}
		done := total.Total
		c, err := a.pipe.Generate(ctx, n, rc, func(d, _ int, depth int64) { bar.update(done+d, count, depth) })
		total = generate.Counts{Total: total.Total + c.Total, Unique: total.Unique + c.Unique,
			Duplicates: total.Duplicates + c.Duplicates, Invalid: total.Invalid + c.Invalid}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// demoServe is steps 3 and 4 with the service started in-process: its
// workers promote the orders generate queued, and its refresher, told by
// pub/sub, refreshes the views; nobody runs process or promote. After
// lingering it stops the service. It returns the context for the steps
// left: one that Ctrl-C during the linger no longer cancels.
func (a *app) demoServe(ctx context.Context, step func(int, string), d *demoService, before pipeline.Stats, gen generate.Counts, linger time.Duration) (context.Context, error) {
	svc := d.svc
	step(3, "redpg serve promotes the orders and refreshes the views by itself")
	start := time.Now()
	t := schema.Tables{Schema: a.cfg.Schema}
	want := before.PromotedTotal + before.DuplicatesTotal + before.RejectedTotal + int64(gen.Total) + before.QueueDepth + before.Processing
	for {
		s, err := a.pipe.Stats(ctx)
		if err != nil {
			return ctx, err
		}
		var counted int64
		if err := a.pg.QueryRow(ctx, "SELECT coalesce(sum(order_count), 0)::bigint FROM "+t.View("shipping_zone_stats")).Scan(&counted); err != nil {
			return ctx, err
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
			return ctx, ctx.Err()
		case err := <-d.done:
			d.done <- err // for stop
			return ctx, fmt.Errorf("serve stopped early: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	fmt.Fprintf(a.stdout, "every order in orders and in the views %s after the last was queued, %d view refreshes (at most one per %s)\n",
		time.Since(start).Round(10*time.Millisecond), svc.Refreshes(), svc.Config().RefreshInterval)

	what := "stop serve (as on SIGTERM)"
	if linger > 0 && svc.Config().HTTPHandler != nil {
		what = fmt.Sprintf("keep serving the dashboard for %s (Ctrl-C ends it now), then stop serve (as on SIGTERM)", linger)
	}
	step(4, what)
	if linger > 0 && svc.Config().HTTPHandler != nil {
		select {
		case <-ctx.Done():
			fmt.Fprintln(a.stdout, "interrupted: stopping serve and finishing the demo (Ctrl-C again exits at once)")
			ctx = context.WithoutCancel(ctx)
		case err := <-d.done:
			d.done <- err // for stop
			return ctx, fmt.Errorf("serve stopped early: %w", err)
		case <-time.After(linger):
		}
	}
	if err := d.stop(); err != nil {
		return ctx, err
	}
	c, batches := svc.Processed()
	fmt.Fprintf(a.stdout, "served %d batches: %d promoted, %d duplicates, %d rejected\n", batches, c.Promoted, c.Duplicates, c.Rejected)
	return ctx, nil
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
