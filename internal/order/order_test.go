package order

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// validFields is a complete, valid message as a map, so that cases can
// change or drop one field at a time.
func validFields() map[string]any {
	return map[string]any{
		"order_id":        "ORD-1",
		"customer_id":     "CUST-1",
		"product_id":      "PROD-1",
		"quantity":        2,
		"unit_price":      "19.99",
		"currency":        "USD",
		"zip_code":        "10001",
		"order_timestamp": "2024-05-01T12:30:00Z",
	}
}

// with returns the valid message with the given fields replaced; a nil value
// deletes the field.
func with(t *testing.T, changes map[string]any) []byte {
	t.Helper()
	m := validFields()
	for k, v := range changes {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// rejection asserts that err is a *Rejection and returns it.
func rejection(t *testing.T, err error) *Rejection {
	t.Helper()
	require.Error(t, err)
	var rej *Rejection
	require.True(t, errors.As(err, &rej), "error %T %v is not a *Rejection", err, err)
	// Dead letters go to text columns, which refuse NUL and invalid UTF-8:
	// one unstorable rejection would fail its whole batch.
	for _, s := range []string{rej.OrderID, rej.Reason, rej.Detail} {
		require.True(t, utf8.ValidString(s), "%q is not valid UTF-8", s)
		require.NotContains(t, s, "\x00")
	}
	require.LessOrEqual(t, len(rej.OrderID), maxIDLen)
	return rej
}

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	o, err := Decode(with(t, nil))
	require.NoError(t, err)
	require.Equal(t, Order{
		OrderID: "ORD-1", CustomerID: "CUST-1", ProductID: "PROD-1", Quantity: 2, UnitPriceCents: 1999,
		Currency: "USD", ZipCode: "10001", OrderTimestamp: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC),
	}, o)
}

func TestDecodeAcceptedForms(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		changes map[string]any
		check   func(t *testing.T, o Order)
	}{
		{"price as numeric string", map[string]any{"unit_price": "19.99"}, func(t *testing.T, o Order) { require.EqualValues(t, 1999, o.UnitPriceCents) }},
		{"price as number", map[string]any{"unit_price": 19.99}, func(t *testing.T, o Order) { require.EqualValues(t, 1999, o.UnitPriceCents) }},
		{"price with exponent", map[string]any{"unit_price": "1e2"}, func(t *testing.T, o Order) { require.EqualValues(t, 10000, o.UnitPriceCents) }},
		{"price with spaces", map[string]any{"unit_price": " 5.5 "}, func(t *testing.T, o Order) { require.EqualValues(t, 550, o.UnitPriceCents) }},
		{"quantity as string", map[string]any{"quantity": "7"}, func(t *testing.T, o Order) { require.EqualValues(t, 7, o.Quantity) }},
		{"quantity as whole float", map[string]any{"quantity": 3.0}, func(t *testing.T, o Order) { require.EqualValues(t, 3, o.Quantity) }},
		{"quantity with exponent", map[string]any{"quantity": json.RawMessage("1e2")}, func(t *testing.T, o Order) { require.EqualValues(t, 100, o.Quantity) }},
		{"quantity at int32 max", map[string]any{"quantity": math.MaxInt32, "unit_price": "0.01"}, func(t *testing.T, o Order) { require.EqualValues(t, math.MaxInt32, o.Quantity) }},
		{"quantity zero left for promotion", map[string]any{"quantity": 0}, func(t *testing.T, o Order) { require.Zero(t, o.Quantity) }},
		{"negative price left for promotion", map[string]any{"unit_price": "-3.10"}, func(t *testing.T, o Order) { require.EqualValues(t, -310, o.UnitPriceCents) }},
		{"lower-case currency", map[string]any{"currency": "jpy"}, func(t *testing.T, o Order) { require.Equal(t, "JPY", o.Currency) }},
		{"padded currency", map[string]any{"currency": " eur "}, func(t *testing.T, o Order) { require.Equal(t, "EUR", o.Currency) }},
		{"ids are trimmed", map[string]any{"order_id": "  ORD-9 ", "zip_code": "\t10001\n"}, func(t *testing.T, o Order) {
			require.Equal(t, "ORD-9", o.OrderID)
			require.Equal(t, "10001", o.ZipCode)
		}},
		{"optional fields", map[string]any{"user_agent": "curl/8", "ip": "198.51.100.7", "session_id": "s-1"}, func(t *testing.T, o Order) {
			require.Equal(t, "curl/8", o.UserAgent)
			require.Equal(t, "198.51.100.7", o.IP)
			require.Equal(t, "s-1", o.SessionID)
		}},
		{"RFC 3339", map[string]any{"order_timestamp": "2024-05-01T12:30:00Z"}, func(t *testing.T, o Order) { require.Equal(t, ts, o.OrderTimestamp) }},
		{"RFC 3339 with offset", map[string]any{"order_timestamp": "2024-05-01T14:30:00+02:00"}, func(t *testing.T, o Order) {
			require.Equal(t, ts, o.OrderTimestamp)
			require.Equal(t, time.UTC, o.OrderTimestamp.Location())
		}},
		{"RFC 3339 nano", map[string]any{"order_timestamp": "2024-05-01T12:30:00.123456789Z"}, func(t *testing.T, o Order) {
			require.Equal(t, ts.Add(123456789), o.OrderTimestamp)
		}},
		{"space separated", map[string]any{"order_timestamp": "2024-05-01 12:30:00"}, func(t *testing.T, o Order) { require.Equal(t, ts, o.OrderTimestamp) }},
		{"T without zone", map[string]any{"order_timestamp": "2024-05-01T12:30:00"}, func(t *testing.T, o Order) { require.Equal(t, ts, o.OrderTimestamp) }},
		{"unix seconds", map[string]any{"order_timestamp": ts.Unix()}, func(t *testing.T, o Order) { require.Equal(t, ts, o.OrderTimestamp) }},
		{"unix seconds with fraction", map[string]any{"order_timestamp": json.RawMessage(fmt.Sprintf("%d.5", ts.Unix()))}, func(t *testing.T, o Order) {
			require.Equal(t, ts.Add(500*time.Millisecond), o.OrderTimestamp)
		}},
		{"last second of 9999", map[string]any{"order_timestamp": "9999-12-31T23:59:59Z"}, func(t *testing.T, o Order) {
			require.Equal(t, 9999, o.OrderTimestamp.Year())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := Decode(with(t, tc.changes))
			require.NoError(t, err)
			tc.check(t, o)
		})
	}
}

func TestDecodeRejections(t *testing.T) {
	t.Parallel()
	valid := string(with(t, nil))
	tests := []struct {
		name   string
		raw    []byte
		reason string
		id     string // expected Rejection.OrderID
	}{
		{"malformed JSON", []byte(`{"order_id": "ORD-1", "customer_id": `), ReasonMalformedJSON, ""},
		{"not JSON at all", []byte(`order ORD-1`), ReasonMalformedJSON, ""},
		{"empty payload", []byte(``), ReasonMalformedJSON, ""},
		{"whitespace payload", []byte(" \n\t"), ReasonMalformedJSON, ""},
		{"trailing object", []byte(valid + ` {"order_id": "ORD-2"}`), ReasonMalformedJSON, ""},
		{"trailing garbage", []byte(valid + ` x`), ReasonMalformedJSON, ""},
		{"trailing brace", []byte(valid + `}`), ReasonMalformedJSON, ""},
		{"trailing bracket", []byte(valid + "\n]"), ReasonMalformedJSON, ""},
		{"payload too large", []byte(`{"order_id": "` + strings.Repeat("a", DefaultMaxBytes) + `"}`), ReasonTooLarge, ""},
		{"invalid UTF-8", []byte("{\"order_id\": \"ORD-\xff\"}"), ReasonInvalidUTF8, ""},
		{"top-level array", []byte(`[` + valid + `]`), ReasonWrongType, ""},
		{"top-level string", []byte(`"ORD-1"`), ReasonWrongType, ""},
		{"JSON null", []byte(`null`), ReasonMissingField, ""},
		{"order_id is a fraction", with(t, map[string]any{"order_id": 12.5}), ReasonWrongType, ""},
		{"order_id is a bool", with(t, map[string]any{"order_id": true}), ReasonWrongType, ""},
		{"customer_id is a fraction", with(t, map[string]any{"customer_id": 5.5}), ReasonWrongType, "ORD-1"},
		{"customer_id in exponent form", with(t, map[string]any{"customer_id": json.RawMessage("5e3")}), ReasonWrongType, "ORD-1"},
		{"customer_id is an object", with(t, map[string]any{"customer_id": map[string]any{}}), ReasonWrongType, "ORD-1"},
		{"product_id is a number", with(t, map[string]any{"product_id": 5}), ReasonWrongType, "ORD-1"},
		{"zip_code is a number", with(t, map[string]any{"zip_code": 2101}), ReasonWrongType, "ORD-1"},
		{"raw_data is a string", with(t, map[string]any{"raw_data": "x"}), ReasonWrongType, "ORD-1"},
		{"raw_data user_agent is a number", with(t, map[string]any{"raw_data": map[string]any{"user_agent": 5}}), ReasonWrongType, "ORD-1"},
		{"raw_data ip_address too long", with(t, map[string]any{"raw_data": map[string]any{"ip_address": strings.Repeat("1", 65)}}), ReasonInvalidField, "ORD-1"},
		{"timestamp with an ambiguous zone name", with(t, map[string]any{"order_timestamp": "2024-05-01 12:30:00 EST"}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp with an hours-only offset", with(t, map[string]any{"order_timestamp": "2024-05-01T12:30:00+05"}), ReasonBadTimestamp, "ORD-1"},
		{"oversized mark", []byte("\x1eTL5000000\x1f{\"order_id\": \"ORD-1\""), ReasonTooLarge, ""},
		{"currency is a bool", with(t, map[string]any{"currency": true}), ReasonWrongType, "ORD-1"},
		{"quantity is a word", with(t, map[string]any{"quantity": "many"}), ReasonWrongType, "ORD-1"},
		{"quantity is fractional", with(t, map[string]any{"quantity": 1.5}), ReasonWrongType, "ORD-1"},
		{"quantity is an object", with(t, map[string]any{"quantity": map[string]any{}}), ReasonWrongType, "ORD-1"},
		{"quantity is empty", with(t, map[string]any{"quantity": ""}), ReasonWrongType, "ORD-1"},
		{"quantity is NaN", with(t, map[string]any{"quantity": "NaN"}), ReasonWrongType, "ORD-1"},
		{"quantity is infinite", with(t, map[string]any{"quantity": "Inf"}), ReasonWrongType, "ORD-1"},
		{"quantity is NUL", with(t, map[string]any{"quantity": "\x00"}), ReasonWrongType, "ORD-1"},
		{"price is a word", with(t, map[string]any{"unit_price": "cheap"}), ReasonWrongType, "ORD-1"},
		{"price is NaN", with(t, map[string]any{"unit_price": "NaN"}), ReasonWrongType, "ORD-1"},
		{"price is infinite", with(t, map[string]any{"unit_price": "-Infinity"}), ReasonWrongType, "ORD-1"},
		{"price is a bool", with(t, map[string]any{"unit_price": false}), ReasonWrongType, "ORD-1"},
		{"price out of range", with(t, map[string]any{"unit_price": "1e12"}), ReasonInvalidField, "ORD-1"},
		{"hex float price", with(t, map[string]any{"unit_price": "0x1p1"}), ReasonWrongType, "ORD-1"},
		{"Inf price", with(t, map[string]any{"unit_price": "Inf"}), ReasonWrongType, "ORD-1"},
		{"missing order_id", with(t, map[string]any{"order_id": nil}), ReasonMissingField, ""},
		{"missing customer_id", with(t, map[string]any{"customer_id": nil}), ReasonMissingField, "ORD-1"},
		{"missing product_id", with(t, map[string]any{"product_id": nil}), ReasonMissingField, "ORD-1"},
		{"missing quantity", with(t, map[string]any{"quantity": nil}), ReasonMissingField, "ORD-1"},
		{"null quantity", with(t, map[string]any{"quantity": json.RawMessage("null")}), ReasonMissingField, "ORD-1"},
		{"missing unit_price", with(t, map[string]any{"unit_price": nil}), ReasonMissingField, "ORD-1"},
		{"missing currency", with(t, map[string]any{"currency": nil}), ReasonMissingField, "ORD-1"},
		{"missing zip_code", with(t, map[string]any{"zip_code": nil}), ReasonMissingField, "ORD-1"},
		{"missing order_timestamp", with(t, map[string]any{"order_timestamp": nil}), ReasonMissingField, "ORD-1"},
		{"null order_timestamp", with(t, map[string]any{"order_timestamp": json.RawMessage("null")}), ReasonMissingField, "ORD-1"},
		{"empty order_id", with(t, map[string]any{"order_id": ""}), ReasonMissingField, ""},
		{"blank customer_id", with(t, map[string]any{"customer_id": "   "}), ReasonMissingField, "ORD-1"},
		{"empty product_id", with(t, map[string]any{"product_id": ""}), ReasonMissingField, "ORD-1"},
		{"empty zip_code", with(t, map[string]any{"zip_code": ""}), ReasonMissingField, "ORD-1"},
		{"empty currency", with(t, map[string]any{"currency": ""}), ReasonMissingField, "ORD-1"},
		{"NUL in order_id", with(t, map[string]any{"order_id": "ORD\x001"}), ReasonInvalidField, ""}, // not storable as an id
		{"NUL in product_id", with(t, map[string]any{"product_id": "P\x00"}), ReasonInvalidField, "ORD-1"},
		{"NUL in user_agent", with(t, map[string]any{"user_agent": "curl\x00"}), ReasonInvalidField, "ORD-1"},
		{"order_id too long", with(t, map[string]any{"order_id": strings.Repeat("x", maxIDLen+1)}), ReasonInvalidField, ""},
		{"user_agent too long", with(t, map[string]any{"user_agent": strings.Repeat("x", 1025)}), ReasonInvalidField, "ORD-1"},
		{"currency of two letters", with(t, map[string]any{"currency": "US"}), ReasonInvalidField, "ORD-1"},
		{"currency with a digit", with(t, map[string]any{"currency": "US1"}), ReasonInvalidField, "ORD-1"},
		{"currency spelled out", with(t, map[string]any{"currency": "dollar"}), ReasonInvalidField, "ORD-1"},
		{"non-ASCII currency", with(t, map[string]any{"currency": "ÉUR"}), ReasonInvalidField, "ORD-1"},
		{"timestamp is words", with(t, map[string]any{"order_timestamp": "yesterday"}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp date only", with(t, map[string]any{"order_timestamp": "2024-05-01"}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp day out of range", with(t, map[string]any{"order_timestamp": "2024-02-30T00:00:00Z"}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp is a bool", with(t, map[string]any{"order_timestamp": true}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp before 1970", with(t, map[string]any{"order_timestamp": "1969-12-31T23:59:59Z"}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp before 1970 in UTC", with(t, map[string]any{"order_timestamp": "1970-01-01T00:30:00+01:00"}), ReasonBadTimestamp, "ORD-1"},
		{"timestamp after 9999 in UTC", with(t, map[string]any{"order_timestamp": "9999-12-31T23:59:59-01:00"}), ReasonBadTimestamp, "ORD-1"},
		{"negative unix seconds", with(t, map[string]any{"order_timestamp": -1}), ReasonBadTimestamp, "ORD-1"},
		{"unix seconds past 9999", with(t, map[string]any{"order_timestamp": 253402300800}), ReasonBadTimestamp, "ORD-1"},
		{"unix seconds overflow", with(t, map[string]any{"order_timestamp": json.RawMessage("1e400")}), ReasonBadTimestamp, "ORD-1"},
		{"quantity above int32", with(t, map[string]any{"quantity": int64(math.MaxInt32) + 1}), ReasonQuantityRange, "ORD-1"},
		{"quantity below int32", with(t, map[string]any{"quantity": int64(math.MinInt32) - 1}), ReasonQuantityRange, "ORD-1"},
		{"quantity beyond int64", with(t, map[string]any{"quantity": json.RawMessage("99999999999999999999")}), ReasonQuantityRange, "ORD-1"},
		{"quantity beyond int64 as string", with(t, map[string]any{"quantity": "-99999999999999999999"}), ReasonQuantityRange, "ORD-1"},
		{"quantity huge exponent", with(t, map[string]any{"quantity": json.RawMessage("1e20")}), ReasonQuantityRange, "ORD-1"},
		{"quantity beyond float", with(t, map[string]any{"quantity": json.RawMessage("1e400")}), ReasonQuantityRange, "ORD-1"},
		{"total beyond any order", with(t, map[string]any{"quantity": 1000001, "unit_price": "1000000"}), ReasonQuantityRange, "ORD-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var o Order
			var err error
			require.NotPanics(t, func() { o, err = Decode(tc.raw) })
			rej := rejection(t, err)
			require.Equal(t, tc.reason, rej.Reason, "detail: %s", rej.Detail)
			require.Equal(t, tc.id, rej.OrderID)
			require.NotEmpty(t, rej.Detail)
			require.Equal(t, rej.Reason+": "+rej.Detail, rej.Error())
			require.Zero(t, o)
		})
	}
}

func TestDecodeTotalBound(t *testing.T) {
	t.Parallel()
	// The largest promotable order, 1000 units at the largest price, still
	// decodes; one more unit does not.
	o, err := Decode(with(t, map[string]any{"quantity": 1000, "unit_price": "1000000000"}))
	require.NoError(t, err)
	require.EqualValues(t, 1000*maxCents, o.Quantity*o.UnitPriceCents)

	_, err = Decode(with(t, map[string]any{"quantity": -1001, "unit_price": "1000000000"}))
	require.Equal(t, ReasonQuantityRange, rejection(t, err).Reason)
}

func TestPeekID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want string
	}{
		{`{"order_id": "ORD-7", "quantity": "many", "customer_id": 1}`, "ORD-7"},
		{`{"order_id": 7}`, "7"}, // an integer id, as Decode reads it
		{`{"order_id": 7.5}`, ""},
		{`{"order_id": null}`, ""},
		{`{"order_id": "` + strings.Repeat("x", maxIDLen+1) + `"}`, ""},
		{`{"order_id": "A\u0000B"}`, ""},
		{`{"order_id": "ORD-7"`, ""},
		{`["ORD-7"]`, ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, peekID([]byte(tc.raw)), tc.raw)
	}
}

func TestParseCents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{`19.99`, 1999},
		{`"19.99"`, 1999},
		{`" 19.99 "`, 1999},
		{`0`, 0},
		{`"-0"`, 0},
		{`1e2`, 10000},
		{`"1E-2"`, 1},
		{`0.004`, 0},
		{`0.005`, 1},   // half rounds away from zero
		{`-0.005`, -1}, // on both sides
		{`1.005`, 101}, // although 1.005*100 is 100.49999999999999 in float
		{`2.675`, 268}, // likewise 267.49999999999997
		{`-2.675`, -268},
		{`1.0049`, 100},
		{`0.125`, 13},
		{`-0.125`, -13},
		{`0.0000001`, 0},
		{`999999999.99`, 99999999999},
		{`1000000000`, 100000000000},
		{`-1000000000`, -100000000000},
	}
	for _, tc := range tests {
		got, err := ParseCents(json.RawMessage(tc.in))
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{`"abc"`, `""`, `true`, `null`, `{}`, `"NaN"`, `"Inf"`, `1000000000.01`, `-1e10`, `1e308`, `"1,5"`} {
		_, err := ParseCents(json.RawMessage(bad))
		require.Error(t, err, bad)
	}
}

func TestFormatCents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0.00"},
		{1, "0.01"},
		{-1, "-0.01"},
		{99, "0.99"},
		{100, "1.00"},
		{1999, "19.99"},
		{-1999, "-19.99"},
		{-100, "-1.00"},
		{100000000000, "1000000000.00"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, FormatCents(tc.in), tc.in)
		back, err := ParseCents(json.RawMessage(`"` + tc.want + `"`))
		require.NoError(t, err)
		require.Equal(t, tc.in, back, "ParseCents(FormatCents(%d))", tc.in)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []map[string]any{
		nil,
		{"unit_price": "-0.01", "quantity": -4, "currency": "jpy"},
		{"order_timestamp": "2024-05-01T14:30:00.000000001+02:00", "user_agent": "Mozilla <5.0> & co", "ip": "::1", "session_id": "s"},
		{"order_timestamp": 1700000000.25, "unit_price": 1.005, "order_id": " padded "},
		{"customer_id": "ünïcødé ✓", "zip_code": "75008 Paris"},
	}
	for i, changes := range tests {
		o, err := Decode(with(t, changes))
		require.NoError(t, err, "case %d", i)
		msg := o.Message()
		require.Equal(t, FormatCents(o.UnitPriceCents), msg.UnitPrice)
		require.Equal(t, o.OrderTimestamp.Format(time.RFC3339Nano), msg.OrderTimestamp)
		b, err := json.Marshal(msg)
		require.NoError(t, err)
		again, err := Decode(b)
		require.NoError(t, err, "case %d: %s", i, b)
		require.Equal(t, o, again, "case %d", i)
		require.True(t, o.OrderTimestamp.Equal(again.OrderTimestamp))
	}
}

func TestDecodeNeverPanics(t *testing.T) {
	t.Parallel()
	// Every prefix of a valid message, and of one with every optional field,
	// is either a valid order or a Rejection.
	full := string(with(t, map[string]any{"user_agent": "ua", "ip": "1.2.3.4", "session_id": "s"}))
	for n := 0; n <= len(full); n++ {
		var err error
		require.NotPanics(t, func() { _, err = Decode([]byte(full[:n])) })
		if n < len(full) {
			require.NotEmpty(t, rejection(t, err).Reason, "prefix %d", n)
		} else {
			require.NoError(t, err)
		}
	}
}

func ExampleDecode() {
	o, err := Decode([]byte(`{"order_id": "ORD-1", "customer_id": "CUST-9", "product_id": "PROD-3",
		"quantity": "2", "unit_price": 1000, "currency": "jpy", "zip_code": "10001",
		"order_timestamp": "2024-05-01 12:30:00"}`))
	fmt.Println(o.OrderID, o.Quantity, o.UnitPriceCents, o.Currency, o.OrderTimestamp.Format(time.RFC3339), err)

	_, err = Decode([]byte(`{"order_id": "ORD-2", "customer_id": 7.5}`))
	var rej *Rejection
	if errors.As(err, &rej) {
		fmt.Println(rej.OrderID, rej.Reason)
	}
	// Output:
	// ORD-1 2 100000 JPY 2024-05-01T12:30:00Z <nil>
	// ORD-2 wrong_type
}

func TestDecodeUnixSecondsAsString(t *testing.T) {
	t.Parallel()
	o, err := Decode(with(t, map[string]any{"order_timestamp": "1700000000"}))
	require.NoError(t, err)
	require.Equal(t, time.Unix(1700000000, 0).UTC(), o.OrderTimestamp)
}

func TestDecodeNonObjectNamesNoGoType(t *testing.T) {
	t.Parallel()
	_, err := Decode([]byte(`[1, 2]`))
	var rej *Rejection
	require.ErrorAs(t, err, &rej)
	require.Equal(t, ReasonWrongType, rej.Reason)
	require.Contains(t, rej.Detail, "must be a JSON object")
	require.NotContains(t, rej.Detail, "order.")
}
