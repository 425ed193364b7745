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

// LookupVersion holds the version of the current lookup snapshot.
func (s Space) LookupVersion() string { return s.Prefix + "lookups:version" }

// LookupRebuild is a short-lived lock taken by the one process that
// republishes a snapshot found missing or broken, so that workers finding
// it so at the same moment do not all publish.
func (s Space) LookupRebuild() string { return s.Prefix + "lookups:rebuild" }

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
