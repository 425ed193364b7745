// Package stage bulk-loads transformed rows into the UNLOGGED staging table
// with COPY (pgx CopyFrom, binary format): no per-row round trips and no WAL.
package stage

import (
	"context"
	"math/big"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/transform"
)

// Columns are the staging columns CopyFrom fills, in order.
var Columns = []string{
	"batch_id", "order_id", "customer_id", "product_id", "product_name", "category",
	"quantity", "unit_price", "currency", "total_amount", "total_amount_usd",
	"zip_code", "city", "state", "country", "shipping_zone", "order_timestamp", "raw_data",
}

// Copy stages rows under batchID inside tx and returns how many were copied.
func Copy(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string, rows []transform.Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	return tx.CopyFrom(ctx, t.StagingIdent(), Columns, &source{batchID: batchID, rows: rows, i: -1})
}

// source streams rows to CopyFrom without building a [][]any up front.
type source struct {
	batchID string
	rows    []transform.Row
	i       int
	vals    [18]any
}

func (s *source) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *source) Err() error { return nil }

func (s *source) Values() ([]any, error) {
	r := &s.rows[s.i]
	o := &r.Order
	v := &s.vals
	v[0], v[1], v[2], v[3] = s.batchID, o.OrderID, o.CustomerID, o.ProductID
	v[4], v[5] = r.ProductName, r.Category
	v[6], v[7], v[8] = int32(o.Quantity), Cents(o.UnitPriceCents), o.Currency
	v[9] = Cents(r.TotalCents)
	if r.TotalUSDCents != nil {
		v[10] = Cents(*r.TotalUSDCents)
	} else {
		v[10] = nil
	}
	v[11], v[12], v[13], v[14], v[15] = o.ZipCode, r.City, r.State, r.Country, r.ShippingZone
	v[16], v[17] = o.OrderTimestamp, r.RawData
	return v[:], nil
}

// Cents encodes a cent amount as an exact numeric with two decimal places.
func Cents(c int64) pgtype.Numeric {
	return pgtype.Numeric{Int: big.NewInt(c), Exp: -2, Valid: true}
}
