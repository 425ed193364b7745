package order

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// decodeReasons are the reason codes Decode itself can give; the others are
// decided at promotion.
var decodeReasons = []string{
	ReasonTooLarge, ReasonInvalidUTF8, ReasonMalformedJSON, ReasonMissingField,
	ReasonWrongType, ReasonInvalidField, ReasonBadTimestamp, ReasonQuantityRange,
}

// FuzzDecode checks that Decode never panics, that what it accepts can be
// staged (valid UTF-8 text without NUL, a quantity that fits an integer
// column, amounts that fit their numeric columns, a timestamp RFC 3339 can
// write) and survives the normalised message round trip, and that what it
// refuses is a storable *Rejection with a known reason. Seeds are in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"order_id":"ORD-1","customer_id":"C","product_id":"P","quantity":1,"unit_price":"1.00","currency":"USD","zip_code":"1","order_timestamp":"2024-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := Decode(raw)
		if err != nil {
			rej := rejection(t, err)
			require.Contains(t, decodeReasons, rej.Reason)
			require.NotEmpty(t, rej.Detail)
			return
		}
		for _, s := range []string{o.OrderID, o.CustomerID, o.ProductID, o.Currency, o.ZipCode, o.UserAgent, o.IP, o.SessionID} {
			require.True(t, utf8.ValidString(s), "%q is not valid UTF-8", s)
			require.NotContains(t, s, "\x00")
		}
		for _, s := range []string{o.OrderID, o.CustomerID, o.ProductID, o.ZipCode} {
			require.NotEmpty(t, s)
			require.Equal(t, strings.TrimSpace(s), s)
		}
		require.Len(t, o.Currency, 3)
		require.GreaterOrEqual(t, o.Quantity, int64(math.MinInt32))
		require.LessOrEqual(t, o.Quantity, int64(math.MaxInt32))
		require.LessOrEqual(t, math.Abs(float64(o.UnitPriceCents)), 1e11)
		// The staged total must fit an int64 and numeric(16,2).
		require.LessOrEqual(t, math.Abs(float64(o.UnitPriceCents))*math.Abs(float64(o.Quantity)), 1e14)
		require.GreaterOrEqual(t, o.OrderTimestamp.Year(), 1970)
		require.LessOrEqual(t, o.OrderTimestamp.Year(), 9999)
		require.Equal(t, "UTC", o.OrderTimestamp.Location().String())

		b, err := json.Marshal(o.Message())
		require.NoError(t, err)
		again, err := Decode(b)
		require.NoError(t, err, "normalised message %s", b)
		require.Equal(t, o, again, "normalised message %s", b)
	})
}
