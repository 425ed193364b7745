// Package stage bulk-loads with COPY in binary format, no per-row round
// trips: a batch's validation columns into the UNLOGGED staging table (no
// WAL), and validated rows whole into orders.
//
// The COPY stream is encoded here, straight from the rows, rather than
// through pgx's generic CopyFrom: that one plans an encoder per value by
// reflection and builds each numeric through math/big, which on a small
// machine cost as much CPU as PostgreSQL spent storing the rows. The
// encoding is PostgreSQL's documented binary format for the column types
// of both layouts (text, integer, numeric, timestamptz, boolean, jsonb); a
// column of another type would be rejected by the server, never silently
// misread.
package stage

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/transform"
)

// Columns are the staging columns Copy fills, in order: what set-wise
// validation reads, and where each row sits in its batch.
var Columns = []string{
	"batch_id", "row_no", "order_id", "product_id", "currency", "zip_code",
	"quantity", "unit_price", "order_timestamp", "enriched",
}

// OrderColumns are the columns CopyOrders fills: the orders table's own
// but processed_at, which defaults to the time of the insert.
var OrderColumns = []string{
	"order_id", "customer_id", "product_id", "product_name", "category",
	"quantity", "unit_price", "currency", "total_amount", "total_amount_usd",
	"zip_code", "city", "state", "country", "shipping_zone", "order_timestamp", "raw_data",
}

// columnList renders cols as a quoted, comma-separated list.
func columnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

var (
	stagingColumnList = columnList(Columns)
	orderColumnList   = columnList(OrderColumns)
)

// Copy stages what validation needs of rows under batchID inside tx and
// returns how many rows were copied. Row i of the batch is staged as row_no
// i, which is how promotion's verdicts find their way back to rows.
func Copy(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID string, rows []transform.Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	if len(rows) > math.MaxInt32 {
		return 0, fmt.Errorf("stage %d rows: a batch holds at most %d", len(rows), math.MaxInt32)
	}
	sql := "COPY " + t.Staging() + " (" + stagingColumnList + ") FROM STDIN (FORMAT binary)"
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, &encoder{batchID: batchID, staging: true, rows: rows}, sql)
	return tag.RowsAffected(), err
}

// CopyOrders copies rows whole into table, which must have the orders
// table's columns (OrderColumns), on conn, and returns how many were copied.
// Outside a transaction the COPY commits by itself. Promotion copies
// validated rows into orders with it, and the benchmark's raw baseline uses
// it too, so that baseline and pipeline pay the same client-side cost.
func CopyOrders(ctx context.Context, conn *pgconn.PgConn, table pgx.Identifier, rows []transform.Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	sql := "COPY " + table.Sanitize() + " (" + orderColumnList + ") FROM STDIN (FORMAT binary)"
	tag, err := conn.CopyFrom(ctx, &encoder{rows: rows}, sql)
	return tag.RowsAffected(), err
}

// CopyOrderIDs copies the order ids of rows into table, whose one column is
// order_id: the registry that keeps order ids unique across the partitions
// of a partitioned orders table.
func CopyOrderIDs(ctx context.Context, conn *pgconn.PgConn, table pgx.Identifier, rows []transform.Row) (int64, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	sql := "COPY " + table.Sanitize() + " (order_id) FROM STDIN (FORMAT binary)"
	tag, err := conn.CopyFrom(ctx, &encoder{idsOnly: true, rows: rows}, sql)
	return tag.RowsAffected(), err
}

// Cents encodes a cent amount as an exact numeric with two decimal places,
// for callers that pass amounts through pgx themselves.
func Cents(c int64) pgtype.Numeric {
	return pgtype.Numeric{Int: big.NewInt(c), Exp: -2, Valid: true}
}

// copyHeader starts every binary COPY stream: the signature, no flags and
// no header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// encoder is an io.Reader producing the binary COPY stream of its rows a
// few rows at a time, so memory stays at one network buffer whatever the
// batch size.
type encoder struct {
	batchID string
	staging bool // staging's columns (Columns), else the orders layout (OrderColumns)
	idsOnly bool // just order_id, for the order id registry
	rows    []transform.Row
	next    int  // next row to encode
	started bool // header written
	ended   bool // trailer written
	buf     []byte
	off     int // bytes of buf already read
}

// Read fills p with the next part of the stream, encoding rows as needed.
func (e *encoder) Read(p []byte) (int, error) {
	if e.off > 0 { // keep the unread tail at the front, so buf stays one network buffer long
		e.buf = e.buf[:copy(e.buf, e.buf[e.off:])]
		e.off = 0
	}
	for len(e.buf)-e.off < len(p) && !e.ended {
		switch {
		case !e.started:
			e.buf = append(e.buf, copyHeader...)
			e.started = true
		case e.next < len(e.rows) && e.idsOnly:
			e.buf = binary.BigEndian.AppendUint16(e.buf, 1)
			e.buf = appendText(e.buf, e.rows[e.next].Order.OrderID)
			e.next++
		case e.next < len(e.rows) && e.staging:
			e.buf = e.appendStagingRow(e.buf, e.next)
			e.next++
		case e.next < len(e.rows):
			e.buf = appendOrderRow(e.buf, &e.rows[e.next])
			e.next++
		default:
			e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff) // -1: end of data
			e.ended = true
		}
	}
	n := copy(p, e.buf[e.off:])
	e.off += n
	if n == 0 && e.ended {
		return 0, io.EOF
	}
	return n, nil
}

// appendStagingRow encodes row i in staging's layout: the field count,
// then each field's length (-1 for NULL) and value.
func (e *encoder) appendStagingRow(b []byte, i int) []byte {
	r := &e.rows[i]
	o := &r.Order
	b = binary.BigEndian.AppendUint16(b, uint16(len(Columns)))
	b = appendText(b, e.batchID)
	b = appendInt4(b, int32(i))
	b = appendText(b, o.OrderID)
	b = appendText(b, o.ProductID)
	b = appendText(b, o.Currency)
	b = appendText(b, o.ZipCode)
	b = appendInt4(b, int32(o.Quantity))
	b = appendCents(b, o.UnitPriceCents)
	b = appendTimestamp(b, o.OrderTimestamp)
	b = binary.BigEndian.AppendUint32(b, 1)
	if r.Enriched() {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendOrderRow encodes one row in the orders layout.
func appendOrderRow(b []byte, r *transform.Row) []byte {
	o := &r.Order
	b = binary.BigEndian.AppendUint16(b, uint16(len(OrderColumns)))
	b = appendText(b, o.OrderID)
	b = appendText(b, o.CustomerID)
	b = appendText(b, o.ProductID)
	b = appendNullText(b, r.ProductName)
	b = appendNullText(b, r.Category)
	b = appendInt4(b, int32(o.Quantity))
	b = appendCents(b, o.UnitPriceCents)
	b = appendText(b, o.Currency)
	b = appendCents(b, r.TotalCents)
	if r.TotalUSDCents != nil {
		b = appendCents(b, *r.TotalUSDCents)
	} else {
		b = appendNull(b)
	}
	b = appendText(b, o.ZipCode)
	b = appendNullText(b, r.City)
	b = appendNullText(b, r.State)
	b = appendNullText(b, r.Country)
	if r.ShippingZone != nil {
		b = appendInt4(b, *r.ShippingZone)
	} else {
		b = appendNull(b)
	}
	b = appendTimestamp(b, o.OrderTimestamp)
	if r.RawData == nil {
		return appendNull(b)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.RawData)+1))
	b = append(b, 1) // jsonb binary format version
	return append(b, r.RawData...)
}

func appendInt4(b []byte, v int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func appendTimestamp(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(timestampMicros(t)))
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, 0xffffffff) }

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendNullText(b []byte, s *string) []byte {
	if s == nil {
		return appendNull(b)
	}
	return appendText(b, *s)
}

// microsFromUnixToY2K is PostgreSQL's timestamp epoch, 2000-01-01 UTC, in
// microseconds after the Unix epoch.
const microsFromUnixToY2K = 946684800 * 1000000

// timestampMicros is t in PostgreSQL's binary timestamptz encoding:
// microseconds since 2000-01-01 UTC, sub-microseconds truncated (as pgx
// does).
func timestampMicros(t time.Time) int64 {
	return t.Unix()*1000000 + int64(t.Nanosecond())/1000 - microsFromUnixToY2K
}

// Numeric binary format: ndigits, weight, sign, dscale, then ndigits
// base-10000 digits, most significant first; the value is the digits read
// as a number with the first digit at position 10000^weight.
const (
	numericPos = 0x0000
	numericNeg = 0x4000
)

// appendCents encodes c cents as numeric with dscale 2, in canonical form
// (no leading or trailing zero digits), as PostgreSQL itself sends it.
func appendCents(b []byte, c int64) []byte {
	u := uint64(c)
	sign := uint16(numericPos)
	if c < 0 {
		u = -u // also right for the smallest int64
		sign = numericNeg
	}
	whole, frac := u/100, u%100
	var digits [8]uint16 // whole < 2^64/100 has at most 5 base-10000 digits, plus one fractional
	n := 0
	for w := whole; w > 0; w /= 10000 {
		n++
	}
	weight := n - 1
	for i, w := n-1, whole; i >= 0; i, w = i-1, w/10000 {
		digits[i] = uint16(w % 10000)
	}
	if frac != 0 {
		digits[n] = uint16(frac * 100) // two decimals are the top of one base-10000 digit
		n++
	}
	start := 0
	for start < n && digits[start] == 0 { // only when whole == 0
		start++
	}
	for n > start && digits[n-1] == 0 {
		n--
	}
	if start == n { // zero
		sign, weight = numericPos, 0
	} else if whole == 0 {
		weight = -1
	}
	b = binary.BigEndian.AppendUint32(b, uint32(8+2*(n-start)))
	b = binary.BigEndian.AppendUint16(b, uint16(n-start))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, 2)
	for _, d := range digits[start:n] {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}
