// Package keys builds every Redis key redpg uses, in one place.
//
// A deployment is named by its ingestion queue. The queue keeps the plain
// name producers push to — "orders:ingestion" by default, which is the
// Python reference's key, so its producers feed redpg unchanged — and every
// other key of the deployment lives under
//
//	redpg:{<queue>}:
//
// The braces are a Redis Cluster hash tag: every key of a deployment,
// including the queue itself (a key without braces hashes whole, and
// "orders:ingestion" hashes exactly like the tag "{orders:ingestion}"), falls
// into one slot, so a Lua script or MULTI touching several of them can
// never fail with CROSSSLOT. The closing brace also ends the namespace:
// because a queue name may not contain braces, no deployment's namespace
// can be a prefix of another's ("orders:eu" and "orders:eu:x" give
// "redpg:{orders:eu}:" and "redpg:{orders:eu:x}:"), so clearing one can
// never touch another. Nothing lives under the reference's own keys
// (orders:dedup, orders:processing, lookups …), so the two can share a Redis.
package keys

import (
	"strconv"
	"strings"
)

// DefaultQueue is the queue of a deployment with no key prefix: the key the
// Python reference's producers push to.
const DefaultQueue = "orders:ingestion"

// Space is one deployment's key namespace. The zero value is the default
// deployment.
type Space struct {
	// Prefix is prepended to the queue name, for tenants and tests:
	// "eu:" gives the queue "eu:orders:ingestion". It may not contain
	// braces (the hash tag is derived from it) or glob characters.
	Prefix string
}

// Queue is the ingestion list: producers LPUSH, workers take from the tail.
func (s Space) Queue() string { return s.Prefix + DefaultQueue }

// Tag is the deployment's Redis Cluster hash tag, braces included.
func (s Space) Tag() string { return "{" + s.Queue() + "}" }

// Namespace is what every key of the deployment except the queue starts
// with.
func (s Space) Namespace() string { return "redpg:" + s.Tag() + ":" }

func (s Space) key(parts ...string) string { return s.Namespace() + strings.Join(parts, ":") }

// Processing is the list holding the batch a worker has claimed but not yet
// acknowledged.
func (s Space) Processing(worker string) string { return s.key("processing", worker) }

// Inflight is the hash describing a worker's claimed batch (batch_id,
// attempts, quarantine, mark).
func (s Space) Inflight(worker string) string { return s.key("inflight", worker) }

// Quarantine holds messages requeued too often: each killed the worker that
// held it, so they are dead-lettered without being decoded again.
func (s Space) Quarantine() string { return s.key("quarantine") }

// Workers is the sorted set of worker ids scored by lease deadline (unix ms
// on the Redis server's clock).
func (s Space) Workers() string { return s.key("workers") }

// WorkerInfo is the hash of what each worker says about itself (version,
// host, pid), keyed by worker id.
func (s Space) WorkerInfo() string { return s.key("workers", "info") }

// Dedup is the sorted set of promoted order ids scored by when they were
// seen (unix ms): a sliding de-duplication window per id.
func (s Space) Dedup() string { return s.key("dedup") }

// Produced counts the messages redpg's own producers enqueued.
func (s Space) Produced() string { return s.key("stats", "produced") }

// Account is the hash of counters that reconciliation balances: claimed,
// returned and discarded messages, and the database the counters belong
// to (see internal/queue for who writes which field).
func (s Space) Account() string { return s.key("account") }

// Events is the pub/sub channel on which producers announce new work and
// workers announce promotions, so nobody polls on a timer.
func (s Space) Events() string { return s.key("events") }

// Window is the sorted set of promoted order ids scored by order time
// (unix ms): the live 1/5/60-minute windows count its members by score.
// Keyed by order id, so a redelivered batch is never counted twice.
func (s Space) Window() string { return s.key("window") }

// WindowRevenue is the hash of unix second → USD cents promoted with an
// order time in that second, summed for the windows' revenue.
func (s Space) WindowRevenue() string { return s.key("window", "revenue") }

// Promotions counts batches that promoted at least one order: a view
// refresher compares it with the value it last refreshed at, so it refreshes
// only when something changed even if a pub/sub notice was lost.
func (s Space) Promotions() string { return s.key("stats", "promotions") }

// ProducersWaiting is the sorted set of producers waiting for room in the
// queue, scored by when their wait notice expires (unix ms).
func (s Space) ProducersWaiting() string { return s.key("producers", "waiting") }

// ProducerWaitMs totals the milliseconds producers spent waiting for room.
func (s Space) ProducerWaitMs() string { return s.key("stats", "producer_wait_ms") }

// Leader names the process holding the single-actor roles of `redpg serve`
// (view refresh, lookup republish); informational, with a TTL. The lock
// itself is a PostgreSQL advisory lock.
func (s Space) Leader() string { return s.key("leader") }

// LookupVersion holds the version of the current lookup snapshot.
func (s Space) LookupVersion() string { return s.key("lookups", "version") }

// LookupRebuild is a short-lived lock taken by the one process that
// republishes a snapshot found missing or broken, so that workers finding
// it so at the same moment do not all publish.
func (s Space) LookupRebuild() string { return s.key("lookups", "rebuild") }

// Lookup is the hash holding one lookup table (products, currencies,
// zipcodes) of snapshot version v.
func (s Space) Lookup(v int64, table string) string {
	return s.key("lookups", strconv.FormatInt(v, 10), table)
}

// Lock is a short-lived mutex named name, held by one process at a time.
func (s Space) Lock(name string) string { return s.key("lock", name) }

// Pattern is the SCAN pattern matching every key of the deployment except
// the queue itself (clear it by name).
func (s Space) Pattern() string { return escapeGlob(s.Namespace()) + "*" }

// LookupsPattern is the SCAN pattern matching every lookup snapshot key.
func (s Space) LookupsPattern() string { return escapeGlob(s.key("lookups")) + ":*" }

// ReferenceCounters are the depth counters the Python reference's producers
// INCRBY for every order they queue and expect its consumer to decrement:
// "<queue>:counter" and "backpressure:ingestion". They belong to the
// reference; redpg only keeps them truthful when they exist.
func (s Space) ReferenceCounters() []string {
	return []string{s.Queue() + ":counter", s.Prefix + "backpressure:ingestion"}
}

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
