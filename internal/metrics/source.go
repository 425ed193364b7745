package metrics

import (
	"context"

	"github.com/redpg/redpg/internal/pipeline"
)

// FromPipeline reads Gauges from p's Redis state: one atomic reading of the
// queue's counters, two cardinalities and one reading of the live windows
// (a script bounded by the longest window's seconds), no PostgreSQL query,
// so frequent scrapes stay cheap.
func FromPipeline(p *pipeline.Pipeline) func(context.Context) (Gauges, error) {
	return func(ctx context.Context) (Gauges, error) {
		var g Gauges
		q, err := p.Queue().Snapshot(ctx)
		if err != nil {
			return g, err
		}
		g.QueueDepth, g.InFlight, g.Quarantined, g.Workers, g.Produced = q.Depth, q.InFlight(), q.Quarantined, q.Workers, q.Produced
		if g.DedupWindow, err = p.Dedup().Size(ctx); err != nil {
			return g, err
		}
		if g.LookupCache, err = p.Lookups().Size(ctx); err != nil {
			return g, err
		}
		figures, err := p.Windows().Read(ctx)
		if err != nil {
			return g, err
		}
		g.Windows = make(map[string]int64, len(figures))
		for _, f := range figures {
			g.Windows[f.Span] = f.Orders
		}
		return g, nil
	}
}
