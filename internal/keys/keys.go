// Package keys builds every Redis key redpg uses, in one place, under a
// configurable prefix so that tenants and tests never collide.
//
// All keys start with "<prefix>orders:" or "<prefix>lookups:", which is what
// `redpg clear` scans for.
package keys

import "strconv"

// Space is a key namespace. The zero value uses no prefix.
type Space struct {
	// Prefix is prepended to every key, for example "tenant1:".
	Prefix string
}

// Queue is the ingestion list: producers LPUSH, workers take from the tail.
func (s Space) Queue() string { return s.Prefix + "orders:ingestion" }

// Processing is the list holding the batch a worker has claimed but not yet
// acknowledged.
func (s Space) Processing(worker string) string { return s.Prefix + "orders:processing:" + worker }

// Inflight is the hash describing a worker's claimed batch (batch_id, attempts).
func (s Space) Inflight(worker string) string { return s.Prefix + "orders:inflight:" + worker }

// Quarantine holds messages requeued too often: each killed the worker that
// held it, so they are dead-lettered without being decoded again.
func (s Space) Quarantine() string { return s.Prefix + "orders:quarantine" }

// Workers is the sorted set of worker ids scored by lease deadline (unix ms).
func (s Space) Workers() string { return s.Prefix + "orders:workers" }

// Dedup is the sorted set of promoted order ids scored by when they were
// seen (unix ms): a sliding de-duplication window per id.
func (s Space) Dedup() string { return s.Prefix + "orders:dedup" }

// Produced counts every message ever enqueued, for reconciliation.
func (s Space) Produced() string { return s.Prefix + "orders:stats:produced" }

// Events is the pub/sub channel on which producers announce new work and
// workers announce promotions, so nobody polls on a timer.
func (s Space) Events() string { return s.Prefix + "orders:events" }

// Window is the sorted set of promoted order ids scored by order time
// (unix ms): the live 1/5/60-minute windows count its members by score.
// Keyed by order id, so a redelivered batch is never counted twice.
func (s Space) Window() string { return s.Prefix + "orders:window" }

// WindowRevenue is the hash of unix second → USD cents promoted with an
// order time in that second, summed for the windows' revenue.
func (s Space) WindowRevenue() string { return s.Prefix + "orders:window:revenue" }

// Promotions counts batches that promoted at least one order: a view
// refresher compares it with the value it last refreshed at, so it refreshes
// only when something changed even if a pub/sub notice was lost.
func (s Space) Promotions() string { return s.Prefix + "orders:stats:promotions" }

// ProducersWaiting is the sorted set of producers waiting for room in the
// queue, scored by when their wait notice expires (unix ms).
func (s Space) ProducersWaiting() string { return s.Prefix + "orders:producers:waiting" }

// ProducerWaitMs totals the milliseconds producers spent waiting for room.
func (s Space) ProducerWaitMs() string { return s.Prefix + "orders:stats:producer_wait_ms" }

// Leader names the process holding the single-actor roles of `redpg serve`
// (view refresh, lookup republish); informational, with a TTL. The lock
// itself is a PostgreSQL advisory lock.
func (s Space) Leader() string { return s.Prefix + "orders:leader" }

// LookupVersion holds the version of the current lookup snapshot.
func (s Space) LookupVersion() string { return s.Prefix + "lookups:version" }

// Lookup is the hash holding one lookup table (products, currencies,
// zipcodes) of snapshot version v.
func (s Space) Lookup(v int64, table string) string {
	return s.Prefix + "lookups:" + strconv.FormatInt(v, 10) + ":" + table
}

// OrdersPattern is the SCAN pattern matching every pipeline key: queue,
// processing lists, leases, de-dup window and counters.
func (s Space) OrdersPattern() string { return escapeGlob(s.Prefix) + "orders:*" }

// LookupsPattern is the SCAN pattern matching every lookup snapshot key.
func (s Space) LookupsPattern() string { return escapeGlob(s.Prefix) + "lookups:*" }

func escapeGlob(p string) string {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, p[i])
	}
	return string(out)
}
