//go:build chaos

package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
)

// generated is a stream of orders pushed onto the queue, kept so that the
// test can compute, independently of the pipeline, what must end in orders.
type generated struct {
	msgs   [][]byte
	counts generate.Counts
}

// generateOrders makes n orders with the given fractions of duplicates and
// invalid orders from p's lookup snapshot, pushes them, and returns them.
func generateOrders(t testing.TB, p *pipeline.Pipeline, n int, dups, invalid float64, seed uint64) generated {
	t.Helper()
	ctx := context.Background()
	cat, err := p.Catalog(ctx)
	require.NoError(t, err)
	g := generateStream(t, cat, n, dups, invalid, seed)
	require.NoError(t, p.Push(ctx, g.msgs, nil))
	return g
}

// generateStream makes n orders from cat without pushing them.
func generateStream(t testing.TB, cat generate.Catalog, n int, dups, invalid float64, seed uint64) generated {
	t.Helper()
	g, err := generate.New(cat, generate.Config{Duplicates: dups, Invalid: invalid, Seed: seed})
	require.NoError(t, err)
	msgs := g.Batch(n)
	return generated{msgs: msgs, counts: g.Counts()}
}

// expectedIDs is the test's own oracle: the order ids among msgs that must
// end in orders, judged by decoding each message and checking it against the
// lookup snapshot and the documented rules (quantity 1-1000, positive price,
// timestamp at most a day ahead), not by running the pipeline's code.
func expectedIDs(t testing.TB, msgs [][]byte, snap *lookup.Snapshot) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	horizon := time.Now().Add(24 * time.Hour)
	for _, raw := range msgs {
		o, err := order.Decode(raw)
		if err != nil {
			continue
		}
		_, product := snap.Products[o.ProductID]
		_, currency := snap.Currencies[o.Currency]
		_, zip := snap.Zips[o.ZipCode]
		if product && currency && zip && o.Quantity >= 1 && o.Quantity <= 1000 &&
			o.UnitPriceCents > 0 && o.OrderTimestamp.Before(horizon) {
			ids[o.OrderID] = true
		}
	}
	return ids
}
