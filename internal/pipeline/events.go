package pipeline

import "context"

// Messages on the events channel (keys.Space.Events). Every message wakes
// idle workers; the view refresher of `redpg serve` acts on EventPromoted
// and on a producer's end, the workers log EventLookups.
const (
	// EventQueued: a producer or the reaper put messages on the queue.
	EventQueued = "queued"
	// EventPromoted: a batch committed (the ledger decided it).
	EventPromoted = "promoted"
	// EventGenerateDone: `redpg generate` queued its last order.
	EventGenerateDone = "done:generate"
	// EventIngestDone: `redpg ingest` queued its last record.
	EventIngestDone = "done:ingest"
	// EventLookupsPrefix precedes the version of a lookup snapshot that was
	// republished because a lookup table changed: "lookups:<version>".
	EventLookupsPrefix = "lookups:"
)

// Announce publishes msg on the events channel. Pub/sub is fire-and-forget:
// listeners that must not miss a change also poll, slowly.
func (p *Pipeline) Announce(ctx context.Context, msg string) error {
	return p.rdb.Publish(ctx, p.cfg.Keys.Events(), msg).Err()
}
