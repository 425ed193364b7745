package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/redpg/redpg/internal/ledger"
)

// wakeup broadcasts pub/sub notices to idle workers: each notice closes the
// current channel and replaces it.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) channel() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *wakeup) fire() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

// subscribe listens on the events channel until ctx ends, waking idle
// workers as soon as a producer announces work instead of polling on a
// timer. If the subscription breaks, workers still poll every IdleWait.
func (p *Pipeline) subscribe(ctx context.Context) *wakeup {
	w := &wakeup{ch: make(chan struct{})}
	sub := p.rdb.Subscribe(ctx, p.cfg.Keys.Events())
	go func() {
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				if strings.HasPrefix(m.Payload, EventLookupsPrefix) {
					// Nothing to do: each batch reads the snapshot version.
					p.cfg.Logger.Info("lookup snapshot republished; workers switch at their next batch", "version", strings.TrimPrefix(m.Payload, EventLookupsPrefix))
				}
				w.fire()
			}
		}
	}()
	return w
}

// heartbeat renews the leases of ids every third of a lease until ctx ends.
func (p *Pipeline) heartbeat(ctx context.Context, ids []string) {
	tick := time.NewTicker(p.cfg.Lease / 3)
	defer tick.Stop()
	for {
		if err := p.queue.Heartbeat(ctx, p.cfg.Lease, ids...); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("heartbeat failed", "workers", len(ids), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reapLoop reclaims expired leases, and trims the live windows, every half
// lease until ctx ends.
func (p *Pipeline) reapLoop(ctx context.Context) {
	tick := time.NewTicker(p.cfg.Lease / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := p.Reap(ctx)
		if err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("reaper failed; it tries again in half a lease", "err", err)
		}
		if n > 0 {
			p.cfg.Logger.Info("returned dead workers' messages to the queue", "messages", n)
		}
		// Workers fill the live windows, so whatever runs workers trims them
		// too, `redpg serve` or not: they never hold much more than an hour.
		if _, err := p.windows.Trim(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("could not trim the live windows", "err", err)
		}
	}
}

// Reap returns the batches of workers whose lease expired to the queue, or
// releases them if they turn out to be durable already, and reports how
// many messages were requeued. The ledger decides: the batch is fenced as
// abandoned in PostgreSQL first, so a worker that was only slow, not dead,
// can no longer commit it. Each dead worker is reaped on its own: one whose
// fence cannot be decided yet (a frozen worker's transaction still holds
// its ledger row, until lock_timeout) is reported in the error and left for
// the next round, and the others are reaped all the same.
func (p *Pipeline) Reap(ctx context.Context) (int64, error) {
	dead, err := p.queue.Expired(ctx, 0)
	if err != nil {
		return 0, err
	}
	var moved int64
	var errs []error
	for _, w := range dead {
		n, err := p.reapOne(ctx, w)
		moved += n
		if err != nil {
			errs = append(errs, fmt.Errorf("reap worker %s: %w", w, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return moved, errors.Join(errs...)
}

// reapOne fences and then requeues or releases one dead worker's batch.
func (p *Pipeline) reapOne(ctx context.Context, w string) (int64, error) {
	batchID, _, err := p.queue.Inflight(ctx, w)
	if err != nil {
		return 0, err
	}
	status := ledger.Abandoned
	if batchID != "" {
		err := pgx.BeginTxFunc(ctx, p.pg, p.tx, func(tx pgx.Tx) error {
			var err error
			status, err = ledger.Fence(ctx, tx, p.cfg.Tables, batchID, w)
			return err
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available: its session holds the ledger row
			p.endBatchSession(ctx, w, batchID)
		}
		if err != nil {
			return 0, err
		}
		if status == ledger.Abandoned {
			// Fenced: the worker's transaction can never commit now, and if
			// it froze mid-statement its locks on the batch's order ids
			// would keep every batch sharing them waiting.
			p.endBatchSession(ctx, w, batchID)
		}
	}
	if status == ledger.Abandoned {
		n, err := p.queue.Requeue(ctx, w, batchID)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			p.cfg.Logger.Info("requeued a dead worker's batch", "worker", w, "batch", batchID, "messages", n)
		}
		return max(n, 0), nil
	}
	if err := p.queue.Release(ctx, w, batchID); err != nil {
		return 0, err
	}
	p.cfg.Logger.Info("released a dead worker's batch that had committed", "worker", w, "batch", batchID)
	return 0, nil
}

// endBatchSession ends the database session still working on a dead
// worker's batch, found by the application_name its transaction set (see
// batchTx). The worker's lease expired, so it is dead or frozen (SIGSTOP, a
// paused VM); a session stuck on a frozen client in the middle of a COPY is
// beyond every server-side timeout, and its locks would otherwise hold the
// batch's order ids and ledger row, and every batch sharing them, for good.
func (p *Pipeline) endBatchSession(ctx context.Context, worker, batchID string) {
	var ended int
	// The sessions are chosen first, in a materialized step: in one WHERE
	// clause PostgreSQL may call pg_terminate_backend before checking the name.
	if err := p.pg.QueryRow(ctx, `WITH s AS MATERIALIZED (
		SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid())
		SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM s`,
		p.batchSession(batchID)).Scan(&ended); err != nil {
		p.cfg.Logger.Warn("could not end a dead worker's database session", "worker", worker, "batch", batchID, "err", err)
		return
	}
	if ended > 0 {
		p.cfg.Logger.Warn("ended the database session of a dead worker's batch", "worker", worker, "batch", batchID)
	}
}
