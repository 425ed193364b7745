package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/pgserver"
	"github.com/redpg/redpg/internal/views"
)

// Stats is a point-in-time picture of the pipeline, as `redpg stats` shows.
type Stats struct {
	QueueDepth       int64            `json:"queue_depth"`
	Quarantined      int64            `json:"quarantined"`
	Processing       int64            `json:"processing"`
	Workers          int64            `json:"workers"`
	DedupWindowSize  int64            `json:"dedup_window_size"`
	LookupCacheSize  int64            `json:"lookup_cache_size"`
	StagingRows      int64            `json:"staging_rows"`
	ProductionRows   int64            `json:"production_rows"`
	RejectedRows     int64            `json:"rejected_rows"`
	Produced         int64            `json:"produced_total"`
	PromotedTotal    int64            `json:"promoted_total"`
	DuplicatesTotal  int64            `json:"duplicates_total"`
	RejectedTotal    int64            `json:"rejected_total"`
	Batches          int64            `json:"batches_total"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	Views            map[string]int64 `json:"materialized_views"`
	TakenAt          time.Time        `json:"taken_at"`
	// The primary's version and, on PostgreSQL 18, io_method.
	pgserver.Info
	// ReadReplica is the read server's lag behind the primary, when reads
	// go to a server of their own (DATABASE_READ_URL).
	ReadReplica *pgserver.Lag `json:"read_replica,omitempty"`
}

// Stats gathers the pipeline's counters from Redis and PostgreSQL.
func (p *Pipeline) Stats(ctx context.Context) (Stats, error) {
	s := Stats{TakenAt: time.Now().UTC()}
	q, err := p.queue.Snapshot(ctx)
	if err != nil {
		return s, err
	}
	s.QueueDepth, s.Processing, s.Produced, s.Workers, s.Quarantined = q.Depth, q.InFlight, q.Produced, q.Workers, q.Quarantined
	if s.DedupWindowSize, err = p.dedup.Size(ctx); err != nil {
		return s, err
	}
	if s.LookupCacheSize, err = p.lookups.Size(ctx); err != nil {
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

// Reconciliation accounts for every message ever produced.
type Reconciliation struct {
	Produced         int64            `json:"produced"`
	Promoted         int64            `json:"promoted"`
	Duplicates       int64            `json:"duplicates"`
	Rejected         int64            `json:"rejected"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	Queued           int64            `json:"queued"`
	InFlight         int64            `json:"in_flight"`
	Unaccounted      int64            `json:"unaccounted"`
	ProductionRows   int64            `json:"production_rows"`
	RetiredRows      int64            `json:"retired_rows"` // rows in partitions `redpg retention` dropped
	DeadLetters      int64            `json:"dead_letters"`
	Problems         []string         `json:"problems"`
}

// OK reports whether everything is accounted for.
func (r Reconciliation) OK() bool { return len(r.Problems) == 0 }

// String renders the reconciliation for people.
func (r Reconciliation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "produced     %d\n", r.Produced)
	fmt.Fprintf(&b, "promoted     %d\n", r.Promoted)
	fmt.Fprintf(&b, "duplicates   %d\n", r.Duplicates)
	fmt.Fprintf(&b, "rejected     %d\n", r.Rejected)
	for _, k := range slices.Sorted(maps.Keys(r.RejectedByReason)) {
		fmt.Fprintf(&b, "  %-24s %d\n", k, r.RejectedByReason[k])
	}
	fmt.Fprintf(&b, "queued       %d\n", r.Queued)
	fmt.Fprintf(&b, "in flight    %d\n", r.InFlight)
	fmt.Fprintf(&b, "unaccounted  %d\n", r.Unaccounted)
	if r.OK() {
		b.WriteString("OK: produced = promoted + duplicates + rejected + queued + in flight\n")
	}
	for _, p := range r.Problems {
		b.WriteString("PROBLEM: " + p + "\n")
	}
	return b.String()
}

// Reconcile checks produced = promoted + duplicates + rejected + queued +
// in flight, and that the ledger agrees with the orders and dead-letter
// tables. While workers run, a batch committing between the Redis and the
// PostgreSQL reading can make one reading disagree, so it retries a few
// times before reporting a problem.
func (p *Pipeline) Reconcile(ctx context.Context) (Reconciliation, error) {
	var r Reconciliation
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if r, err = p.reconcileOnce(ctx); err != nil || r.OK() {
			return r, err
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return r, ctx.Err()
		}
	}
	return r, nil
}

func (p *Pipeline) reconcileOnce(ctx context.Context) (Reconciliation, error) {
	var r Reconciliation
	q, err := p.queue.Snapshot(ctx)
	if err != nil {
		return r, err
	}
	r.Produced, r.Queued, r.InFlight = q.Produced, q.Depth+q.Quarantined, q.InFlight
	var c ledger.Counts
	t := p.cfg.Tables
	err = p.pg.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(sum(promoted),0), coalesce(sum(duplicates),0), coalesce(sum(rejected),0),
		(SELECT count(*) FROM %s), (SELECT count(*) FROM %s) FROM %s`, t.Orders(), t.Rejected(), t.Batches())).
		Scan(&c.Promoted, &c.Duplicates, &c.Rejected, &r.ProductionRows, &r.DeadLetters)
	if err != nil {
		return r, fmt.Errorf("read ledger: %w", err)
	}
	r.Promoted, r.Duplicates, r.Rejected = c.Promoted, c.Duplicates, c.Rejected
	if t.Partitioned {
		if r.RetiredRows, err = partition.RetiredRows(ctx, p.pg, t); err != nil {
			return r, fmt.Errorf("read retired partitions: %w", err)
		}
	}
	if r.RejectedByReason, err = dlq.CountByReason(ctx, p.pg, p.cfg.Tables); err != nil {
		return r, err
	}
	r.Unaccounted = r.Produced - (r.Promoted + r.Duplicates + r.Rejected + r.Queued + r.InFlight)
	if r.Unaccounted != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages unaccounted for (negative: counted twice)", r.Unaccounted))
	}
	if r.Promoted != r.ProductionRows+r.RetiredRows {
		r.Problems = append(r.Problems, fmt.Sprintf("ledger says %d promoted but orders holds %d rows (and retention dropped %d)", r.Promoted, r.ProductionRows, r.RetiredRows))
	}
	if r.Rejected != r.DeadLetters {
		r.Problems = append(r.Problems, fmt.Sprintf("ledger says %d rejected but orders_rejected holds %d rows", r.Rejected, r.DeadLetters))
	}
	return r, nil
}
