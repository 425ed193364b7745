package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/transform"
	"github.com/redpg/redpg/internal/views"
)

// pushChunk is the most messages queue.Push sends in one LPUSH.
const pushChunk = 5000

// runner carries one run's state.
type runner struct {
	cfg      Config
	progress Progress
	tag      string
	tables   schema.Tables
	keys     keys.Space
	res      *Result

	pipe    *pipeline.Pipeline
	timings *pipeline.StageTimes
	snap    *lookup.Snapshot
	cat     generate.Catalog
	gen     generate.Config
}

func (r *runner) run(ctx context.Context) error {
	if err := r.setup(ctx); err != nil {
		return err
	}
	if r.cfg.Preload > 0 {
		start := time.Now()
		if err := r.preload(ctx); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		r.res.PreloadSeconds = time.Since(start).Seconds()
	}
	if err := r.baselines(ctx); err != nil {
		return err
	}
	busy, err := r.flatOut(ctx)
	if err != nil {
		return err
	}
	if err := r.refresh(ctx); err != nil {
		return err
	}
	if r.cfg.Mixed {
		d := min(max(busy.elapsed, 2*time.Second), 10*time.Second)
		r.progress("dashboards while idle", 0, 0)
		idle, err := r.dashboards(ctx, d)
		if err != nil {
			return err
		}
		m := &Mixed{Busy: busy.dash.queries.summary(), RefreshBusy: busy.dash.refreshes.summary(),
			Idle: idle.queries.summary(), RefreshIdle: idle.refreshes.summary()}
		if m.Idle.P99 > 0 {
			m.P99Ratio = m.Busy.P99 / m.Idle.P99
		}
		r.res.Mixed = m
	}
	if r.cfg.LatencyLoad > 0 {
		if err := r.paced(ctx, busy.gen); err != nil {
			return err
		}
	}
	r.ratios()
	r.targets()
	return nil
}

// stageBaseline is the raw operation each stage is compared with.
var stageBaseline = map[string]string{
	StageGenerateEnqueue: BaselineLPush, StageEnqueue: BaselineLPush, StageGenerateEnqueueInRun: BaselineLPush,
	StageConsume: BaselineRPop, StageClaim: BaselineRPop, StagePrepare: BaselineRPop, StageAck: BaselineRPop,
	StageStage: BaselineCopy, StagePromote: BaselineCopy, StageCommit: BaselineCopy,
	StageRefresh: BaselineCopy, StageEndToEnd: BaselineCopy,
}

// perWorker is the Timing of the steps measured inside workers.
const perWorker = "per worker"

// ratios relates every stage to its baseline. A per-worker step is
// compared with the COPY baseline per stream: both were measured with
// Workers connections at work at once.
func (r *runner) ratios() {
	for name, s := range r.res.Stages {
		s.Baseline = stageBaseline[name]
		s.BaselineOrdersPerSec = r.res.Baselines[s.Baseline].OrdersPerSec
		if s.Timing == perWorker && s.Baseline == BaselineCopy {
			s.BaselineOrdersPerSec /= float64(r.cfg.Workers)
		}
		if s.BaselineOrdersPerSec > 0 {
			s.Ratio = s.OrdersPerSec / s.BaselineOrdersPerSec
		}
		r.res.Stages[name] = s
	}
	if b := r.res.Baselines[BaselineCopySingle].OrdersPerSec; b > 0 {
		r.res.EndToEndVsSingleStream = r.res.Stages[StageEndToEnd].OrdersPerSec / b
	}
}

// setup creates the schema, the raw baseline table, the pipeline and the
// lookup snapshot.
func (r *runner) setup(ctx context.Context) error {
	r.progress("set-up", 0, 0)
	if _, err := schema.Migrate(ctx, r.cfg.PG, r.tables.Schema); err != nil {
		return fmt.Errorf("migrate schema %s: %w", r.tables.Schema, err)
	}
	raw, orders := r.rawTable(), r.tables.Orders()
	if _, err := r.cfg.PG.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (LIKE %s INCLUDING ALL)", raw, orders)); err != nil {
		return fmt.Errorf("create baseline table: %w", err)
	}
	if _, err := r.cfg.PG.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD FOREIGN KEY (product_id) REFERENCES %s (product_id)", raw, r.tables.Products())); err != nil {
		return fmt.Errorf("baseline table foreign key: %w", err)
	}
	r.timings = &pipeline.StageTimes{}
	p, err := pipeline.New(pipeline.Config{
		Keys: r.keys, Tables: r.tables, BatchSize: r.cfg.BatchSize, MaxQueueDepth: r.cfg.MaxQueueDepth,
		Logger: r.cfg.Logger, Timings: r.timings,
	}, r.cfg.PG, r.cfg.WorkerPG, r.cfg.Redis)
	if err != nil {
		return err
	}
	r.pipe = p
	if _, err := p.InitCache(ctx); err != nil {
		return fmt.Errorf("publish lookup cache: %w", err)
	}
	if r.snap, err = p.Lookups().Current(ctx); err != nil {
		return err
	}
	if r.cat, err = p.Catalog(ctx); err != nil {
		return err
	}
	r.gen = generate.Config{Seed: r.cfg.Seed, Now: time.Now(), RunID: r.tag[:6], Customers: 1000}
	r.res.Machine = r.machine(ctx)
	return nil
}

func (r *runner) rawTable() string { return pgx.Identifier{r.tables.Schema, "orders_raw"}.Sanitize() }

func (r *runner) machine(ctx context.Context) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	_ = r.cfg.PG.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('shared_buffers'), current_setting('synchronous_commit'), current_setting('autovacuum')").
		Scan(&m.PostgresVersion, &m.SharedBuffers, &m.SynchronousCommit, &m.Autovacuum)
	if info, err := r.cfg.Redis.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				m.RedisVersion = v
			}
		}
	}
	return m
}

// cleanup drops the schema and every key under the run's prefix. It tries
// the schema a few times, so that a server restarting at that moment (or a
// pooled connection it broke) does not leave the schema behind.
func (r *runner) cleanup(ctx context.Context) error {
	var err error
	for delay := 250 * time.Millisecond; ; delay *= 2 {
		if err = schema.Drop(ctx, r.cfg.PG, r.tables.Schema); err == nil || delay > 8*time.Second {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		if ctx.Err() != nil {
			break
		}
	}
	// The run's own keys start with its prefix; the keys of its two
	// deployments live in their namespaces. Every master of a cluster is
	// scanned.
	for _, pattern := range []string{r.keys.Prefix + "*", r.keys.Pattern(), r.enqueueKeys().Pattern()} {
		err = errors.Join(err, redisconn.UnlinkMatching(ctx, r.cfg.Redis, pattern))
	}
	if err != nil {
		return fmt.Errorf("clean up schema %s and keys %s*: %w", r.tables.Schema, r.keys.Prefix, err)
	}
	return nil
}

// enqueueKeys is the deployment the producer-alone baseline pushes into.
func (r *runner) enqueueKeys() keys.Space { return keys.Space{Prefix: r.keys.Prefix + "enqueue:"} }

// checkpoint flushes dirty buffers so that a checkpoint triggered by an
// earlier phase's writes does not land in the next measurement. It needs
// superuser or pg_checkpoint; without them it does nothing.
func (r *runner) checkpoint(ctx context.Context) {
	_, _ = r.cfg.PG.Exec(ctx, "CHECKPOINT")
}

// baselines measures raw LPUSH, RPOP and COPY on the first BaselineOrders
// orders of the run, and the producer (generate + enqueue) alone.
func (r *runner) baselines(ctx context.Context) error {
	n := r.cfg.BaselineOrders
	r.progress("baselines: generate", 0, 0)
	g, err := generate.New(r.cat, r.gen)
	if err != nil {
		return err
	}
	payloads := g.Batch(n)

	// LPUSH in the chunks queue.Push sends, then RPOP in the workers' batches.
	chunk := min(r.cfg.BatchSize, pushChunk)
	args := make([][]any, 0, n/chunk+1)
	for i := 0; i < n; i += chunk {
		a := make([]any, 0, min(chunk, n-i))
		for _, p := range payloads[i:min(i+chunk, n)] {
			a = append(a, p)
		}
		args = append(args, a)
	}
	// Best of two rounds, the first also warming up connections and Redis's
	// allocator: a baseline must not be slow by accident.
	scratch := r.keys.Prefix + "scratch"
	for round := 1; round <= 2; round++ {
		label := fmt.Sprintf("baseline LPUSH, round %d", round)
		r.progress(label, 0, n)
		start := time.Now()
		for i, a := range args {
			if err := r.cfg.Redis.LPush(ctx, scratch, a...).Err(); err != nil {
				return fmt.Errorf("baseline LPUSH: %w", err)
			}
			r.progress(label, min((i+1)*chunk, n), n)
		}
		if f := figure(int64(n), time.Since(start)); f.OrdersPerSec > r.res.Baselines[BaselineLPush].OrdersPerSec {
			r.res.Baselines[BaselineLPush] = f
		}
		label = fmt.Sprintf("baseline RPOP, round %d", round)
		r.progress(label, 0, n)
		popped := 0
		start = time.Now()
		for {
			items, err := r.cfg.Redis.RPopCount(ctx, scratch, r.cfg.BatchSize).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("baseline RPOP: %w", err)
			}
			if len(items) == 0 {
				break
			}
			popped += len(items)
			r.progress(label, popped, n)
		}
		if f := figure(int64(popped), time.Since(start)); f.OrdersPerSec > r.res.Baselines[BaselineRPop].OrdersPerSec {
			r.res.Baselines[BaselineRPop] = f
		}
	}
	args = nil

	// The producer alone: enqueue the ready payloads, then generate and
	// enqueue the same orders, into scratch queues.
	if err := r.enqueueAlone(ctx, payloads); err != nil {
		return err
	}

	// COPY of the same enriched rows into a copy of orders.
	r.progress("baseline COPY: prepare rows", 0, 0)
	orders := make([]order.Order, 0, n)
	for _, p := range payloads {
		o, err := order.Decode(p)
		if err != nil {
			return fmt.Errorf("generated order does not decode: %w", err)
		}
		orders = append(orders, o)
	}
	payloads = nil
	rows := transform.Apply(orders, r.snap)
	orders = nil
	r.checkpoint(ctx)
	d, err := r.copyRaw(ctx, rows, r.cfg.Workers)
	if err != nil {
		return fmt.Errorf("baseline COPY: %w", err)
	}
	r.res.Baselines[BaselineCopy] = figure(int64(len(rows)), d)
	if r.cfg.Workers == 1 {
		r.res.Baselines[BaselineCopySingle] = r.res.Baselines[BaselineCopy]
		return nil
	}
	if _, err := r.cfg.PG.Exec(ctx, "TRUNCATE "+r.rawTable()); err != nil {
		return err
	}
	r.checkpoint(ctx)
	if d, err = r.copyRaw(ctx, rows, 1); err != nil {
		return fmt.Errorf("baseline COPY, one stream: %w", err)
	}
	r.res.Baselines[BaselineCopySingle] = figure(int64(len(rows)), d)
	return nil
}

// enqueueAlone times queue.Push of the ready payloads (the queue's own
// cost: MULTI, LPUSH, INCRBY, PUBLISH), and then generate + queue.Push of
// the same orders (what `redpg generate` does), each alone, into scratch
// queues that are emptied afterwards.
func (r *runner) enqueueAlone(ctx context.Context, payloads [][]byte) error {
	n := len(payloads)
	for _, withGenerate := range []bool{false, true} {
		ks := r.enqueueKeys()
		q, err := queue.New(r.cfg.Redis, queue.Config{Keys: ks, MaxDepth: n + 1})
		if err != nil {
			return err
		}
		g, err := generate.New(r.cat, r.gen)
		if err != nil {
			return err
		}
		label, stage := "enqueue alone", StageEnqueue
		if withGenerate {
			label, stage = "generate + enqueue alone", StageGenerateEnqueue
		}
		r.progress(label, 0, n)
		done := 0
		push := func(ctx context.Context, batch [][]byte) error {
			if err := q.Push(ctx, batch, nil); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			done += len(batch)
			r.progress(label, done, n)
			return nil
		}
		start := time.Now()
		if withGenerate {
			// The producer of `redpg generate` (pipeline.Generate), chunked
			// like the pass without it.
			_, err = generate.Produce(ctx, g, n, r.cfg.BatchSize, push)
		} else {
			for err == nil && done < n {
				err = push(ctx, payloads[done:min(done+r.cfg.BatchSize, n)])
			}
		}
		if err != nil {
			return err
		}
		r.res.Stages[stage] = Stage{Figure: figure(int64(n), time.Since(start)), Timing: "wall"}
		if err := r.cfg.Redis.Unlink(ctx, ks.Queue(), ks.Produced()).Err(); err != nil {
			return err
		}
	}
	return nil
}

// copyRaw COPYs rows into orders_raw in chunks of BatchSize over streams
// parallel connections, each chunk its own transaction, and returns the
// wall-clock time.
func (r *runner) copyRaw(ctx context.Context, rows []transform.Row, streams int) (time.Duration, error) {
	b := r.cfg.BatchSize
	chunks := (len(rows) + b - 1) / b
	var next, copied atomic.Int64
	errs := make([]error, streams)
	var wg sync.WaitGroup
	table := pgx.Identifier{r.tables.Schema, "orders_raw"}
	label := fmt.Sprintf("baseline COPY, %d stream(s)", streams)
	r.progress(label, 0, len(rows))
	start := time.Now()
	for w := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= chunks || ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				part := rows[i*b : min((i+1)*b, len(rows))]
				err := r.cfg.PG.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
					_, err := stage.CopyOrders(ctx, c.Conn().PgConn(), table, part)
					return err
				})
				if err != nil {
					errs[w] = err
					return
				}
				r.progress(label, int(copied.Add(int64(len(part)))), len(rows))
			}
		}()
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// phase is what a pipeline phase measured.
type phase struct {
	gen     *generate.Generator // the producer's generator, to continue from
	elapsed time.Duration
	dash    *dashResult
}

// flatOut pushes Total orders as fast as the producer can while the workers
// run, and measures every stage.
func (r *runner) flatOut(ctx context.Context) (phase, error) {
	var ph phase
	g, err := generate.New(r.cat, r.gen)
	if err != nil {
		return ph, err
	}
	ph.gen = g
	r.checkpoint(ctx)
	resetOK := resetPeakRSS()
	r.timings.Reset()
	lat := newLatencies()
	r.timings.OnDurable = lat.durable

	var dash *dashboardRun
	if r.cfg.Mixed {
		if dash, err = r.startDashboards(ctx); err != nil {
			return ph, err
		}
	}
	var first, produced time.Time
	counts, err := r.drive(ctx, "pipeline", r.cfg.Total, func(ctx context.Context) error {
		done := 0
		_, err := generate.Produce(ctx, g, r.cfg.Total, r.cfg.BatchSize, func(ctx context.Context, batch [][]byte) error {
			if done == 0 {
				first = time.Now()
			}
			if err := r.pipe.Push(ctx, batch, nil); err != nil {
				return err
			}
			done += len(batch)
			lat.queued(done, time.Now())
			return nil
		})
		produced = time.Now()
		return err
	})
	if dash != nil {
		ph.dash = dash.stop()
		if derr := dash.err(); err == nil && derr != nil {
			err = derr
		}
	}
	rss := peakRSS()
	if err != nil {
		return ph, err
	}
	lat.resolve()
	ph.elapsed = lat.lastDurable().Sub(first)
	r.res.PeakRSSMB = float64(rss) / (1 << 20)
	r.res.PeakRSSScope = "process"
	if resetOK {
		r.res.PeakRSSScope = "pipeline"
	}
	r.res.Latency = lat.hist.summary()
	r.res.Counts = Counts{Received: counts.Received, Promoted: counts.Promoted, Duplicates: counts.Duplicates, Rejected: counts.Rejected}

	t := r.timings.Totals()
	summed := perWorker
	st := r.res.Stages
	st[StageGenerateEnqueueInRun] = Stage{Figure: figure(int64(r.cfg.Total), produced.Sub(first)), Timing: "wall"}
	st[StageConsume] = Stage{Figure: figure(t.Received, t.Claim+t.Prepare), Timing: summed}
	st[StageClaim] = Stage{Figure: figure(t.Received, t.Claim), Timing: summed}
	st[StagePrepare] = Stage{Figure: figure(t.Received, t.Prepare), Timing: summed}
	st[StageStage] = Stage{Figure: figure(t.Staged, t.Stage), Timing: summed}
	st[StagePromote] = Stage{Figure: figure(t.Staged, t.Promote), Timing: summed}
	st[StageCommit] = Stage{Figure: figure(t.Staged, t.Commit), Timing: summed}
	st[StageAck] = Stage{Figure: figure(t.Received, t.Ack), Timing: summed}
	st[StageEndToEnd] = Stage{Figure: figure(counts.Promoted, ph.elapsed), Timing: "wall"}
	return ph, nil
}

// drive runs the workers while produce pushes n orders, until all n are
// accounted for (promoted, duplicate or rejected). It fails when no batch
// commits for StallTimeout.
func (r *runner) drive(ctx context.Context, label string, n int, produce func(context.Context) error) (ledger.Counts, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var received atomic.Int64
	var lastBatch atomic.Int64
	lastBatch.Store(time.Now().UnixNano())
	r.progress(label, 0, n)
	prodErr := make(chan error, 1)
	go func() {
		err := produce(runCtx)
		if err != nil {
			cancel(fmt.Errorf("producer: %w", err))
		}
		prodErr <- err
	}()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				if time.Since(time.Unix(0, lastBatch.Load())) > r.cfg.StallTimeout {
					cancel(fmt.Errorf("no batch committed for %s with %d of %d orders done", r.cfg.StallTimeout, received.Load(), n))
					return
				}
			}
		}
	}()
	c, runErr := r.pipe.Run(runCtx, pipeline.RunOptions{Workers: r.cfg.Workers, OnBatch: func(b pipeline.BatchReport) {
		lastBatch.Store(time.Now().UnixNano())
		done := received.Add(b.Counts.Received)
		r.progress(label, int(done), n)
		if done >= int64(n) {
			cancel(nil)
		}
	}})
	pErr := <-prodErr
	counts := c
	if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return counts, cause
	}
	if ctx.Err() != nil {
		return counts, ctx.Err()
	}
	if runErr != nil {
		return counts, runErr
	}
	if pErr != nil {
		return counts, pErr
	}
	if got := received.Load(); got < int64(n) {
		return counts, fmt.Errorf("%s: only %d of %d orders were processed", label, got, n)
	}
	return counts, nil
}

// refresh times one concurrent refresh of all three views.
func (r *runner) refresh(ctx context.Context) error {
	r.progress("refresh views", 0, 0)
	var rows int64
	if err := r.cfg.PG.QueryRow(ctx, "SELECT count(*) FROM "+r.tables.Orders()).Scan(&rows); err != nil {
		return err
	}
	start := time.Now()
	if err := views.Refresh(ctx, r.cfg.PG, r.tables); err != nil {
		return err
	}
	r.res.Stages[StageRefresh] = Stage{Figure: figure(rows, time.Since(start)), Timing: "wall"}
	return nil
}

// paced offers orders at LatencyLoad times the end-to-end rate for
// LatencyDuration and measures their latency below saturation.
func (r *runner) paced(ctx context.Context, g *generate.Generator) error {
	rate := r.cfg.LatencyLoad * r.res.Stages[StageEndToEnd].OrdersPerSec
	n := int(rate * r.cfg.LatencyDuration.Seconds())
	if n < 1 {
		return nil
	}
	lat := newLatencies()
	r.timings.OnDurable = lat.durable
	base := r.cfg.Total // the generator continues after the flat-out run's orders
	var first time.Time
	_, err := r.drive(ctx, "paced", n, func(ctx context.Context) error {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		first = time.Now()
		for sent := 0; sent < n; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
			due := min(int(rate*time.Since(first).Seconds()), n) - sent
			if due <= 0 {
				continue
			}
			if err := r.pipe.Push(ctx, g.Batch(due), nil); err != nil {
				return err
			}
			sent += due
			lat.queued(base+sent, time.Now())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("paced phase: %w", err)
	}
	lat.resolve()
	r.res.Paced = &Paced{Load: r.cfg.LatencyLoad, OfferedPerSec: rate,
		AchievedPerSec: float64(n) / lat.lastDurable().Sub(first).Seconds(), Latency: lat.hist.summary()}
	return nil
}

// targets records which of the goals this run met.
func (r *runner) targets() {
	st := r.res.Stages
	ratio := func(name string) float64 { return st[name].Ratio }
	r.res.Targets = append(r.res.Targets,
		Target{Name: "end-to-end vs COPY into orders", Want: ">= 0.6", Got: ratio(StageEndToEnd), Met: ratio(StageEndToEnd) >= 0.6},
		Target{Name: "end-to-end vs one COPY stream", Want: ">= 0.6", Got: r.res.EndToEndVsSingleStream, Met: r.res.EndToEndVsSingleStream >= 0.6},
		Target{Name: "enqueue (queue.Push) vs LPUSH", Want: ">= 0.5", Got: ratio(StageEnqueue), Met: ratio(StageEnqueue) >= 0.5},
		Target{Name: "generate + enqueue vs LPUSH", Want: ">= 0.5", Got: ratio(StageGenerateEnqueue), Met: ratio(StageGenerateEnqueue) >= 0.5},
	)
	if r.cfg.BatchSize <= 5000 {
		r.res.Targets = append(r.res.Targets, Target{Name: "peak RSS (MB) at batch <= 5000", Want: "< 150", Got: r.res.PeakRSSMB, Met: r.res.PeakRSSMB < 150})
	}
}

// latencies turns commit times into per-order enqueue-to-durable latency.
// The producer marks, after each push, the highest sequence number it has
// queued and when; an order's latency is from the mark covering it to the
// commit of the batch that promoted it. Memory is one mark per push, not
// one entry per order.
type latencies struct {
	mu      sync.Mutex
	marks   []mark // ascending seq
	pending []pendingOrder
	last    time.Time
	hist    histogram
}

type mark struct {
	seq int // the highest sequence number queued by this push
	at  time.Time
}

type pendingOrder struct {
	seq int
	at  time.Time
}

func newLatencies() *latencies { return &latencies{} }

// queued records that every order up to seq is in the queue as of at.
func (l *latencies) queued(seq int, at time.Time) {
	l.mu.Lock()
	l.marks = append(l.marks, mark{seq: seq, at: at})
	l.mu.Unlock()
}

// durable is pipeline.StageTimes.OnDurable.
func (l *latencies) durable(ids []string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at.After(l.last) {
		l.last = at
	}
	cur, n := -1, uint64(0)
	flush := func() {
		if n > 0 {
			l.hist.recordN(at.Sub(l.marks[cur].at), n)
		}
	}
	for _, id := range ids {
		seq, ok := seqOf(id)
		if !ok {
			continue
		}
		i := sort.Search(len(l.marks), func(i int) bool { return l.marks[i].seq >= seq })
		if i == len(l.marks) {
			// Committed before the producer got round to marking its push.
			l.pending = append(l.pending, pendingOrder{seq: seq, at: at})
			continue
		}
		if i != cur {
			flush()
			cur, n = i, 0
		}
		n++
	}
	flush()
}

// resolve accounts for orders whose push was marked after their commit.
func (l *latencies) resolve() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.pending {
		i := sort.Search(len(l.marks), func(i int) bool { return l.marks[i].seq >= p.seq })
		if i < len(l.marks) {
			l.hist.record(max(p.at.Sub(l.marks[i].at), 0))
		}
	}
	l.pending = nil
}

func (l *latencies) lastDurable() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// seqOf reads the sequence number the generator puts at the end of an
// order id (ORD-<run>-<seq>).
func seqOf(id string) (int, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	return n, err == nil
}
