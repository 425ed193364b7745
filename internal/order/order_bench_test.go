package order_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/order"
)

// benchCatalog mirrors the seeded lookup tables closely enough for
// realistic messages.
func benchCatalog() generate.Catalog {
	return generate.Catalog{
		Products:   map[string]int64{"PROD-001": 2499, "PROD-002": 8999, "PROD-004": 24999, "PROD-015": 1299},
		Currencies: map[string]float64{"USD": 1, "EUR": 0.92, "JPY": 149.5, "INR": 83.2},
		Zips:       []string{"10001", "02108", "60601", "94105"},
	}
}

// benchPayloads returns n generated messages.
func benchPayloads(b *testing.B, n int) [][]byte {
	b.Helper()
	g, err := generate.New(benchCatalog(), generate.Config{Seed: 42, RunID: "bench0"})
	require.NoError(b, err)
	return g.Batch(n)
}

// BenchmarkDecode decodes generated, valid order messages.
func BenchmarkDecode(b *testing.B) {
	msgs := benchPayloads(b, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := order.Decode(msgs[i%len(msgs)]); err != nil {
			require.NoError(b, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkDecodeRejected decodes messages that are rejected, one of each
// kind the generator makes, so the error paths stay cheap too.
func BenchmarkDecodeRejected(b *testing.B) {
	msgs := [][]byte{
		[]byte(`{"order_id": "ORD-1", "customer_id": `),
		[]byte(`{"order_id":"ORD-2","quantity":"many"}`),
		[]byte(`{"order_id":"ORD-3","customer_id":"C","product_id":"P","quantity":1,"unit_price":"x","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`),
		[]byte(`{"order_id":"ORD-4","customer_id":"C","product_id":"P","quantity":{},"unit_price":"1","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, err := order.Decode(msgs[i%len(msgs)])
		require.Error(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
