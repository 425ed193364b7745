package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/views"
)

// Catalog returns what the generator should draw from: the lookup snapshot.
func (p *Pipeline) Catalog(ctx context.Context) (generate.Catalog, error) {
	snap, err := p.lookups.Current(ctx)
	if err != nil {
		return generate.Catalog{}, err
	}
	cat := generate.Catalog{Products: map[string]int64{}, Currencies: snap.FloatRates()}
	for id, prod := range snap.Products {
		cat.Products[id] = prod.BasePriceCents
	}
	for zip := range snap.Zips {
		cat.Zips = append(cat.Zips, zip)
	}
	return cat, nil
}

// Progress is told how far a long operation is: done of total, and the
// queue depth when the producer is waiting for room (0 otherwise).
type Progress func(done, total int, waitingAtDepth int64)

// Generate produces n synthetic orders and enqueues them, waiting under
// backpressure and never dropping one. Orders are queued in the order they
// are generated; the next chunk is generated while the last one is pushed
// (generate.Produce). progress is called from the caller's goroutine.
func (p *Pipeline) Generate(ctx context.Context, n int, cfg generate.Config, progress Progress) (generate.Counts, error) {
	cat, err := p.Catalog(ctx)
	if err != nil {
		return generate.Counts{}, err
	}
	g, err := generate.New(cat, cfg)
	if err != nil {
		return generate.Counts{}, err
	}
	const chunk = 5000
	done := 0
	c, err := generate.Produce(ctx, g, n, chunk, func(ctx context.Context, batch [][]byte) error {
		if err := p.Push(ctx, batch, func(depth int64) {
			if progress != nil {
				progress(done, n, depth)
			}
		}); err != nil {
			return err
		}
		done += len(batch)
		if progress != nil {
			progress(done, n, 0)
		}
		return nil
	})
	if err == nil {
		// A listener (the view refresher) can act now rather than wait.
		_ = p.Announce(ctx, EventGenerateDone)
	}
	return c, err
}

// Push enqueues raw messages (already JSON) with backpressure, once the
// deployment's Redis account is bound to this database (see Bind).
func (p *Pipeline) Push(ctx context.Context, msgs [][]byte, onWait queue.WaitFunc) error {
	if err := p.Bind(ctx); err != nil {
		return err
	}
	return p.queue.Push(ctx, msgs, onWait)
}

// InitCache publishes the named lookup tables (all when none) to Redis.
func (p *Pipeline) InitCache(ctx context.Context, tables ...string) (int64, error) {
	return p.lookups.Publish(ctx, tables...)
}

// Promote refreshes the materialized views concurrently with readers: the
// seed's separate promotion step. Workers promote every batch in the
// transaction that stages it, and staging rows never outlive that
// transaction, so nothing else is left to promote.
func (p *Pipeline) Promote(ctx context.Context) error {
	return p.RefreshViews(ctx)
}

// RefreshViews refreshes the materialized views concurrently with readers.
func (p *Pipeline) RefreshViews(ctx context.Context) error {
	return views.Refresh(ctx, p.pg, p.cfg.Tables)
}

// ClearOptions selects what Clear removes.
type ClearOptions struct {
	Cache   bool // the lookup snapshot
	Dedup   bool // the de-duplication window
	Queue   bool // queued and in-flight messages
	Account bool // the Redis account: start it over in a new, acknowledged epoch
	All     bool // every key of the deployment in Redis and every pipeline row in PostgreSQL
}

// Clear removes what opts selects. Lookup tables in PostgreSQL are never
// touched, nor any Redis key outside the deployment's namespace (see
// keys.Space) and its queue: another deployment sharing the Redis, or the
// Python reference's own keys, cannot be hit whatever the prefixes.
func (p *Pipeline) Clear(ctx context.Context, opts ClearOptions) error {
	k := p.cfg.Keys
	if opts.All || opts.Queue {
		if err := p.RequireNoLiveWorkers(ctx, "clearing the queue"); err != nil {
			return err
		}
	}
	if opts.All {
		// Purge first: it empties the queue and keeps the reference's depth
		// counters truthful, and what it counts goes with the namespace.
		if _, err := p.queue.Purge(ctx); err != nil {
			return err
		}
		if err := p.unlinkMatching(ctx, k.Pattern()); err != nil {
			return err
		}
		t := p.cfg.Tables
		tables := fmt.Sprintf("%s, %s, %s, %s, %s", t.Orders(), t.Staging(), t.Rejected(), t.Batches(), t.Epochs())
		if t.Partitioned {
			// The ledger goes, so do the ids and counts that balance it.
			tables += ", " + t.OrderIDs() + ", " + pgx.Identifier{t.Schema, partition.RetiredTable}.Sanitize()
		}
		if _, err := p.pg.Exec(ctx, "TRUNCATE "+tables); err != nil {
			return fmt.Errorf("truncate pipeline tables: %w", err)
		}
		p.bound.Store(false)
		return p.RefreshViews(ctx)
	}
	var errs []error
	if opts.Cache {
		errs = append(errs, p.unlinkMatching(ctx, k.LookupsPattern()))
	}
	if opts.Dedup {
		errs = append(errs, p.dedup.Clear(ctx))
	}
	if opts.Queue {
		_, err := p.queue.Purge(ctx)
		errs = append(errs, err)
	}
	if opts.Account {
		errs = append(errs, p.ResetAccount(ctx))
	}
	return errors.Join(errs...)
}

// unlinkMatching deletes every key matching pattern, on every master of a
// cluster.
func (p *Pipeline) unlinkMatching(ctx context.Context, pattern string) error {
	return redisconn.UnlinkMatching(ctx, p.rdb, pattern)
}

// EnsurePartitions creates the monthly partitions of a partitioned orders
// that the next partition.DefaultAhead months will need, and returns the
// ones it created. It does nothing when orders is not partitioned.
func (p *Pipeline) EnsurePartitions(ctx context.Context, now time.Time) ([]string, error) {
	if !p.cfg.Tables.Partitioned {
		return nil, nil
	}
	return partition.Ensure(ctx, p.pg, p.cfg.Tables, now, partition.DefaultAhead)
}

// partitionLoop keeps partitions created ahead while workers run: at once,
// then every partition.EnsureEvery. A failure (the lock not granted in
// time, say) is logged and tried again at the next tick, months before a
// partition is due.
func (p *Pipeline) partitionLoop(ctx context.Context) {
	for {
		created, err := p.EnsurePartitions(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			p.cfg.Logger.Warn("could not create orders partitions ahead; will retry", "err", err, "in", partition.EnsureEvery)
		}
		if len(created) > 0 {
			p.cfg.Logger.Info("created orders partitions", "partitions", created)
		}
		if !sleep(ctx, partition.EnsureEvery) {
			return
		}
	}
}

// ErrWorkersRunning means an operation that must not run beside workers
// found live leases.
var ErrWorkersRunning = errors.New("workers are running")

// RequireNoLiveWorkers refuses what must not run beside workers: emptying
// the queue under a worker that then commits its batch counts it both
// promoted and discarded, and converting orders under one leaves it
// writing without the partitioned path. Workers whose lease expired are
// dead and do not count.
func (p *Pipeline) RequireNoLiveWorkers(ctx context.Context, what string) error {
	n, err := p.queue.Workers(ctx)
	if err != nil {
		return err
	}
	dead, err := p.queue.Expired(ctx, 0)
	if err != nil {
		return err
	}
	if live := n - int64(len(dead)); live > 0 {
		return fmt.Errorf("%w: %d workers hold live leases in Redis keys %s*; stop them (or wait %s for their leases to expire) before %s",
			ErrWorkersRunning, live, p.cfg.Keys.Namespace(), p.cfg.Lease, what)
	}
	return nil
}
