package ingest

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
)

// collect reads r and returns every emitted chunk.
func collect(t *testing.T, r io.Reader, format string, chunk int) ([][][]byte, int) {
	t.Helper()
	var chunks [][][]byte
	n, err := Read(r, Config{Format: format, Chunk: chunk}, func(msgs [][]byte) error {
		chunks = append(chunks, msgs)
		return nil
	})
	require.NoError(t, err)
	return chunks, n
}

// all reads r and returns the messages as strings.
func all(t *testing.T, r io.Reader, format string) []string {
	t.Helper()
	chunks, n := collect(t, r, format, 0)
	var out []string
	for _, c := range chunks {
		for _, m := range c {
			out = append(out, string(m))
		}
	}
	require.Len(t, out, n, "the count returned is the number of messages emitted")
	return out
}

const validJSON = `{"order_id":"ORD-1","customer_id":"C","product_id":"P","quantity":1,"unit_price":"1.00","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`

func TestNDJSON(t *testing.T) {
	t.Parallel()
	in := "{\"a\":1}\n\n   \n\t{\"b\":2}  \r\n{\"c\":3}\r\n\r\nnot json\n{\"d\":4}"
	require.Equal(t, []string{`{"a":1}`, `{"b":2}`, `{"c":3}`, `not json`, `{"d":4}`}, all(t, strings.NewReader(in), NDJSON))
}

func TestNDJSONByteOrderMark(t *testing.T) {
	t.Parallel()
	for _, format := range []string{NDJSON, Auto} {
		msgs := all(t, strings.NewReader("\ufeff"+validJSON+"\n"+validJSON), format)
		require.Len(t, msgs, 2)
		for _, m := range msgs {
			_, err := order.Decode([]byte(m))
			require.NoError(t, err, "%s: %q", format, m)
		}
	}
}

func TestNDJSONHugeLineBecomesAnOversizedMark(t *testing.T) {
	t.Parallel()
	huge := `{"order_id":"` + strings.Repeat("x", 9<<20) + `"}`
	in := validJSON + "\n" + huge + "\n" + validJSON + "\n"
	chunks, n := collect(t, strings.NewReader(in), NDJSON, 10)
	require.Equal(t, 3, n)
	require.Len(t, chunks, 1)
	msgs := chunks[0]
	require.Equal(t, validJSON, string(msgs[0]))
	require.Equal(t, validJSON, string(msgs[2]), "the line after the huge one is read whole")
	require.Equal(t, order.OversizedMark(len(huge), []byte(huge)), msgs[1], "only the size and the first bytes are queued")
	require.Less(t, len(msgs[1]), order.KeptPrefixBytes+64)
	// ...and so dead-lettered with its size.
	_, err := order.Decode(msgs[1])
	var rej *order.Rejection
	require.ErrorAs(t, err, &rej)
	require.Equal(t, order.ReasonTooLarge, rej.Reason)
	require.Contains(t, rej.Detail, fmt.Sprintf("%d bytes, limit %d", len(huge), order.DefaultMaxBytes))
}

// TestCapIsConfigurable checks Config.MaxBytes on both formats, at the
// edge: a record of exactly the cap is queued as it is.
func TestCapIsConfigurable(t *testing.T) {
	t.Parallel()
	const limit = 20 << 10
	at := `{"order_id":"` + strings.Repeat("a", limit-len(`{"order_id":""}`)) + `"}`
	over := `{"order_id":"` + strings.Repeat("b", limit) + `"}`
	var got [][]byte
	n, err := Read(strings.NewReader(at+"\n"+over+"\n"), Config{Format: NDJSON, MaxBytes: limit}, func(m [][]byte) error {
		got = append(got, m...)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, at, string(got[0]))
	require.Equal(t, order.OversizedMark(len(over), []byte(over)), got[1])

	got = nil
	csvIn := "order_id,user_agent\nORD-1," + strings.Repeat("u", limit) + "\nORD-2,ok\n"
	_, err = Read(strings.NewReader(csvIn), Config{Format: CSV, MaxBytes: limit}, func(m [][]byte) error {
		got = append(got, m...)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 2)
	rej := order.Options{MaxBytes: limit}.Oversized(got[0])
	require.NotNil(t, rej, "the long record is queued as a mark")
	require.Less(t, len(got[0]), order.KeptPrefixBytes+64)
	require.Equal(t, `{"order_id":"ORD-2","user_agent":"ok"}`, string(got[1]))
}

// TestCSVUnterminatedQuoteStopsAtTheRecord checks that a quote left open
// stops the read at its record, with its line and the records queued
// before it, instead of folding every later record into one message.
func TestCSVUnterminatedQuoteStopsAtTheRecord(t *testing.T) {
	t.Parallel()
	in := "order_id,quantity\n" +
		"ORD-1,1\n" +
		"ORD-2,2\n" +
		"ORD-3,\"3\n" + // the quote is never closed
		"ORD-4,4\n" +
		"ORD-5,5\n"
	for _, chunk := range []int{1, 2, 10} {
		var msgs []string
		n, err := Read(strings.NewReader(in), Config{Format: CSV, Chunk: chunk}, func(m [][]byte) error {
			for _, b := range m {
				msgs = append(msgs, string(b))
			}
			return nil
		})
		var rec *RecordError
		require.ErrorAs(t, err, &rec, "chunk %d: %v", chunk, msgs)
		require.Equal(t, 4, rec.Line, "the line the bad record starts on")
		require.Equal(t, 2, rec.Queued)
		require.Equal(t, 2, n)
		require.Equal(t, []string{`{"order_id":"ORD-1","quantity":1}`, `{"order_id":"ORD-2","quantity":2}`}, msgs,
			"the records before it are queued, nothing from it on")
		require.ErrorIs(t, err, csv.ErrQuote)
		require.Contains(t, err.Error(), "line 4")
		require.Contains(t, err.Error(), "2 records before it were queued")
	}
}

func TestCSV(t *testing.T) {
	t.Parallel()
	in := "order_id,customer_id,product_id,quantity,unit_price,currency,zip_code,order_timestamp\n" +
		"ORD-1,CUST-1,PROD-1,2,19.99,usd,10001,2024-05-01T12:30:00Z\r\n" +
		"\"ORD-2\",\"CUST, Jr.\",PROD-2,1,1e2,JPY,\"10001\",2024-05-01 12:30:00\n"
	msgs := all(t, strings.NewReader(in), CSV)
	require.Len(t, msgs, 2)

	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(msgs[0]), &obj))
	require.Equal(t, map[string]any{
		"order_id": "ORD-1", "customer_id": "CUST-1", "product_id": "PROD-1", "quantity": 2.0, "unit_price": 19.99,
		"currency": "usd", "zip_code": "10001", "order_timestamp": "2024-05-01T12:30:00Z",
	}, obj, "quantity and unit_price are JSON numbers, the rest strings")

	o, err := order.Decode([]byte(msgs[0]))
	require.NoError(t, err)
	require.Equal(t, int64(2), o.Quantity)
	require.Equal(t, int64(1999), o.UnitPriceCents)
	require.Equal(t, "USD", o.Currency)

	o, err = order.Decode([]byte(msgs[1]))
	require.NoError(t, err)
	require.Equal(t, "CUST, Jr.", o.CustomerID)
	require.Equal(t, int64(10000), o.UnitPriceCents)
	require.Equal(t, "10001", o.ZipCode, "zip codes stay strings even when numeric")
}

func TestCSVHeaderNormalised(t *testing.T) {
	t.Parallel()
	for _, bom := range []string{"", "\ufeff"} {
		for _, header := range []string{" Order_ID ,QUANTITY", `"order_id","quantity"`} {
			msgs := all(t, strings.NewReader(bom+header+"\nORD-1,3\n"), Auto)
			require.Equal(t, []string{`{"order_id":"ORD-1","quantity":3}`}, msgs, "header %q with BOM %q", header, bom)
		}
	}
}

func TestCSVNonNumericValuesStayStrings(t *testing.T) {
	t.Parallel()
	in := "order_id,quantity,unit_price\nORD-1,many,\nORD-2, 4 ,\"1,5\"\n"
	msgs := all(t, strings.NewReader(in), CSV)
	require.Equal(t, []string{
		`{"order_id":"ORD-1","quantity":"many","unit_price":""}`,
		`{"order_id":"ORD-2","quantity":4,"unit_price":"1,5"}`,
	}, msgs)
	_, err := order.Decode([]byte(msgs[0]))
	var rej *order.Rejection
	require.ErrorAs(t, err, &rej)
	require.Equal(t, "ORD-1", rej.OrderID, "a broken row is dead-lettered under its order id")
}

func TestCSVRaggedAndBrokenRowsStillMakeOneMessageEach(t *testing.T) {
	t.Parallel()
	in := "order_id,quantity\n" +
		"ORD-1\n" + // too few fields
		"ORD-2,2,extra,fields\n" + // too many
		"ORD-3,bad\"quote\n" + // a parse error
		"ORD-4,4\n"
	msgs := all(t, strings.NewReader(in), CSV)
	require.Len(t, msgs, 4)
	require.Equal(t, `{"order_id":"ORD-1"}`, msgs[0])
	require.Equal(t, `{"order_id":"ORD-2","quantity":2}`, msgs[1])
	require.True(t, strings.HasPrefix(msgs[2], "csv error: "), msgs[2])
	require.Contains(t, msgs[2], "line 4")
	require.Equal(t, `{"order_id":"ORD-4","quantity":4}`, msgs[3])

	_, err := order.Decode([]byte(msgs[2]))
	var rej *order.Rejection
	require.ErrorAs(t, err, &rej)
	require.Equal(t, order.ReasonMalformedJSON, rej.Reason)
}

func TestCSVWithoutHeader(t *testing.T) {
	t.Parallel()
	_, err := Read(strings.NewReader(""), Config{Format: CSV, Chunk: 10}, func([][]byte) error { return nil })
	require.ErrorContains(t, err, "read CSV header")
}

func TestAutoDetect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     []string
	}{
		{"object", `{"a":1}` + "\n" + `{"b":2}`, []string{`{"a":1}`, `{"b":2}`}},
		{"leading blank lines", "\n\r\n  \t" + `{"a":1}`, []string{`{"a":1}`}},
		{"array line", `[1,2]`, []string{`[1,2]`}},
		{"BOM then object", "\ufeff" + `{"a":1}`, []string{`{"a":1}`}},
		{"CSV header", "order_id,quantity\nORD-1,2\n", []string{`{"order_id":"ORD-1","quantity":2}`}},
		{"BOM then CSV", "\ufefforder_id\nORD-1\n", []string{`{"order_id":"ORD-1"}`}},
		{"empty input", "", nil},
		{"blank input", "\n \n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, format := range []string{Auto, ""} {
				require.Equal(t, tc.want, all(t, strings.NewReader(tc.in), format))
			}
		})
	}
}

func TestChunking(t *testing.T) {
	t.Parallel()
	var nd, csv strings.Builder
	csv.WriteString("order_id\n")
	for i := range 12 {
		nd.WriteString(`{"i":` + string(rune('a'+i)) + "}\n")
		csv.WriteString("ORD-" + string(rune('a'+i)) + "\n")
	}
	for _, in := range []struct{ format, data string }{{NDJSON, nd.String()}, {CSV, csv.String()}} {
		for _, tc := range []struct {
			chunk int
			sizes []int
		}{
			{5, []int{5, 5, 2}},
			{4, []int{4, 4, 4}},
			{1, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
			{100, []int{12}},
			{0, []int{12}}, // the default, 5000
			{-3, []int{12}},
		} {
			chunks, n := collect(t, strings.NewReader(in.data), in.format, tc.chunk)
			require.Equal(t, 12, n, "%s chunk %d", in.format, tc.chunk)
			var sizes []int
			var flat []string
			for _, c := range chunks {
				sizes = append(sizes, len(c))
				for _, m := range c {
					flat = append(flat, string(m))
				}
			}
			require.Equal(t, tc.sizes, sizes, "%s chunk %d", in.format, tc.chunk)
			// Chunks handed out earlier are not overwritten by later ones.
			require.Len(t, flat, 12)
			require.Len(t, uniq(flat), 12, "%s chunk %d: %v", in.format, tc.chunk, flat)
		}
	}
}

func uniq(ss []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return m
}

func TestEmitErrorPropagates(t *testing.T) {
	t.Parallel()
	boom := errors.New("queue full")
	nd := strings.Repeat(validJSON+"\n", 10)
	csv := "order_id\n" + strings.Repeat("ORD-1\n", 10)
	for _, in := range []struct{ format, data string }{{NDJSON, nd}, {CSV, csv}} {
		for _, failAt := range []int{1, 2, 4} { // 4: the final, partial chunk
			calls := 0
			n, err := Read(strings.NewReader(in.data), Config{Format: in.format, Chunk: 3}, func(msgs [][]byte) error {
				calls++
				if calls == failAt {
					return boom
				}
				return nil
			})
			require.ErrorIs(t, err, boom, "%s fail at %d", in.format, failAt)
			require.Equal(t, 3*(failAt-1), n, "only chunks emitted successfully count")
			require.Equal(t, failAt, calls, "nothing is emitted after a failure")
		}
	}
}

func TestReaderErrorPropagates(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk on fire")
	for _, in := range []struct{ format, data string }{{NDJSON, validJSON + "\n"}, {CSV, "order_id\nORD-1\n"}} {
		r := io.MultiReader(strings.NewReader(in.data), iotest.ErrReader(boom))
		_, err := Read(r, Config{Format: in.format, Chunk: 10}, func([][]byte) error { return nil })
		require.ErrorIs(t, err, boom, in.format)
	}
	// A failing reader before any data fails CSV on its header.
	_, err := Read(iotest.ErrReader(boom), Config{Format: CSV, Chunk: 10}, func([][]byte) error { return nil })
	require.ErrorIs(t, err, boom)
}

func TestUnknownFormat(t *testing.T) {
	t.Parallel()
	called := false
	n, err := Read(strings.NewReader(validJSON), Config{Format: "xml", Chunk: 10}, func([][]byte) error { called = true; return nil })
	require.ErrorContains(t, err, `unknown format "xml"`)
	require.Zero(t, n)
	require.False(t, called)
}
