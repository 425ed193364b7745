package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/transform"
	"github.com/redpg/redpg/internal/window"
)

// RunOptions says how long and how widely Run works.
type RunOptions struct {
	// Workers is the number of concurrent workers. Defaults to 1.
	Workers int
	// Iterations, when positive, is how many batches each worker processes
	// before stopping.
	Iterations int
	// UntilEmpty stops the workers once nothing is queued or in flight
	// anywhere, after reclaiming batches of dead workers.
	UntilEmpty bool
	// OnBatch, if set, is called after each batch is durable.
	OnBatch func(BatchReport)
}

// BatchReport describes one durable batch.
type BatchReport struct {
	Worker   string
	BatchID  string
	Counts   ledger.Counts
	Duration time.Duration
}

// Totals accumulates batch counts safely across workers.
type Totals struct {
	mu      sync.Mutex
	counts  ledger.Counts
	batches int64
}

func (t *Totals) add(c ledger.Counts) {
	t.mu.Lock()
	t.counts = t.counts.Add(c)
	t.batches++
	t.mu.Unlock()
}

// Counts returns the sums so far and the number of batches.
func (t *Totals) Counts() (ledger.Counts, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts, t.batches
}

// newID returns a random identifier with a readable prefix.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Run processes batches with opts.Workers concurrent workers until ctx is
// cancelled, every worker has done opts.Iterations batches, or — with
// UntilEmpty — nothing is left. A worker finishes its current batch before
// stopping; if ctx is cancelled mid-batch and PostgreSQL cannot be reached,
// the batch stays claimed and its lease lets another worker take it later.
func (p *Pipeline) Run(ctx context.Context, opts RunOptions) (ledger.Counts, error) {
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if err := p.Bind(ctx); err != nil {
		if ctx.Err() != nil {
			return ledger.Counts{}, nil
		}
		return ledger.Counts{}, err
	}
	host, _ := os.Hostname()
	runID := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID("")[:6])
	ids := make([]string, opts.Workers)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-w%d", runID, i)
	}

	if err := p.queue.Register(ctx, queue.WorkerInfo{Host: host, PID: os.Getpid(), Version: p.cfg.Version}, ids...); err != nil && ctx.Err() == nil {
		p.cfg.Logger.Warn("could not register the workers", "err", err)
	}
	stopRecorder := p.startRecorder(context.WithoutCancel(ctx))
	defer stopRecorder()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	wake := p.subscribe(bg)
	var bgDone sync.WaitGroup
	bgDone.Add(2)
	go func() { defer bgDone.Done(); p.heartbeat(bg, ids) }()
	go func() { defer bgDone.Done(); p.reapLoop(bg) }()
	if p.cfg.Tables.Partitioned {
		bgDone.Add(1)
		go func() { defer bgDone.Done(); p.partitionLoop(bg) }()
	}

	var totals Totals
	var wg sync.WaitGroup
	errs := make([]error, opts.Workers)
	var active atomic.Int64
	for i, id := range ids {
		wg.Add(1)
		active.Add(1)
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			errs[i] = p.work(ctx, id, opts, wake, &totals)
		}()
	}
	wg.Wait()
	stopBG()
	bgDone.Wait()
	leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, id := range ids {
		if batch, n, err := p.queue.Inflight(leaveCtx, id); err == nil && batch == "" && n == 0 {
			_ = p.queue.Leave(leaveCtx, id)
		}
	}
	c, _ := totals.Counts()
	return c, errors.Join(errs...)
}

// work is one worker's loop.
func (p *Pipeline) work(ctx context.Context, id string, opts RunOptions, wake *wakeup, totals *Totals) error {
	log := p.cfg.Logger.With("worker", id)
	// Two schedules: a claim that succeeds says Redis is back, not that the
	// batch it returns (the same one, while it keeps failing) will work.
	claimRetry := backoff{base: 100 * time.Millisecond, max: 5 * time.Second}
	batchRetry := backoff{base: 200 * time.Millisecond, max: 10 * time.Second}
	done := 0
	for opts.Iterations <= 0 || done < opts.Iterations {
		if ctx.Err() != nil {
			return nil
		}
		signal := wake.channel()
		claimed := p.cfg.Timings.now()
		b, err := p.queue.Claim(ctx, id, newID("b-"), p.cfg.BatchSize, p.cfg.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d := claimRetry.next()
			log.Warn("cannot claim a batch from Redis; retrying", "err", err, "in", d)
			sleep(ctx, d)
			continue
		}
		claimRetry.reset()
		if b != nil {
			p.cfg.Timings.claim(claimed, len(b.Messages))
		}
		if b == nil {
			if opts.UntilEmpty {
				empty, err := p.drained(ctx)
				if err == nil && empty {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-signal:
			case <-time.After(p.cfg.IdleWait):
			}
			continue
		}
		start := time.Now()
		counts, err := p.handleInHand(ctx, id, b)
		if err != nil {
			if ctx.Err() != nil {
				log.Info("stopping with a batch unfinished; its lease will return it to the queue", "batch", b.ID)
				return nil
			}
			d := batchRetry.next()
			log.Error("batch failed; it stays claimed and will be retried", "batch", b.ID, "err", err, "in", d)
			sleep(ctx, d)
			continue
		}
		batchRetry.reset()
		done++
		totals.add(counts)
		if opts.OnBatch != nil {
			opts.OnBatch(BatchReport{Worker: id, BatchID: b.ID, Counts: counts, Duration: time.Since(start)})
		}
	}
	return nil
}

// drained reports whether nothing is queued or claimed by any worker. It
// reaps expired leases first, so a dead worker's batch is returned to the
// queue rather than waited for forever.
func (p *Pipeline) drained(ctx context.Context) (bool, error) {
	if _, err := p.Reap(ctx); err != nil {
		return false, err
	}
	s, err := p.queue.Snapshot(ctx)
	if err != nil {
		return false, err
	}
	return s.Depth == 0 && s.InFlight() == 0 && s.Quarantined == 0, nil
}

// decodeSafely decodes raw, turning a decoder panic — a bug, but one a
// hostile payload must not turn into a crash loop — into a dead letter.
func decodeSafely(opt order.Options, raw []byte) (o order.Order, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &order.Rejection{Reason: order.ReasonPoison, Detail: fmt.Sprintf("the decoder panicked: %v", r)}
		}
	}()
	return opt.Decode(raw)
}

// prepared is a batch after decoding, the window lookup and enrichment.
type prepared struct {
	rows     []transform.Row
	seen     []bool   // seen[i]: rows[i]'s order id is in the de-dup window, so promoted already; nil: not looked up
	raws     [][]byte // raw payload of each row, for dead letters
	rejects  []promote.Rejection
	received int64
	claim    ledger.Claim // where the batch sits in the Redis account, kept in its ledger row
}

// seenAt is the window's verdict on row i alone, for promoting it alone.
func (pr *prepared) seenAt(i int) []bool {
	if pr.seen == nil {
		return nil
	}
	return pr.seen[i : i+1]
}

// prepare decodes the batch's messages, looks their ids up in the de-dup
// window and enriches them. It drops no copy of an id, neither a repeat in
// the batch nor one the window has seen: whether a copy is a duplicate
// depends on whether it is valid, which promotion decides (an invalid copy
// is a dead letter and never claims its id), so every decoded copy is
// staged and checked, and the window only spares the valid re-sends a
// trip into orders.
func (p *Pipeline) prepare(ctx context.Context, msgs [][]byte) (*prepared, error) {
	snap, err := p.lookups.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("lookup snapshot: %w", err)
	}
	return p.prepareWith(ctx, msgs, snap, true)
}

// prepareWithoutRedis prepares a batch whose preparation kept failing for
// a reason of its own: no lookup snapshot (promotion then enriches every
// row from the lookup tables) and no window (the primary key still judges
// duplicates). Slower, never wrong, and it cannot fail.
func (p *Pipeline) prepareWithoutRedis(ctx context.Context, msgs [][]byte) *prepared {
	pr, _ := p.prepareWith(ctx, msgs, &lookup.Snapshot{}, false)
	return pr
}

// prepareWith decodes msgs and enriches them from snap, looking their ids
// up in the de-dup window when window is set.
func (p *Pipeline) prepareWith(ctx context.Context, msgs [][]byte, snap *lookup.Snapshot, window bool) (*prepared, error) {
	var err error
	pr := &prepared{received: int64(len(msgs))}
	orders := make([]order.Order, 0, len(msgs))
	raws := make([][]byte, 0, len(msgs))
	for _, raw := range msgs {
		o, err := decodeSafely(p.cfg.Message, raw)
		if err != nil {
			var rej *order.Rejection
			if !errors.As(err, &rej) {
				rej = &order.Rejection{Reason: order.ReasonMalformedJSON, Detail: err.Error()}
			}
			// An oversized message's letter keeps its size and first bytes.
			raw = p.cfg.Message.Bounded(raw)
			pr.rejects = append(pr.rejects, promote.Rejection{OrderID: rej.OrderID, Reason: rej.Reason, Detail: rej.Detail, Raw: raw})
			continue
		}
		orders = append(orders, o)
		raws = append(raws, raw)
	}
	ids := make([]string, len(orders))
	for i := range orders {
		ids[i] = orders[i].OrderID
	}
	if window {
		if pr.seen, err = p.dedup.Seen(ctx, ids); err != nil {
			return nil, fmt.Errorf("dedup window: %w", err)
		}
	}
	pr.rows = transform.Apply(orders, snap)
	pr.raws = raws
	return pr, nil
}

// outcome is what committing a batch decided.
type outcome struct {
	counts   ledger.Counts
	promoted []string
	rows     []transform.Row // the promoted rows, for the live windows
	status   string          // ledger status when someone else had decided the batch
	// rejectedBy counts the batch's dead letters by reason, for metrics.
	rejectedBy map[string]int64
}

// handleInHand runs handle so that a shutdown (ctx cancelled) lets the
// batch in hand finish: its I/O keeps going for up to ShutdownGrace, while
// retries stop at once. A batch that cannot finish stays claimed, and its
// lease returns it to the queue.
func (p *Pipeline) handleInHand(ctx context.Context, worker string, b *queue.Batch) (ledger.Counts, error) {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(p.cfg.ShutdownGrace, cancel) })
	defer stop()
	return p.handle(bctx, ctx, worker, b)
}

// handle makes one claimed batch durable and acknowledges it. I/O uses ctx;
// retries give up once stop is done.
func (p *Pipeline) handle(ctx, stop context.Context, worker string, b *queue.Batch) (ledger.Counts, error) {
	log := p.cfg.Logger.With("worker", worker, "batch", b.ID)
	if b.Attempts > 1 {
		// A batch we claimed before and did not acknowledge: it may have
		// committed just before we lost track of it.
		status, err := ledger.Status(ctx, p.wpg, p.cfg.Tables, b.ID)
		if err != nil {
			return ledger.Counts{}, err
		}
		if status != "" {
			return ledger.Counts{}, p.settle(ctx, worker, b, status)
		}
	}
	if b.Quarantined {
		return p.quarantine(ctx, worker, b)
	}
	retry := backoff{base: 200 * time.Millisecond, max: 10 * time.Second}
	// Attempts counts this worker's claims of this very batch, so failures
	// before a re-claim count too. Messages that kill their workers are not
	// caught here (a dead worker's batch is requeued as a new one) but by
	// the requeue's per-copy redelivery count and quarantine.
	failures := int(b.Attempts) - 1
	prepared := p.cfg.Timings.now()
	pr, err := p.prepareRetrying(ctx, stop, log, b.Messages, &failures, &retry)
	if err != nil {
		return ledger.Counts{}, err
	}
	pr.claim = ledger.Claim{Epoch: b.Epoch, Mark: b.Mark}
	// prepare kept what the batch needs; the claimed payloads, which may be
	// large, need not live through the commit and its retries.
	b.Messages = nil
	p.cfg.Timings.add(stepPrepare, prepared)
	var out outcome
	for {
		if failures < p.cfg.MaxAttempts {
			out, err = p.commit(ctx, worker, b.ID, pr)
		} else {
			out, err = p.commitEach(ctx, worker, b.ID, pr)
		}
		if err == nil {
			break
		}
		if stop.Err() != nil || ctx.Err() != nil {
			return ledger.Counts{}, errors.Join(err, context.Cause(stop))
		}
		if !transient(err) {
			failures++
		}
		d := retry.next()
		log.Warn("batch not committed; retrying", "err", err, "failures", failures, "in", d)
		if !sleep(stop, d) {
			return ledger.Counts{}, context.Cause(stop)
		}
	}
	if out.status != "" {
		return ledger.Counts{}, p.settle(ctx, worker, b, out.status)
	}
	p.cfg.Timings.durable(pr, out)
	if err := p.cfg.Hooks.call(ctx, p.cfg.Hooks.AfterCommit, b.ID); err != nil {
		return ledger.Counts{}, err
	}
	acked := p.cfg.Timings.now()
	if err := p.ack(ctx, worker, b.ID); err != nil {
		return ledger.Counts{}, err
	}
	if err := p.dedup.Mark(ctx, out.promoted); err != nil {
		// The window is a fast path; PostgreSQL still rejects repeats.
		log.Warn("could not mark promoted ids in the dedup window", "err", err)
	}
	p.recordWindows(ctx, out.rows)
	p.rdb.Publish(ctx, p.cfg.Keys.Events(), EventPromoted)
	p.cfg.Timings.add(stepAck, acked)
	return out.counts, nil
}

// recordWindows counts promoted rows in the live windows. Like the de-dup
// mark it follows the commit and may fail without harm to the data: the
// windows are a view for people, keyed by order id, so a retry or a
// redelivery never counts an order twice. While Run runs, a recorder of its
// own does the Redis work, so a worker goes on to its next batch instead
// of waiting for it; when the recorder is behind, the worker records itself
// (never dropping a batch, never piling up more than a few).
func (p *Pipeline) recordWindows(ctx context.Context, rows []transform.Row) {
	if len(rows) == 0 {
		return
	}
	orders := make([]window.Order, len(rows))
	for i := range rows {
		r := &rows[i]
		orders[i] = window.Order{ID: r.Order.OrderID, Time: r.Order.OrderTimestamp}
		if r.TotalUSDCents != nil {
			orders[i].USDCents = *r.TotalUSDCents
		}
	}
	p.recMu.Lock()
	if p.rec != nil {
		select {
		case p.rec.ch <- orders:
			p.recMu.Unlock()
			return
		default:
		}
	}
	p.recMu.Unlock()
	p.recordOrders(ctx, orders)
}

func (p *Pipeline) recordOrders(ctx context.Context, orders []window.Order) {
	if err := p.windows.Record(ctx, orders); err != nil {
		p.cfg.Logger.Warn("could not count promoted orders in the live windows", "err", err)
	}
}

// windowRecorder records the live windows for the workers of the Runs
// that share it.
type windowRecorder struct {
	ch    chan []window.Order
	done  chan struct{}
	users int
}

// startRecorder makes the Pipeline's recorder run for one more Run; the
// returned function stops it when the last Run using it ends, once what it
// was handed is recorded.
func (p *Pipeline) startRecorder(ctx context.Context) (stop func()) {
	p.recMu.Lock()
	if p.rec == nil {
		r := &windowRecorder{ch: make(chan []window.Order, 8), done: make(chan struct{})}
		go func() {
			defer close(r.done)
			for orders := range r.ch {
				p.recordOrders(ctx, orders)
			}
		}()
		p.rec = r
	}
	r := p.rec
	r.users++
	p.recMu.Unlock()
	return func() {
		p.recMu.Lock()
		r.users--
		last := r.users == 0
		if last {
			close(r.ch)
			p.rec = nil
		}
		p.recMu.Unlock()
		if last {
			<-r.done
		}
	}
}

// prepareRetrying prepares msgs, retrying with backoff while it fails.
// Failures that are not the infrastructure's count in failures, which the
// commit goes on counting; at MaxAttempts the batch is prepared without
// Redis's help rather than held forever.
func (p *Pipeline) prepareRetrying(ctx, stop context.Context, log *slog.Logger, msgs [][]byte, failures *int, retry *backoff) (*prepared, error) {
	for {
		pr, err := p.prepare(ctx, msgs)
		if err == nil {
			return pr, nil
		}
		if stop.Err() != nil || ctx.Err() != nil {
			return nil, errors.Join(err, context.Cause(stop))
		}
		if !transient(err) {
			if *failures++; *failures >= p.cfg.MaxAttempts {
				log.Error("preparing the batch failed too often; going on without the lookup snapshot and the de-dup window",
					"err", err, "failures", *failures)
				return p.prepareWithoutRedis(ctx, msgs), nil
			}
		}
		d := retry.next()
		log.Warn("batch not prepared; retrying", "err", err, "failures", *failures, "in", d)
		if !sleep(stop, d) {
			return nil, context.Cause(stop)
		}
	}
}

// settle finishes a batch someone else decided: committed batches are
// acknowledged, abandoned ones were (or are now) requeued.
func (p *Pipeline) settle(ctx context.Context, worker string, b *queue.Batch, status string) error {
	if status == ledger.Abandoned {
		_, err := p.queue.Requeue(ctx, worker, b.ID)
		return err
	}
	return p.ack(ctx, worker, b.ID)
}

// ack acknowledges a durable batch, retrying while Redis is unreachable:
// until it succeeds the messages stay claimed, and a reaper that finds the
// batch committed releases them instead of requeueing.
func (p *Pipeline) ack(ctx context.Context, worker, batchID string) error {
	retry := backoff{base: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		_, err := p.queue.Ack(ctx, worker, batchID)
		if err == nil {
			return nil
		}
		p.cfg.Logger.Warn("cannot acknowledge a committed batch; retrying", "batch", batchID, "err", err)
		if !sleep(ctx, retry.next()) {
			return ctx.Err()
		}
	}
}

// commit stages, promotes and records the batch in one transaction.
func (p *Pipeline) commit(ctx context.Context, worker, batchID string, pr *prepared) (outcome, error) {
	var out outcome
	tm := p.cfg.Timings
	began := tm.now()
	var inner time.Duration // staging and promotion, told apart from BEGIN, ledger and COMMIT
	err := pgx.BeginTxFunc(ctx, p.wpg, p.batchTx(batchID), func(tx pgx.Tx) error {
		out = outcome{}
		h := p.cfg.Hooks
		if err := h.call(ctx, h.BeforeStage, batchID); err != nil {
			return err
		}
		staging := tm.now()
		if _, err := stage.Copy(ctx, tx, p.cfg.Tables, batchID, pr.rows); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		staged := tm.now()
		if err := h.call(ctx, h.BeforePromote, batchID); err != nil {
			return err
		}
		promoting := tm.now()
		res, err := promote.BatchSeen(ctx, tx, p.cfg.Tables, batchID, pr.rows, pr.seen)
		if err != nil {
			return err
		}
		if err := promote.Reject(ctx, tx, p.cfg.Tables, batchID, pr.rejects); err != nil {
			return err
		}
		if tm != nil {
			inner = staged.Sub(staging) + time.Since(promoting)
			tm.addDur(stepStage, staged.Sub(staging))
			tm.add(stepPromote, promoting)
		}
		out.promoted, out.rows = res.Promoted, res.Rows
		out.rejectedBy = rejectedBy(pr, res.RejectedBy)
		out.counts = ledger.Counts{
			Received:   pr.received,
			Promoted:   int64(len(res.Promoted)),
			Duplicates: res.Duplicates(),
			Rejected:   int64(len(pr.rejects)) + res.Rejected,
		}
		if err := p.record(ctx, tx, batchID, worker, pr.claim, &out); err != nil {
			return err
		}
		return h.call(ctx, h.BeforeCommit, batchID)
	})
	if tm != nil && err == nil {
		tm.addDur(stepCommit, time.Since(began)-inner)
	}
	if errors.Is(err, errDecided) {
		return out, nil
	}
	return out, err
}

// errDecided rolls back a transaction whose batch was already decided.
var errDecided = errors.New("batch already decided")

// record writes the ledger row; when the batch was decided elsewhere it sets
// out.status and returns errDecided so the transaction rolls back.
func (p *Pipeline) record(ctx context.Context, tx pgx.Tx, batchID, worker string, claim ledger.Claim, out *outcome) error {
	ok, err := ledger.Record(ctx, tx, p.cfg.Tables, batchID, ledger.Committed, worker, claim, out.counts)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	status, err := ledger.Status(ctx, tx, p.cfg.Tables, batchID)
	if err != nil {
		return err
	}
	*out = outcome{status: status}
	return errDecided
}

// commitEach is the fallback for a batch that keeps failing: each message
// is staged and promoted under its own savepoint, and the ones that still
// fail are dead-lettered with the database's error, all in one transaction
// so the batch stays atomic.
func (p *Pipeline) commitEach(ctx context.Context, worker, batchID string, pr *prepared) (outcome, error) {
	var out outcome
	err := pgx.BeginTxFunc(ctx, p.wpg, p.batchTx(batchID), func(tx pgx.Tx) error {
		out = outcome{counts: ledger.Counts{Received: pr.received}}
		rejects := append([]promote.Rejection(nil), pr.rejects...)
		for i := range pr.rows {
			var res promote.Result
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				if _, err := stage.Copy(ctx, sp, p.cfg.Tables, batchID, pr.rows[i:i+1]); err != nil {
					return err
				}
				var err error
				res, err = promote.BatchSeen(ctx, sp, p.cfg.Tables, batchID, pr.rows[i:i+1], pr.seenAt(i))
				return err
			})
			if err != nil {
				if transient(err) {
					return err
				}
				raw := p.cfg.Message.Bounded(pr.raws[i])
				rejects = append(rejects, promote.Rejection{OrderID: pr.rows[i].Order.OrderID,
					Reason: order.ReasonInfrastructure, Detail: err.Error(), Raw: raw})
				continue
			}
			out.promoted = append(out.promoted, res.Promoted...)
			out.rows = append(out.rows, res.Rows...)
			out.rejectedBy = mergeReasons(out.rejectedBy, res)
			out.counts.Promoted += int64(len(res.Promoted))
			out.counts.Rejected += res.Rejected
			out.counts.Duplicates += res.Duplicates()
		}
		for _, r := range rejects {
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				return promote.Reject(ctx, sp, p.cfg.Tables, batchID, []promote.Rejection{r})
			})
			if err != nil && transient(err) {
				return err
			}
			if err != nil {
				// Even the dead letter would not store: keep its essence.
				r = promote.Rejection{Reason: r.Reason, Detail: "unstorable dead letter: " + err.Error(), Raw: p.cfg.Message.Bounded([]byte(fmt.Sprintf("%q", r.Raw)))}
				if err := promote.Reject(ctx, tx, p.cfg.Tables, batchID, []promote.Rejection{r}); err != nil {
					return err
				}
			}
			out.counts.Rejected++
			if out.rejectedBy == nil {
				out.rejectedBy = map[string]int64{}
			}
			out.rejectedBy[r.Reason]++
		}
		return p.record(ctx, tx, batchID, worker, pr.claim, &out)
	})
	if errors.Is(err, errDecided) {
		return out, nil
	}
	return out, err
}

// quarantine dead-letters a batch of messages that each were in the hands
// of MaxDeliveries workers that died, without decoding them: whatever in
// them kills workers must not get another chance.
func (p *Pipeline) quarantine(ctx context.Context, worker string, b *queue.Batch) (ledger.Counts, error) {
	pr := &prepared{received: int64(len(b.Messages)), claim: ledger.Claim{Epoch: b.Epoch, Mark: b.Mark}}
	for _, raw := range b.Messages {
		detail := fmt.Sprintf("its batch was requeued %d times after the workers holding it died; not decoded again", p.queue.MaxDeliveries())
		if rej := p.cfg.Message.Oversized(raw); rej != nil {
			detail += "; " + rej.Detail
		}
		pr.rejects = append(pr.rejects, promote.Rejection{Reason: order.ReasonPoison, Detail: detail, Raw: p.cfg.Message.Bounded(raw)})
	}
	out, err := p.commit(ctx, worker, b.ID, pr)
	if err != nil {
		return ledger.Counts{}, err
	}
	if out.status != "" {
		return ledger.Counts{}, p.settle(ctx, worker, b, out.status)
	}
	p.cfg.Timings.durable(pr, out)
	p.cfg.Logger.Warn("dead-lettered quarantined messages", "worker", worker, "batch", b.ID, "messages", len(b.Messages))
	return out.counts, p.ack(ctx, worker, b.ID)
}
