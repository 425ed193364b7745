// Package transform turns decoded orders into enriched staging rows: it
// joins each order with the in-memory lookup snapshot and computes totals in
// the order's currency and in USD, exactly, in cents.
package transform

import (
	"encoding/json"
	"math"

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
)

// Row is one order ready for COPY into orders_staging. Enrichment fields are
// nil when the snapshot has no entry: promotion then validates against the
// lookup tables themselves and fills or rejects the row.
type Row struct {
	Order         order.Order
	ProductName   *string
	Category      *string
	TotalCents    int64  // unit price × quantity, in the order's currency
	TotalUSDCents *int64 // nil when the currency is unknown
	City          *string
	State         *string
	Country       *string
	ShippingZone  *string
	RawData       []byte // the normalised message, stored as JSONB
}

// ToUSDCents converts an amount in a currency to US cents given how many
// units of that currency one dollar buys: it divides. 1000 JPY at 149.5 JPY
// per USD is 6.69 USD (the seed multiplied and got 149,500).
func ToUSDCents(cents int64, unitsPerUSD float64) int64 {
	return int64(math.Round(float64(cents) / unitsPerUSD))
}

// Apply enriches orders from snap.
func Apply(orders []order.Order, snap *lookup.Snapshot) []Row {
	rows := make([]Row, len(orders))
	for i := range orders {
		rows[i] = One(orders[i], snap)
	}
	return rows
}

// One enriches a single order.
func One(o order.Order, snap *lookup.Snapshot) Row {
	r := Row{Order: o}
	// Decoding bounds |quantity × unit price| to 1e14 cents (1000 units at
	// the largest price), so the product fits an int64 and numeric(16,2).
	r.TotalCents = o.UnitPriceCents * o.Quantity
	if p, ok := snap.Products[o.ProductID]; ok {
		r.ProductName, r.Category = &p.Name, &p.Category
	}
	if rate, ok := snap.Currencies[o.Currency]; ok && rate > 0 {
		usd := ToUSDCents(r.TotalCents, rate)
		r.TotalUSDCents = &usd
	}
	if z, ok := snap.Zips[o.ZipCode]; ok {
		r.City, r.State, r.Country, r.ShippingZone = &z.City, &z.State, &z.Country, &z.Zone
	}
	r.RawData, _ = json.Marshal(o.Message()) // strings and ints only: cannot fail
	return r
}
