package transform_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/transform"
)

// benchSnapshot is a small lookup snapshot like the seeded tables.
func benchSnapshot() *lookup.Snapshot {
	return &lookup.Snapshot{
		Version: 1,
		Products: map[string]lookup.Product{
			"PROD-001": {Name: "Wireless Mouse", Category: "Electronics", BasePriceCents: 2499},
			"PROD-002": {Name: "Mechanical Keyboard", Category: "Electronics", BasePriceCents: 8999},
			"PROD-015": {Name: "Science Fiction Novel", Category: "Books", BasePriceCents: 1299},
		},
		Currencies: map[string]float64{"USD": 1, "EUR": 0.92, "JPY": 149.5},
		Zips: map[string]lookup.Zip{
			"10001": {City: "New York", State: "NY", Country: "US", Zone: "Zone-1"},
			"94105": {City: "San Francisco", State: "CA", Country: "US", Zone: "Zone-4"},
		},
	}
}

// benchOrders decodes n generated orders drawn from snap.
func benchOrders(b *testing.B, snap *lookup.Snapshot, n int) []order.Order {
	b.Helper()
	cat := generate.Catalog{Products: map[string]int64{}, Currencies: snap.Currencies}
	for id, p := range snap.Products {
		cat.Products[id] = p.BasePriceCents
	}
	for z := range snap.Zips {
		cat.Zips = append(cat.Zips, z)
	}
	g, err := generate.New(cat, generate.Config{Seed: 7, RunID: "bench0"})
	require.NoError(b, err)
	out := make([]order.Order, n)
	for i := range out {
		out[i], err = order.Decode(g.Next())
		require.NoError(b, err)
	}
	return out
}

// BenchmarkApply enriches a batch of 5000 orders, raw_data included.
func BenchmarkApply(b *testing.B) {
	snap := benchSnapshot()
	orders := benchOrders(b, snap, 5000)
	b.ReportAllocs()
	for b.Loop() {
		rows := transform.Apply(orders, snap)
		require.Len(b, rows, len(orders))
	}
	b.ReportMetric(float64(b.N*len(orders))/b.Elapsed().Seconds(), "orders/s")
}
