package generate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
)

// TestEncoderMatchesAppendMessage holds the generator's direct writer to
// the encoder the rest of the pipeline uses: for every draw, the message is
// byte for byte order.AppendMessage of the order the draw spells out.
func TestEncoderMatchesAppendMessage(t *testing.T) {
	t.Parallel()
	odd := Catalog{
		Products:   map[string]int64{"PROD-001": 1999, "PROD-<&>": 1, "PROD-\"q\"": 987654321, "PRÖD-é": 100},
		Currencies: map[string]float64{"USD": 1, "JPY": 149.5, "KWD": 0.0001, "X\u2028": 3.3333},
		Zips:       []string{"10001", "9410\\5", "<zip>"},
	}
	tests := []struct {
		name string
		cat  Catalog
		cfg  Config
	}{
		{"noon", testCatalog, Config{Now: testNow}},
		{"just after midnight", testCatalog, Config{Now: time.Date(2024, 3, 1, 0, 20, 0, 0, time.UTC)}},
		{"zone and nanoseconds", testCatalog, Config{Now: time.Date(2024, 1, 1, 0, 30, 0, 123456000, time.FixedZone("X", 3600))}},
		{"last nanosecond of a year", testCatalog, Config{Now: time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"before the epoch", testCatalog, Config{Now: time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC)}},
		{"burst on a whole second", testCatalog, Config{Now: testNow, Burst: true}},
		{"burst with nanoseconds", testCatalog, Config{Now: testNow.Add(10 * time.Nanosecond), Burst: true}},
		{"many customers", testCatalog, Config{Now: testNow, Customers: 10_000_000}},
		{"characters to escape", odd, Config{Now: testNow, RunID: `r<"\&>`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Seed = 3
			g, err := New(tc.cat, tc.cfg)
			require.NoError(t, err)
			for range 3000 {
				d := g.draw()
				o := g.order(&d)
				require.Equal(t, string(order.AppendMessage(nil, &o)), string(g.enc.appendValid(nil, &d)))
			}
		})
	}
}

func TestEncoderPadsLongNumbers(t *testing.T) {
	t.Parallel()
	g := newGen(t, Config{})
	d := g.draw()
	d.seq, d.customer = 123456789012, 1234567
	o := g.order(&d)
	require.Equal(t, string(order.AppendMessage(nil, &o)), string(g.enc.appendValid(nil, &d)))
}
