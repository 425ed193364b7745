package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/pgserver"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/views"
	"github.com/redpg/redpg/internal/window"
)

// Stats is a point-in-time picture of the pipeline, as `redpg stats` shows.
type Stats struct {
	QueueDepth       int64                `json:"queue_depth"`
	Quarantined      int64                `json:"quarantined"`
	Processing       int64                `json:"processing"`
	Workers          int64                `json:"workers"`
	DedupWindowSize  int64                `json:"dedup_window_size"`
	LookupCacheSize  int64                `json:"lookup_cache_size"`
	StagingRows      int64                `json:"staging_rows"`
	ProductionRows   int64                `json:"production_rows"`
	RejectedRows     int64                `json:"rejected_rows"`
	Produced         int64                `json:"produced_total"`
	Arrived          int64                `json:"arrived_total"`
	Claimed          int64                `json:"claimed_total"`
	PromotedTotal    int64                `json:"promoted_total"`
	DuplicatesTotal  int64                `json:"duplicates_total"`
	RejectedTotal    int64                `json:"rejected_total"`
	Batches          int64                `json:"batches_total"`
	RejectedByReason map[string]int64     `json:"rejected_by_reason"`
	Views            map[string]int64     `json:"materialized_views"`
	WorkerList       []queue.WorkerStatus `json:"workers_alive"`
	TakenAt          time.Time            `json:"taken_at"`
	// The primary's version and, on PostgreSQL 18, io_method.
	pgserver.Info
	// ReadReplica is the read server's lag behind the primary, when reads
	// go to a server of their own (DATABASE_READ_URL).
	ReadReplica *pgserver.Lag `json:"read_replica,omitempty"`

	// Windows are the live order windows (last 1, 5 and 60 minutes by
	// order time), from Redis.
	Windows []window.Figure `json:"windows"`
	// ProducersWaiting is how many producers wait for room in the queue
	// now; ProducerWaitSeconds is how long all producers have waited.
	ProducersWaiting    int64   `json:"producers_waiting"`
	ProducerWaitSeconds float64 `json:"producer_wait_seconds"`
	// WindowSize and WindowBuckets are the entries of the windows' sorted
	// set and revenue hash; LookupKeys counts the lookup snapshot keys of
	// every version still in Redis. With the de-dup window they are the
	// Redis structures that grow with traffic, each bounded by a trim or a
	// TTL.
	WindowSize    int64 `json:"window_size"`
	WindowBuckets int64 `json:"window_revenue_buckets"`
	LookupVersion int64 `json:"lookup_version"`
	LookupKeys    int64 `json:"lookup_keys"`
	// Leader names the `redpg serve` process refreshing views and
	// republishing lookups ("" when none runs).
	Leader string `json:"leader"`
}

// Stats gathers the pipeline's counters from Redis and PostgreSQL.
func (p *Pipeline) Stats(ctx context.Context) (Stats, error) {
	s := Stats{TakenAt: time.Now().UTC()}
	q, err := p.queue.Snapshot(ctx)
	if err != nil {
		return s, err
	}
	s.QueueDepth, s.Processing, s.Produced, s.Workers, s.Quarantined = q.Depth, q.InFlight(), q.Produced, q.Workers, q.Quarantined
	s.Arrived, s.Claimed = q.Arrived(), q.Claimed
	if s.WorkerList, err = p.queue.WorkerList(ctx); err != nil {
		return s, err
	}
	if s.DedupWindowSize, err = p.dedup.Size(ctx); err != nil {
		return s, err
	}
	if s.LookupCacheSize, err = p.lookups.Size(ctx); err != nil {
		return s, err
	}
	if err := p.redisStats(ctx, &s); err != nil {
		return s, err
	}
	t := p.cfg.Tables
	// Staging is UNLOGGED, which a replica cannot read; it is tiny anyway.
	if err := p.pg.QueryRow(ctx, "SELECT count(*) FROM "+t.Staging()).Scan(&s.StagingRows); err != nil {
		return s, fmt.Errorf("count staging: %w", err)
	}
	if s.Info, err = pgserver.Read(ctx, p.pg); err != nil {
		return s, err
	}
	rd := p.cfg.Reader
	if rd != p.pg {
		lag, err := pgserver.ReplicaLag(ctx, p.pg, rd)
		if err != nil {
			return s, err
		}
		s.ReadReplica = &lag
	}
	err = rd.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %s), (SELECT count(*) FROM %s),
		(SELECT count(*) FROM %s), coalesce((SELECT sum(promoted) FROM %[3]s), 0),
		coalesce((SELECT sum(duplicates) FROM %[3]s), 0), coalesce((SELECT sum(rejected) FROM %[3]s), 0)`,
		t.Orders(), t.Rejected(), t.Batches())).
		Scan(&s.ProductionRows, &s.RejectedRows, &s.Batches, &s.PromotedTotal, &s.DuplicatesTotal, &s.RejectedTotal)
	if err != nil {
		return s, fmt.Errorf("count tables: %w", err)
	}
	if s.RejectedByReason, err = dlq.CountByReason(ctx, rd, p.cfg.Tables); err != nil {
		return s, err
	}
	if s.Views, err = views.Counts(ctx, rd, t); err != nil {
		return s, err
	}
	return s, nil
}

// redisStats reads the live windows, backpressure and the sizes of the
// Redis structures that grow with traffic.
func (p *Pipeline) redisStats(ctx context.Context, s *Stats) error {
	var err error
	if s.Windows, err = p.windows.Read(ctx); err != nil {
		return err
	}
	sz, err := p.windows.Sizes(ctx)
	if err != nil {
		return err
	}
	s.WindowSize, s.WindowBuckets = sz.Members, sz.Buckets
	bp, err := p.queue.Backpressure(ctx)
	if err != nil {
		return err
	}
	s.ProducersWaiting, s.ProducerWaitSeconds = bp.Waiting, bp.Waited.Seconds()
	k := p.cfg.Keys
	if v, err := p.rdb.Get(ctx, k.LookupVersion()).Int64(); err == nil {
		s.LookupVersion = v
	}
	if leader, err := p.rdb.Get(ctx, k.Leader()).Result(); err == nil {
		s.Leader = leader
	}
	iter := p.rdb.Scan(ctx, 0, k.LookupsPattern(), 1000).Iterator()
	for iter.Next(ctx) {
		s.LookupKeys++
	}
	return iter.Err()
}
