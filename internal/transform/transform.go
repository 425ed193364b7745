// Package transform turns decoded orders into enriched staging rows: it
// joins each order with the in-memory lookup snapshot and computes totals in
// the order's currency and in USD, exactly, in cents.
package transform

import (
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/order"
)

// Row is one order ready for staging and promotion. Enrichment fields are
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
	ShippingZone  *int32
	RawData       []byte // the normalised message, stored as JSONB
}

// Enriched reports whether the snapshot had every lookup entry the row
// needs; when not, promotion fills the gaps from the lookup tables.
func (r *Row) Enriched() bool {
	return r.ProductName != nil && r.Category != nil && r.TotalUSDCents != nil &&
		r.City != nil && r.State != nil && r.Country != nil && r.ShippingZone != nil
}

// ToUSDCents converts an amount in a currency to US cents given how many
// units of that currency one dollar buys (currency_rates.rate_to_usd): it
// divides. 1000 JPY at 149.5 JPY per USD is 6.69 USD (the reference
// multiplied and got 149,500). The rounding is money's: exact, half away from zero, as promotion's SQL does it.
func ToUSDCents(cents int64, unitsPerUSD money.Rate) int64 {
	return money.ToUSDCents(cents, unitsPerUSD)
}

// Apply enriches orders from snap.
func Apply(orders []order.Order, snap *lookup.Snapshot) []Row {
	rows := make([]Row, len(orders))
	e := newEnricher(snap, len(orders))
	for i := range orders {
		e.enrich(&rows[i], &orders[i], i)
	}
	return rows
}

// One enriches a single order.
func One(o order.Order, snap *lookup.Snapshot) Row {
	var r Row
	newEnricher(snap, 1).enrich(&r, &o, 0)
	return r
}

// enricher enriches the orders of one batch, allocating per batch rather
// than per row. Each row still gets its own copies of the values its
// pointers reach, so changing one row changes no other row nor the
// snapshot: the copies are slots of slices shared by the batch, and
// raw_data is carved from large buffers.
type enricher struct {
	snap  *lookup.Snapshot
	strs  []string // per row: product name, category, city, state, country
	zones []int32  // per row
	usd   []int64  // per row
	arena []byte   // raw_data of consecutive rows
}

// arenaSize is the raw_data buffer allocated at a time: about 500 rows.
const arenaSize = 256 << 10

func newEnricher(snap *lookup.Snapshot, rows int) *enricher {
	return &enricher{snap: snap, strs: make([]string, 5*rows), zones: make([]int32, rows), usd: make([]int64, rows)}
}

func (e *enricher) enrich(r *Row, o *order.Order, i int) {
	r.Order = *o
	// Decoding bounds |quantity × unit price| to 1e14 cents (1000 units at
	// the largest price), so the product fits an int64 and numeric(16,2).
	r.TotalCents = o.UnitPriceCents * o.Quantity
	s := e.strs[5*i : 5*i+5 : 5*i+5]
	if p, ok := e.snap.Products[o.ProductID]; ok {
		s[0], s[1] = p.Name, p.Category
		r.ProductName, r.Category = &s[0], &s[1]
	}
	if rate, ok := e.snap.Currencies[o.Currency]; ok && rate.Valid() {
		e.usd[i] = ToUSDCents(r.TotalCents, rate)
		r.TotalUSDCents = &e.usd[i]
	}
	if z, ok := e.snap.Zips[o.ZipCode]; ok {
		s[2], s[3], s[4], e.zones[i] = z.City, z.State, z.Country, z.Zone
		r.City, r.State, r.Country, r.ShippingZone = &s[2], &s[3], &s[4], &e.zones[i]
	}
	if need := order.MaxMessageLen(o); cap(e.arena)-len(e.arena) < need {
		e.arena = make([]byte, 0, max(arenaSize, need))
	}
	start := len(e.arena)
	e.arena = order.AppendMessage(e.arena, o)
	r.RawData = e.arena[start:len(e.arena):len(e.arena)]
}
