package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/queue"
)

// Reconciliation accounts for every message that ever reached the queue.
//
// It is one atomic reading of Redis followed by one snapshot of
// PostgreSQL, matched batch by batch rather than total against total: the
// committed batches counted are exactly those claimed before the Redis
// reading (their claim mark is no greater than the claimed count read), and
// a batch that was in flight at the Redis reading counts as in flight only
// if the ledger has not committed it since. So the figures are exact while
// workers run, and a batch that left Redis without its ledger row shows as
// unaccounted in every reading, never balanced away by a retry.
type Reconciliation struct {
	// Arrived is every message that entered the queue, from any producer.
	Arrived int64 `json:"arrived"`
	// Produced is what redpg's own producers counted; OtherProducers is the
	// rest (the Python reference's producers, a bare LPUSH), which is not a
	// fault.
	Produced       int64 `json:"produced"`
	OtherProducers int64 `json:"other_producers"`
	// Claimed counts messages taken into batches, Returned those taken back
	// out of unfinished batches (requeued, purged), Discarded those removed
	// by `clear --queue`.
	Claimed   int64 `json:"claimed"`
	Returned  int64 `json:"returned"`
	Discarded int64 `json:"discarded"`
	// Promoted, Duplicates and Rejected sum the committed batches the Redis
	// reading covers, plus what `dlq replay` did since (its rows move
	// letters from rejected to promoted or duplicates).
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
	fmt.Fprintf(&b, "arrived      %d\n", r.Arrived)
	fmt.Fprintf(&b, "  from redpg producers   %d\n", r.Produced)
	fmt.Fprintf(&b, "  from other producers   %d\n", r.OtherProducers)
	fmt.Fprintf(&b, "promoted     %d\n", r.Promoted)
	fmt.Fprintf(&b, "duplicates   %d\n", r.Duplicates)
	fmt.Fprintf(&b, "rejected     %d\n", r.Rejected)
	for _, k := range slices.Sorted(maps.Keys(r.RejectedByReason)) {
		fmt.Fprintf(&b, "  %-24s %d\n", k, r.RejectedByReason[k])
	}
	fmt.Fprintf(&b, "queued       %d\n", r.Queued)
	fmt.Fprintf(&b, "in flight    %d\n", r.InFlight)
	if r.Discarded > 0 {
		fmt.Fprintf(&b, "discarded    %d (by clear --queue)\n", r.Discarded)
	}
	fmt.Fprintf(&b, "unaccounted  %d\n", r.Unaccounted)
	if r.OK() {
		b.WriteString("OK: arrived = promoted + duplicates + rejected + queued + in flight + discarded\n")
	}
	for _, p := range r.Problems {
		b.WriteString("PROBLEM: " + p + "\n")
	}
	return b.String()
}

// Reconcile balances the Redis account against the ledger (see
// Reconciliation) and checks that the ledger agrees with the orders and
// dead-letter tables.
func (p *Pipeline) Reconcile(ctx context.Context) (Reconciliation, error) {
	var r Reconciliation
	q, err := p.queue.Snapshot(ctx)
	if err != nil {
		return r, err
	}
	r.Produced, r.Arrived = q.Produced, q.Arrived()
	r.OtherProducers = r.Arrived - r.Produced
	r.Claimed, r.Returned, r.Discarded = q.Claimed, q.Returned, q.Discarded
	r.Queued = q.Depth + q.Quarantined
	led, err := p.readLedger(ctx, q)
	if err != nil {
		return r, err
	}
	r.Promoted = led.covered.Promoted + led.replayed.Promoted
	r.Duplicates = led.covered.Duplicates + led.replayed.Duplicates
	r.Rejected = led.covered.Rejected + led.replayed.Rejected
	r.ProductionRows, r.DeadLetters = led.orders, led.letters
	for _, b := range q.Batches {
		if !led.committed[b.ID] {
			r.InFlight += b.Size
		}
	}
	if r.RejectedByReason, err = dlq.CountByReason(ctx, p.pg, p.cfg.Tables); err != nil {
		return r, err
	}
	r.Unaccounted = (r.Claimed - r.Returned) - (led.covered.Received + r.InFlight)
	if r.Unaccounted != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf(
			"%d claimed messages are neither in a committed batch nor in flight (negative: counted twice)", r.Unaccounted))
	}
	if r.OtherProducers < 0 {
		r.Problems = append(r.Problems, fmt.Sprintf(
			"%d messages counted by redpg's producers never reached a worker (removed from the queue behind redpg's back, or evicted)", -r.OtherProducers))
	}
	r.RetiredRows = led.retired
	if led.allPromoted != r.ProductionRows+r.RetiredRows {
		r.Problems = append(r.Problems, fmt.Sprintf("ledger says %d promoted but orders holds %d rows (and retention dropped %d)",
			led.allPromoted, r.ProductionRows, r.RetiredRows))
	}
	if led.allRejected != r.DeadLetters {
		r.Problems = append(r.Problems, fmt.Sprintf("ledger says %d rejected but orders_rejected holds %d rows", led.allRejected, r.DeadLetters))
	}
	foreign := q.Database != "" && led.database != q.Database
	if foreign {
		r.Problems = append(r.Problems, mismatchMessage(p.cfg.Keys.Namespace(), q.Database, led.database))
	}
	if q.Epoch != "" && !led.epochKnown && !foreign {
		r.Problems = append(r.Problems, fmt.Sprintf("the Redis account (epoch %s) was started without redpg: Redis lost its data "+
			"(restarted without persistence, flushed, evicted?), so what was queued or in flight then is not accounted for; "+
			"once dealt with, stop the workers and run `redpg clear --account`", q.Epoch))
	}
	return r, nil
}

// ledgerReading is one snapshot of the ledger and the tables it describes.
type ledgerReading struct {
	covered     ledger.Counts   // committed batches claimed before the Redis reading
	replayed    ledger.Counts   // dlq replays
	committed   map[string]bool // which of the batches in flight at that reading have committed since
	allPromoted int64           // every row's promoted, replays included
	allRejected int64
	orders      int64
	letters     int64
	database    string
	epochKnown  bool  // the account's epoch was started by redpg, knowingly
	retired     int64 // rows in partitions `redpg retention` dropped
}

func (p *Pipeline) readLedger(ctx context.Context, q queue.Snapshot) (ledgerReading, error) {
	t := p.cfg.Tables
	ids := make([]string, 0, len(q.Batches))
	for _, b := range q.Batches {
		ids = append(ids, b.ID)
	}
	var l ledgerReading
	var done []string
	err := p.pg.QueryRow(ctx, fmt.Sprintf(`SELECT
		coalesce(sum(received) FILTER (WHERE c), 0), coalesce(sum(promoted) FILTER (WHERE c), 0),
		coalesce(sum(duplicates) FILTER (WHERE c), 0), coalesce(sum(rejected) FILTER (WHERE c), 0),
		coalesce(array_agg(batch_id) FILTER (WHERE status = 'committed' AND batch_id = ANY($2)), '{}'),
		coalesce(sum(promoted) FILTER (WHERE status = 'replay'), 0), coalesce(sum(duplicates) FILTER (WHERE status = 'replay'), 0),
		coalesce(sum(rejected) FILTER (WHERE status = 'replay'), 0),
		coalesce(sum(promoted), 0), coalesce(sum(rejected), 0),
		(SELECT count(*) FROM %s), (SELECT count(*) FROM %s),
		(SELECT id::text FROM %s),
		coalesce((SELECT acknowledged FROM %s WHERE epoch = $3), false),
		%s
		FROM (SELECT *, status = 'committed' AND claim_epoch = $3 AND claim_mark <= $1 AS c FROM %s) b`,
		t.Orders(), t.Rejected(), t.Deployment(), t.Epochs(), partition.RetiredRowsSQL(t), t.Batches()), q.Claimed, ids, q.Epoch).
		Scan(&l.covered.Received, &l.covered.Promoted, &l.covered.Duplicates, &l.covered.Rejected,
			&done, &l.replayed.Promoted, &l.replayed.Duplicates, &l.replayed.Rejected, &l.allPromoted, &l.allRejected, &l.orders, &l.letters, &l.database, &l.epochKnown, &l.retired)
	if err != nil {
		return l, fmt.Errorf("read ledger: %w", err)
	}
	l.committed = make(map[string]bool, len(done))
	for _, id := range done {
		l.committed[id] = true
	}
	return l, nil
}
