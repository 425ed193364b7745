package generate

import "testing"

// BenchmarkNext measures producing one valid message, the producer's cost
// per order before LPUSH.
func BenchmarkNext(b *testing.B) {
	cat := Catalog{Products: map[string]int64{"PROD-001": 2499, "PROD-002": 8999}, Currencies: map[string]float64{"USD": 1, "JPY": 149.5},
		Zips: []string{"10001", "94105"}}
	g, err := New(cat, Config{Seed: 1, RunID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Next()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
