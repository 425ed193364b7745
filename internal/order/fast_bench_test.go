package order

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// fastSeeds are messages the fast path takes or must refuse.
var fastSeeds = []string{
	`{"order_id":"ORD-1","customer_id":"C","product_id":"P","quantity":1,"unit_price":"1.00","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`,
	` {"order_id" : "ORD-2", "customer_id":"C ", "product_id":"P", "quantity": "3", "unit_price": 19.999, "currency":"eur",
	  "zip_code":"02108", "order_timestamp": 1714560000.5, "user_agent":"Mozilla/5.0 (X11)", "ip":"10.0.0.1", "session_id":"s"} `,
	`{"order_id":"ORD-3","order_id":"ORD-4"}`,
	`{"ORDER_ID":"ORD-5","customer_id":"C","product_id":"P","quantity":1,"unit_price":"1.00","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`,
	`{"order_id":"ORD-\u0036","customer_id":"C","product_id":"P","quantity":1,"unit_price":"1.00","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`,
	`{"order_id":null,"quantity":01}`,
	`{"order_id":"ORD-7","quantity":-0.5e+2,"unit_price":"","extra":{"a":[1,2]}}`,
	`{"order_id":"ORD-8"}]`,
	`{"order_id":"ORD-9",}`,
	`{"order_id":"ORD-10","quantity":1.}`,
	`{}`, `[]`, `null`, `"x"`, ``, `{"order_id":"ÄÖÜ€"}`,
	// The Python reference's shapes, which the fast path leaves to encoding/json.
	`{"order_id": "ORD-1", "customer_id": 42, "product_id": "PROD-001", "quantity": 3, "unit_price": 1299.99, "currency": "USD", "zip_code": "10001", "order_timestamp": "2026-12-02T10:11:12.123456", "raw_data": {"user_agent": "Mozilla/5.0", "ip_address": "192.0.2.44", "session_id": "s"}}`,
	`{"order_id": 7, "customer_id": "C", "product_id": "P", "quantity": 1, "unit_price": 29.7, "currency": "CAD", "zip_code": "M5H2N2", "order_timestamp": "2026-12-02 10:11:12 UTC", "ip_address": "::1"}`,
	`{"order_id": "ORD-2", "customer_id": 4.5, "raw_data": "x"}`,
	"\x1eTL5000000\x1f{\"order_id\": \"ORD-1\"",
}

// FuzzDecodeFastMatchesSlow requires the fast path, whenever it takes a
// message on, to decode it exactly as encoding/json does: same order, or
// same rejection.
func FuzzDecodeFastMatchesSlow(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if (Options{}).Oversized(raw) != nil || !utf8.Valid(raw) {
			return // refused before either path
		}
		want, wantErr := decodeSlow(raw, time.UTC)
		got, gotErr := Decode(raw)
		require.Equal(t, want, got)
		require.Equal(t, wantErr, gotErr)
	})
}

// TestFastPathTakesGeneratedMessages checks that the messages producers
// send do take the fast path.
func TestFastPathTakesGeneratedMessages(t *testing.T) {
	b, err := json.Marshal(Message{OrderID: "ORD-1", CustomerID: "CUST-00001", ProductID: "PROD-001", Quantity: 2,
		UnitPrice: "19.99", Currency: "USD", ZipCode: "10001", OrderTimestamp: "2024-05-01T12:30:00.123456789Z",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", IP: "198.51.0.1", SessionID: "sess-1"})
	require.NoError(t, err)
	var f fastWire
	require.True(t, f.decode(b))
	for _, s := range fastSeeds[:2] {
		require.True(t, (&fastWire{}).decode([]byte(s)), s)
	}
	for _, s := range fastSeeds[2:] {
		if s == `{}` || s == `{"order_id":"ÄÖÜ€"}` {
			continue
		}
		require.False(t, (&fastWire{}).decode([]byte(s)), s)
	}
}

// BenchmarkDecodeSlow is Decode without the fast path, for comparison.
func BenchmarkDecodeSlow(b *testing.B) {
	raw := []byte(`{"order_id":"ORD-abc123-00000001","customer_id":"CUST-00042","product_id":"PROD-004","quantity":3,"unit_price":"249.99","currency":"USD","zip_code":"10001","order_timestamp":"2024-05-01T12:30:00.123456789Z","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0","ip":"198.51.0.43","session_id":"sess-abc123-42-0"}`)
	b.ReportAllocs()
	for b.Loop() {
		_, err := decodeSlow(raw, time.UTC)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}
