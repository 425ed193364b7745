// Package promote validates a staged batch set-wise and moves it into the
// durable orders table: one statement checks every staged row against the
// lookup tables and orders (and deletes exactly that batch's staging rows —
// never a TRUNCATE, so rows other batches staged meanwhile are untouched),
// the rows that passed are COPYed once into orders, and invalid rows go to
// orders_rejected with their reason. PostgreSQL is the final judge of
// duplicates: its primary key refuses an order id that a concurrent batch
// committed first, and the batch is then checked again.
package promote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/transform"
)

// FutureTolerance is how far ahead of the database clock an order's
// timestamp may be before it is rejected as future_timestamp.
const FutureTolerance = "1 day"

// Result is what promoting one batch did.
type Result struct {
	Staged   int64    // rows the batch had in staging
	Promoted []string // order ids inserted into orders
	// Rows are the promoted rows as COPYed, enrichment filled from the
	// lookup tables where the snapshot lacked it; Rows[i] is Promoted[i].
	Rows     []transform.Row
	Rejected int64 // rows sent to orders_rejected
	// RejectedBy counts the rejected rows by reason code, for metrics; nil
	// when none was rejected.
	RejectedBy map[string]int64
}

// Duplicates are staged rows that were neither promoted nor rejected: their
// order id was already in orders, or earlier in the same batch.
func (r Result) Duplicates() int64 { return r.Staged - int64(len(r.Promoted)) - r.Rejected }

// checkSQL validates one batch's staged rows and deletes them, in one pass
// over staging. It returns a verdict only for rows that need more than a
// plain COPY: a reason to reject them, an order id already in orders, or
// enrichment the Redis snapshot lacked (the lookup values come back with
// it, so a cache miss never drops an order silently). Lookup values staged
// from the snapshot win; the lookup tables decide validity.
//
// %[5]s is the duplicate test, d.taken: probeSQL or noProbeSQL.
var checkSQL = `
WITH st AS (
  DELETE FROM %[1]s WHERE batch_id = $1
  RETURNING row_no, order_id, product_id, currency, zip_code, quantity, unit_price, order_timestamp, enriched
), v AS (
  SELECT st.*, p.product_name, p.category, c.rate_to_usd, z.city, z.state, z.country, z.shipping_zone,
         CASE
           WHEN p.product_id IS NULL THEN '` + order.ReasonUnknownProduct + `'
           WHEN c.currency_code IS NULL THEN '` + order.ReasonUnknownCurrency + `'
           WHEN z.zip_code IS NULL THEN '` + order.ReasonUnknownZip + `'
           WHEN st.quantity NOT BETWEEN 1 AND 1000 THEN '` + order.ReasonQuantityRange + `'
           WHEN st.unit_price <= 0 THEN '` + order.ReasonPriceNotPos + `'
           WHEN st.order_timestamp > now() + interval '` + FutureTolerance + `' THEN '` + order.ReasonFutureTimestamp + `'
         END AS reason
  FROM st
  LEFT JOIN %[2]s p ON p.product_id = st.product_id
  LEFT JOIN %[3]s c ON c.currency_code = st.currency
  LEFT JOIN %[4]s z ON z.zip_code = st.zip_code
)
SELECT row_no, reason,
       CASE reason
         WHEN '` + order.ReasonUnknownProduct + `' THEN format('product_id %%s is not in product_catalog', product_id)
         WHEN '` + order.ReasonUnknownCurrency + `' THEN format('currency %%s is not in currency_rates', currency)
         WHEN '` + order.ReasonUnknownZip + `' THEN format('zip_code %%s is not in zip_code_zones', zip_code)
         WHEN '` + order.ReasonQuantityRange + `' THEN format('quantity %%s is outside 1-1000', quantity)
         WHEN '` + order.ReasonPriceNotPos + `' THEN format('unit_price %%s is not positive', unit_price)
         WHEN '` + order.ReasonFutureTimestamp + `' THEN format('order_timestamp %%s is more than ` + FutureTolerance + ` ahead', order_timestamp)
       END,
       d.taken IS NOT NULL,
       product_name, category, ` + usdCents + `::bigint,
       city, state, country, shipping_zone
FROM v
%[5]s
WHERE reason IS NOT NULL OR NOT enriched OR d.taken`

// usdCents is the order's total in US cents, rounded by the rule
// transform uses on the Go path (money.ToUSDCents), so a row's USD total
// does not depend on whether the snapshot had its currency.
var usdCents = money.USDCentsSQL("(unit_price * quantity * 100)", "rate_to_usd")

// probeSQL looks every staged order id up in orders. It is a LATERAL
// subquery with a LIMIT so that it stays one primary-key probe per row
// however large orders grows: a plain EXISTS lets the planner hash all of
// orders instead, and it does when it underestimates the batch (staging is
// rarely analysed, and a DELETE's output never is).
const probeSQL = `LEFT JOIN LATERAL (SELECT true AS taken FROM %s o WHERE o.order_id = v.order_id LIMIT 1) d ON true`

// noProbeSQL leaves the duplicate test to the primary key.
const noProbeSQL = `CROSS JOIN (SELECT NULL::boolean AS taken) d`

// CheckSQL returns the validation statement for the tables t, with or
// without probing orders for each staged order id.
func CheckSQL(t schema.Tables, probe bool) string {
	dup := noProbeSQL
	if probe && t.Partitioned {
		// A partitioned orders has an index on order_id in every partition;
		// the registry has one index for all of them.
		dup = fmt.Sprintf(probeSQL, t.OrderIDs())
	} else if probe {
		dup = fmt.Sprintf(probeSQL, t.Orders())
	}
	return fmt.Sprintf(checkSQL, t.Staging(), t.Products(), t.Currencies(), t.Zips(), dup)
}

// verdict is what checkSQL says of one staged row.
type verdict struct {
	row       int32
	reason    *string
	detail    *string
	duplicate bool
	// The lookup tables' values, NULL where the lookup row is missing.
	productName, category *string
	usdCents              *int64
	city, state, country  *string
	zone                  *int32
}

// maxAttempts bounds how often one batch is checked: a first time, again
// with the duplicate probe once the primary key refused an id, and again
// each time a concurrent batch committed one of its order ids (or a lookup
// row went) between the check and the COPY. Each retry after the second
// needs another such commit, so the bound is only met under a stream of
// exactly colliding batches.
const maxAttempts = 10

// Batch promotes rows, which stage.Copy staged under batchID inside tx in
// this very order: it checks them, COPYs the valid ones into orders in
// order_id order, writes the invalid ones to orders_rejected and removes
// the batch's staging rows. rows themselves are not modified.
//
// Order ids already in orders are rare by the time a batch gets here — the
// Redis window drops re-sends of promoted orders — so the first check
// leaves them to the primary key rather than probing orders for every row;
// when the key refuses the COPY, the batch is checked again with the probe.
func Batch(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string, rows []transform.Row) (Result, error) {
	return BatchSeen(ctx, tx, t, batchID, rows, nil)
}

// BatchSeen is Batch for rows some of whose order ids the caller knows to
// be in orders already (seen[i] for rows[i]; nil for none), as the de-dup
// window does. Such a row is still checked — validity comes first, so an
// invalid copy of a promoted order is a dead letter like any invalid copy —
// and, when valid, is a duplicate without a trip into orders.
//
// One rule decides every copy of an order id, so the outcome never depends
// on how messages were batched: an invalid copy is a dead letter and never
// claims the id; a valid copy is promoted unless the id is in orders
// already (committed before, or by an earlier valid copy in this batch),
// and is then a duplicate.
func BatchSeen(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string, rows []transform.Row, seen []bool) (Result, error) {
	if seen != nil && len(seen) != len(rows) {
		return Result{}, fmt.Errorf("promote batch %s: %d rows but %d seen marks", batchID, len(rows), len(seen))
	}
	probe := false
	for attempt := 1; ; attempt++ {
		res, err := attemptBatch(ctx, tx, t, batchID, rows, seen, probe)
		if err == nil {
			return res, nil
		}
		if attempt == maxAttempts || !raced(err) {
			return Result{}, fmt.Errorf("promote batch %s: %w", batchID, err)
		}
		probe = true
	}
}

// raced reports whether err means that something committed between the
// check and the COPY changed the verdict: an order id now taken, a lookup
// row now gone, or a deadlock with a batch doing the same.
func raced(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", "23503", "40P01": // unique_violation, foreign_key_violation, deadlock_detected
		return true
	}
	return false
}

// attemptBatch checks and promotes under a savepoint, so that a COPY the
// primary key refuses rolls back to the staged batch for another check.
func attemptBatch(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string, rows []transform.Row, seen []bool, probe bool) (Result, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = sp.Rollback(context.WithoutCancel(ctx)) }() // a no-op once released
	verdicts, err := check(ctx, sp, CheckSQL(t, probe), batchID)
	if err != nil {
		return Result{}, err
	}
	if len(verdicts) > len(rows) {
		return Result{}, fmt.Errorf("%d rows staged under batch %s, %d handed to promotion", len(verdicts), batchID, len(rows))
	}
	valid, rejects, err := sortOut(rows, seen, verdicts)
	if err != nil {
		return Result{}, err
	}
	if t.Partitioned {
		// The registry's primary key is what refuses an order id stored in
		// any partition, so it is written first and judges duplicates as
		// orders' own key does when orders is not partitioned.
		if _, err := stage.CopyOrderIDs(ctx, sp.Conn().PgConn(), t.OrderIDsIdent(), valid); err != nil {
			return Result{}, err
		}
	}
	if _, err := stage.CopyOrders(ctx, sp.Conn().PgConn(), t.OrdersIdent(), valid); err != nil {
		return Result{}, err
	}
	if err := Reject(ctx, sp, t, batchID, rejects); err != nil {
		return Result{}, err
	}
	if err := sp.Commit(ctx); err != nil {
		return Result{}, err
	}
	res := Result{Staged: int64(len(rows)), Rejected: int64(len(rejects)), Promoted: make([]string, len(valid)), Rows: valid}
	for i := range valid {
		res.Promoted[i] = valid[i].Order.OrderID
	}
	for _, r := range rejects {
		if res.RejectedBy == nil {
			res.RejectedBy = map[string]int64{}
		}
		res.RejectedBy[r.Reason]++
	}
	return res, nil
}

// check runs the check statement sql for batchID.
func check(ctx context.Context, tx pgx.Tx, sql, batchID string) ([]verdict, error) {
	q, err := tx.Query(ctx, sql, batchID)
	if err != nil {
		return nil, err
	}
	var vs []verdict
	var v verdict
	_, err = pgx.ForEachRow(q, []any{&v.row, &v.reason, &v.detail, &v.duplicate, &v.productName, &v.category,
		&v.usdCents, &v.city, &v.state, &v.country, &v.zone}, func() error {
		vs = append(vs, v)
		return nil
	})
	return vs, err
}

// sortOut applies the verdicts to rows: rejected rows become dead letters
// carrying their normalised message, duplicates (rows whose id is taken or
// seen, and repeats of a valid row earlier in the batch) are dropped, gaps
// in the enrichment are filled (in copies), and what remains is returned in
// order_id order. Rejection is decided before duplication, so an invalid
// copy never stands in for a valid one: the first valid copy of an id wins.
// A common order is what keeps two batches that share ids from
// deadlocking on each other's inserts; any total order serves, so it is
// Go's byte order.
func sortOut(rows []transform.Row, seen []bool, verdicts []verdict) ([]transform.Row, []Rejection, error) {
	if len(verdicts) == 0 && !slices.Contains(seen, true) && strictlyIncreasing(rows) {
		return rows, nil, nil // the usual batch: nothing to drop, fill or sort
	}
	byRow := make(map[int32]*verdict, len(verdicts))
	var rejects []Rejection
	for i := range verdicts {
		v := &verdicts[i]
		if v.row < 0 || int(v.row) >= len(rows) {
			return nil, nil, fmt.Errorf("staging row %d is outside the batch of %d", v.row, len(rows))
		}
		if v.reason != nil {
			r := &rows[v.row]
			rejects = append(rejects, Rejection{OrderID: r.Order.OrderID, Reason: *v.reason, Detail: deref(v.detail), Raw: r.RawData})
		}
		byRow[v.row] = v
	}
	keep := make([]int, 0, len(rows))
	for i := range rows {
		if seen != nil && seen[i] {
			continue // a dead letter above if invalid, else a duplicate
		}
		if v := byRow[int32(i)]; v == nil || (v.reason == nil && !v.duplicate) {
			keep = append(keep, i)
		}
	}
	byID := func(a, b int) int { return cmp.Compare(rows[a].Order.OrderID, rows[b].Order.OrderID) }
	if !slices.IsSortedFunc(keep, byID) {
		slices.SortStableFunc(keep, byID)
	}
	valid := make([]transform.Row, 0, len(keep))
	for _, i := range keep {
		if n := len(valid); n > 0 && valid[n-1].Order.OrderID == rows[i].Order.OrderID {
			continue // a later valid copy of the row just kept: a duplicate
		}
		valid = append(valid, rows[i])
		if v := byRow[int32(i)]; v != nil {
			fill(&valid[len(valid)-1], v)
		}
	}
	return valid, rejects, nil
}

// strictlyIncreasing reports whether rows are sorted by order id with no id
// repeated.
func strictlyIncreasing(rows []transform.Row) bool {
	for i := 1; i < len(rows); i++ {
		if rows[i].Order.OrderID <= rows[i-1].Order.OrderID {
			return false
		}
	}
	return true
}

// fill completes r's enrichment from the lookup tables where the snapshot
// had nothing. The row is a copy: the caller's rows keep their own values.
func fill(r *transform.Row, v *verdict) {
	r.ProductName, r.Category = or(r.ProductName, v.productName), or(r.Category, v.category)
	r.City, r.State = or(r.City, v.city), or(r.State, v.state)
	r.Country, r.ShippingZone = or(r.Country, v.country), or(r.ShippingZone, v.zone)
	r.TotalUSDCents = or(r.TotalUSDCents, v.usdCents)
}

// or is own, or table when own is nil.
func or[T any](own, table *T) *T {
	if own != nil {
		return own
	}
	return table
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Rejection is a message dead-lettered before it could be promoted.
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
