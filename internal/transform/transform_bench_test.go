package transform_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/transform"
)

// benchSnapshot is a small lookup snapshot like the seeded tables.
func benchSnapshot() *lookup.Snapshot {
	return &lookup.Snapshot{
		Version: 1,
		Products: map[string]lookup.Product{
			"PROD-001": {Name: "Laptop Pro 15\"", Category: "Electronics", BasePriceCents: 129999},
			"PROD-002": {Name: "Wireless Mouse", Category: "Electronics", BasePriceCents: 2999},
			"PROD-015": {Name: "Backpack", Category: "Accessories", BasePriceCents: 7999},
		},
		Currencies: map[string]money.Rate{"USD": money.MustRate("1"), "EUR": money.MustRate("0.92"), "JPY": money.MustRate("149.5")},
		Zips: map[string]lookup.Zip{
			"10001": {City: "New York", State: "NY", Country: "US", Zone: 1},
			"94102": {City: "San Francisco", State: "CA", Country: "US", Zone: 2},
		},
	}
}

// benchOrders decodes n generated orders drawn from snap.
func benchOrders(b *testing.B, snap *lookup.Snapshot, n int) []order.Order {
	b.Helper()
	cat := generate.Catalog{Products: map[string]int64{}, Currencies: snap.FloatRates()}
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

// FuzzRawDataMatchesMarshal requires raw_data to be byte for byte what
// json.Marshal makes of the normalised message, whatever the strings hold.
func FuzzRawDataMatchesMarshal(f *testing.F) {
	f.Add("ORD-1", "CUST-1", "PROD-001", int64(2), int64(1999), "USD", "10001", int64(1714566600), int64(123456789), "Mozilla/5.0", "198.51.0.1", "sess-1")
	f.Add("<a&b>", "\"q\"\\", "\x00\x01\x1f\x7f", int64(-5), int64(-1), "€\u2028\u2029", "\xff\xfe", int64(0), int64(0), "", "", "")
	f.Add("x", "y", "z", int64(1)<<62, int64(-1)<<63, "\b\f\n\r\t", "ok", int64(253402300799), int64(999999999), "\xed\xa0\x80", "", "s")
	snap := benchSnapshot()
	f.Fuzz(func(t *testing.T, id, cust, prod string, qty, cents int64, cur, zip string, secs, nanos int64, ua, ip, sess string) {
		o := order.Order{OrderID: id, CustomerID: cust, ProductID: prod, Quantity: qty, UnitPriceCents: cents,
			Currency: cur, ZipCode: zip, OrderTimestamp: time.Unix(secs%253402300800, nanos%1e9).UTC(),
			UserAgent: ua, IP: ip, SessionID: sess}
		want, err := json.Marshal(o.Message())
		require.NoError(t, err)
		require.Equal(t, string(want), string(transform.One(o, snap).RawData))
		rows := transform.Apply([]order.Order{o, o}, snap)
		require.Equal(t, string(want), string(rows[1].RawData))
	})
}

// TestRawDataMatchesMarshalForGeneratedOrders checks a batch of generated
// orders the same way, rows far apart in the batch's buffers included.
func TestRawDataMatchesMarshalForGeneratedOrders(t *testing.T) {
	snap := benchSnapshot()
	cat := generate.Catalog{Products: map[string]int64{"PROD-001": 2499, "PROD-002": 8999, "PROD-015": 1299},
		Currencies: snap.FloatRates(), Zips: []string{"10001", "94102", "99999"}}
	g, err := generate.New(cat, generate.Config{Seed: 3})
	require.NoError(t, err)
	var orders []order.Order
	for range 3000 {
		o, err := order.Decode(g.Next())
		require.NoError(t, err)
		orders = append(orders, o)
	}
	for i, r := range transform.Apply(orders, snap) {
		want, err := json.Marshal(orders[i].Message())
		require.NoError(t, err)
		require.Equal(t, string(want), string(r.RawData))
		require.Equal(t, len(r.RawData), cap(r.RawData), "raw_data must not share spare capacity")
	}
}
