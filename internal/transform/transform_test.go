package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/order"
)

var snap = &lookup.Snapshot{
	Version: 3,
	Products: map[string]lookup.Product{
		"PROD-1": {Name: "Widget", Category: "Tools", BasePriceCents: 1999},
	},
	Currencies: map[string]money.Rate{"USD": money.MustRate("1"), "JPY": money.MustRate("149.5"), "EUR": money.MustRate("0.92")},
	Zips: map[string]lookup.Zip{
		"10001": {City: "New York", State: "NY", Country: "US", Zone: 7},
	},
}

func decode(t *testing.T, changes map[string]any) order.Order {
	t.Helper()
	m := map[string]any{
		"order_id": "ORD-1", "customer_id": "CUST-1", "product_id": "PROD-1", "quantity": 3,
		"unit_price": "12.34", "currency": "USD", "zip_code": "10001", "order_timestamp": "2024-05-01T12:30:00.5Z",
		"user_agent": "curl/8", "ip": "198.51.100.7", "session_id": "s-1",
	}
	for k, v := range changes {
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	o, err := order.Decode(b)
	require.NoError(t, err)
	return o
}

func TestToUSDCents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cents int64
		rate  string
		want  int64
	}{
		{"1000 JPY at 149.5 is 6.69 USD", 100000, "149.5", 669},
		{"USD is the identity", 1999, "1", 1999},
		{"USD identity for large amounts", 99999999999999, "1", 99999999999999},
		{"zero", 0, "149.5", 0},
		{"a stronger currency gives more cents", 100, "0.5", 200},
		{"half rounds up", 5, "2", 3},
		{"half rounds away from zero when negative", -5, "2", -3},
		{"one and a half", 3, "2", 2},
		{"below half rounds down", 1, "4", 0},
		{"above half rounds up", 3, "4", 1},
		{"negative below half", -1, "4", 0},
		{"EUR", 10000, "0.92", 10870},
		// Exact half cents, which a float division puts on either side.
		{"185.47 CAD at 1.36 is 136.375: up", 18547, "1.36", 13638},
		{"negative exact half", -18547, "1.36", -13638},
		{"201 at 2 is 100.5: up", 201, "2", 101},
		{"rate with six decimals", 1000000, "0.000001", 1000000000000},
		{"an exact quotient", 299, "149.5", 2},
		{"a result beyond int64 saturates", 100000000000000, "0.000001", math.MaxInt64},
		{"and so does a negative one", -100000000000000, "0.000001", math.MinInt64},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, ToUSDCents(tc.cents, money.MustRate(tc.rate)), tc.name)
	}
}

func TestOneKnown(t *testing.T) {
	t.Parallel()
	o := decode(t, map[string]any{"currency": "jpy", "unit_price": "1000", "quantity": 2})
	r := One(o, snap)
	require.Equal(t, o, r.Order)
	require.Equal(t, int64(200000), r.TotalCents, "2 × 1000 JPY in JPY cents")
	require.NotNil(t, r.TotalUSDCents)
	require.Equal(t, int64(1338), *r.TotalUSDCents, "2000 JPY at 149.5 is 13.38 USD")
	require.Equal(t, "Widget", *r.ProductName)
	require.Equal(t, "Tools", *r.Category)
	require.Equal(t, "New York", *r.City)
	require.Equal(t, "NY", *r.State)
	require.Equal(t, "US", *r.Country)
	require.Equal(t, int32(7), *r.ShippingZone)
}

func TestOneUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		changes map[string]any
		check   func(t *testing.T, r Row)
	}{
		{"unknown product", map[string]any{"product_id": "PROD-404"}, func(t *testing.T, r Row) {
			require.Nil(t, r.ProductName)
			require.Nil(t, r.Category)
			require.NotNil(t, r.TotalUSDCents)
			require.NotNil(t, r.City)
		}},
		{"unknown currency", map[string]any{"currency": "XXX"}, func(t *testing.T, r Row) {
			require.Nil(t, r.TotalUSDCents)
			require.Equal(t, int64(3702), r.TotalCents, "the total in the order's own currency is still known")
			require.NotNil(t, r.ProductName)
		}},
		{"unknown zip", map[string]any{"zip_code": "99999"}, func(t *testing.T, r Row) {
			require.Nil(t, r.City)
			require.Nil(t, r.State)
			require.Nil(t, r.Country)
			require.Nil(t, r.ShippingZone)
			require.NotNil(t, r.ProductName)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, One(decode(t, tc.changes), snap))
		})
	}

	empty := &lookup.Snapshot{}
	r := One(decode(t, nil), empty)
	require.Nil(t, r.ProductName)
	require.Nil(t, r.TotalUSDCents)
	require.Nil(t, r.City)
	require.Equal(t, int64(3702), r.TotalCents)

	// A rate that cannot be divided by leaves USD for promotion to compute.
	bad := &lookup.Snapshot{Currencies: map[string]money.Rate{"USD": {}}}
	require.Nil(t, One(decode(t, nil), bad).TotalUSDCents)
	require.Nil(t, One(decode(t, map[string]any{"currency": "EUR"}), bad).TotalUSDCents)
}

func TestEnrichmentIsNotShared(t *testing.T) {
	t.Parallel()
	// Rows point at copies: changing one row's enrichment leaves the
	// snapshot and other rows alone.
	rows := Apply([]order.Order{decode(t, nil), decode(t, map[string]any{"order_id": "ORD-2"})}, snap)
	*rows[0].ProductName = "changed"
	require.Equal(t, "Widget", snap.Products["PROD-1"].Name)
	require.Equal(t, "Widget", *rows[1].ProductName)
}

func TestRawData(t *testing.T) {
	t.Parallel()
	for _, changes := range []map[string]any{
		nil,
		{"currency": "jpy", "unit_price": 1000, "quantity": "2", "order_timestamp": "2024-05-01 14:30:00"},
		{"order_id": "  ORD-9 ", "unit_price": 1.005, "order_timestamp": 1714566600, "user_agent": "<b>&</b>"},
		{"product_id": "PROD-404", "zip_code": "99999", "currency": "XXX", "quantity": 0, "unit_price": "-1"},
	} {
		o := decode(t, changes)
		r := One(o, snap)
		require.True(t, json.Valid(r.RawData), "%s", r.RawData)

		var msg order.Message
		require.NoError(t, json.Unmarshal(r.RawData, &msg))
		require.Equal(t, o.Message(), msg, "raw_data is the normalised message")

		again, err := order.Decode(r.RawData)
		require.NoError(t, err, "%s", r.RawData)
		require.Equal(t, o, again, "a replay of raw_data decodes to the same order")
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	orders := []order.Order{
		decode(t, nil),
		decode(t, map[string]any{"order_id": "ORD-2", "currency": "EUR", "unit_price": "9.20", "quantity": 10}),
		decode(t, map[string]any{"order_id": "ORD-3", "product_id": "nope"}),
	}
	rows := Apply(orders, snap)
	require.Len(t, rows, 3)
	for i, r := range rows {
		require.Equal(t, orders[i], r.Order, "rows keep the order of their orders")
		require.Equal(t, One(orders[i], snap), r)
	}
	require.Equal(t, int64(10000), *rows[1].TotalUSDCents, "92.00 EUR at 0.92 is 100.00 USD")
	require.Empty(t, Apply(nil, snap))
}

func TestTotalsFitTheStagingColumns(t *testing.T) {
	t.Parallel()
	// The largest order Decode accepts still has an exact int64 total
	// inside numeric(16,2).
	o := decode(t, map[string]any{"quantity": 1000, "unit_price": "1000000000", "currency": "EUR"})
	r := One(o, snap)
	require.Equal(t, int64(100000000000000), r.TotalCents)
	require.Less(t, math.Abs(float64(*r.TotalUSDCents)), 1e16)
	require.Equal(t, time.Date(2024, 5, 1, 12, 30, 0, 5e8, time.UTC), r.Order.OrderTimestamp)
}

func ExampleToUSDCents() {
	// 1000 JPY, at 149.5 JPY to the dollar, is 6.69 USD.
	fmt.Println(ToUSDCents(100000, money.MustRate("149.5")))
	// Half a cent rounds away from zero.
	fmt.Println(ToUSDCents(5, money.MustRate("2")), ToUSDCents(-5, money.MustRate("2")))
	// Output:
	// 669
	// 3 -3
}
