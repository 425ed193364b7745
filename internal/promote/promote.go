// Package promote validates staged rows set-wise and moves them into the
// durable orders table in one statement: valid rows are inserted with
// ON CONFLICT DO NOTHING (PostgreSQL is the final judge of duplicates),
// invalid rows go to orders_rejected with their reason, and exactly the
// batch's staging rows are deleted — never a TRUNCATE, so rows staged by
// other batches meanwhile are untouched.
package promote

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/schema"
)

// FutureTolerance is how far ahead of the database clock an order's
// timestamp may be before it is rejected as future_timestamp.
const FutureTolerance = "1 day"

// Result is what promoting one batch did.
type Result struct {
	Staged   int64    // rows the batch had in staging
	Promoted []string // order ids inserted into orders
	Rejected int64    // rows sent to orders_rejected
}

// Duplicates are staged rows that were neither promoted nor rejected: their
// order id was already in orders.
func (r Result) Duplicates() int64 { return r.Staged - int64(len(r.Promoted)) - r.Rejected }

// batchSQL is the set-wise promotion of one batch. Lookup values staged from
// the Redis snapshot win; the lookup tables themselves decide validity and
// fill what a stale snapshot lacked, so a cache miss never drops an order
// silently. Rows are inserted in order_id order so that two batches sharing
// ids cannot deadlock on each other's speculative inserts.
//
// Valid rows and rejected rows are selected from staging separately, each
// with only the joins and columns it needs: one common CTE of the whole
// enriched batch, referenced twice, would be materialised, and at a few
// thousand rows of raw_data it spills to temporary files. The insert's
// conditions are exactly "the reject branch finds no reason": inner joins
// where that branch checks for a missing lookup row, and the negations of
// its range checks (staging's quantity, unit_price and order_timestamp are
// NOT NULL, so no NULL slips between the two).
const batchSQL = `
WITH ins AS (
  INSERT INTO %[5]s (order_id, customer_id, product_id, product_name, category, quantity, unit_price,
                     currency, total_amount, total_amount_usd, zip_code, city, state, country,
                     shipping_zone, order_timestamp, raw_data)
  SELECT st.order_id, st.customer_id, st.product_id,
         coalesce(st.product_name, p.product_name), coalesce(st.category, p.category),
         st.quantity, st.unit_price, st.currency, st.total_amount,
         coalesce(st.total_amount_usd, round(st.total_amount / c.units_per_usd, 2)),
         st.zip_code,
         coalesce(st.city, z.city), coalesce(st.state, z.state),
         coalesce(st.country, z.country), coalesce(st.shipping_zone, z.shipping_zone),
         st.order_timestamp, st.raw_data
  FROM %[1]s st
  JOIN %[2]s p ON p.product_id = st.product_id
  JOIN %[3]s c ON c.currency_code = st.currency
  JOIN %[4]s z ON z.zip_code = st.zip_code
  WHERE st.batch_id = $1
    AND st.quantity BETWEEN 1 AND 1000
    AND st.unit_price > 0
    AND st.order_timestamp <= now() + interval '` + FutureTolerance + `'
  ORDER BY st.order_id
  ON CONFLICT (order_id) DO NOTHING
  RETURNING order_id
), rej AS (
  INSERT INTO %[6]s (order_id, reason, detail, raw_payload, batch_id)
  SELECT order_id, reason,
         CASE reason
           WHEN '` + order.ReasonUnknownProduct + `' THEN format('product_id %%s is not in product_catalog', product_id)
           WHEN '` + order.ReasonUnknownCurrency + `' THEN format('currency %%s is not in currency_rates', currency)
           WHEN '` + order.ReasonUnknownZip + `' THEN format('zip_code %%s is not in zip_code_zones', zip_code)
           WHEN '` + order.ReasonQuantityRange + `' THEN format('quantity %%s is outside 1-1000', quantity)
           WHEN '` + order.ReasonPriceNotPos + `' THEN format('unit_price %%s is not positive', unit_price)
           ELSE format('order_timestamp %%s is more than ` + FutureTolerance + ` ahead', order_timestamp)
         END,
         convert_to(raw_data::text, 'UTF8'), $1
  FROM (
    SELECT st.order_id, st.product_id, st.currency, st.zip_code, st.quantity, st.unit_price,
           st.order_timestamp, st.raw_data,
           CASE
             WHEN p.product_id IS NULL THEN '` + order.ReasonUnknownProduct + `'
             WHEN c.currency_code IS NULL THEN '` + order.ReasonUnknownCurrency + `'
             WHEN z.zip_code IS NULL THEN '` + order.ReasonUnknownZip + `'
             WHEN st.quantity NOT BETWEEN 1 AND 1000 THEN '` + order.ReasonQuantityRange + `'
             WHEN st.unit_price <= 0 THEN '` + order.ReasonPriceNotPos + `'
             WHEN st.order_timestamp > now() + interval '` + FutureTolerance + `' THEN '` + order.ReasonFutureTimestamp + `'
           END AS reason
    FROM %[1]s st
    LEFT JOIN %[2]s p ON p.product_id = st.product_id
    LEFT JOIN %[3]s c ON c.currency_code = st.currency
    LEFT JOIN %[4]s z ON z.zip_code = st.zip_code
    WHERE st.batch_id = $1
  ) s
  WHERE reason IS NOT NULL
  RETURNING 1
), del AS (
  DELETE FROM %[1]s WHERE batch_id = $1 RETURNING 1
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM rej), coalesce((SELECT array_agg(order_id) FROM ins), '{}')`

// SQL returns the promotion statement for the tables t.
func SQL(t schema.Tables) string {
	return fmt.Sprintf(batchSQL, t.Staging(), t.Products(), t.Currencies(), t.Zips(), t.Orders(), t.Rejected())
}

// Batch promotes the staging rows of batchID inside tx.
func Batch(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string) (Result, error) {
	var r Result
	err := tx.QueryRow(ctx, SQL(t), batchID).Scan(&r.Staged, &r.Rejected, &r.Promoted)
	if err != nil {
		return Result{}, fmt.Errorf("promote batch %s: %w", batchID, err)
	}
	return r, nil
}

// Rejection is a message dead-lettered before it could be staged.
type Rejection struct {
	OrderID string
	Reason  string
	Detail  string
	Raw     []byte
}

// Reject writes dead letters inside tx with COPY.
func Reject(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string, rs []Rejection) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		var id *string
		if r.OrderID != "" {
			id = &rs[i].OrderID
		}
		rows[i] = []any{id, r.Reason, r.Detail, r.Raw, batchID}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{t.Schema, "orders_rejected"},
		[]string{"order_id", "reason", "detail", "raw_payload", "batch_id"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("write %d dead letters: %w", len(rs), err)
	}
	return nil
}

// Staged lists the batch ids that still have rows in staging, oldest first.
// Normally there are none: workers promote in the transaction that stages.
func Staged(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, t schema.Tables) ([]string, error) {
	rows, err := db.Query(ctx, "SELECT DISTINCT batch_id FROM "+t.Staging())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
