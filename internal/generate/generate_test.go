package generate

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
)

var testCatalog = Catalog{
	Products:   map[string]int64{"PROD-001": 1999, "PROD-002": 50, "PROD-003": 120000},
	Currencies: map[string]float64{"USD": 1, "JPY": 149.5, "EUR": 0.92, "KWD": 0.0001},
	Zips:       []string{"10001", "94105", "60601"},
}

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newGen(t *testing.T, cfg Config) *Generator {
	t.Helper()
	if cfg.Now.IsZero() {
		cfg.Now = testNow
	}
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	g, err := New(testCatalog, cfg)
	require.NoError(t, err)
	return g
}

// promotable reports whether o passes every check promotion makes against
// the catalog the generator drew from.
func promotable(o order.Order, cat Catalog, now time.Time) bool {
	_, product := cat.Products[o.ProductID]
	_, currency := cat.Currencies[o.Currency]
	return product && currency && slices.Contains(cat.Zips, o.ZipCode) &&
		o.Quantity >= 1 && o.Quantity <= 1000 && o.UnitPriceCents > 0 &&
		!o.OrderTimestamp.After(now.Add(24*time.Hour))
}

// checkValid asserts everything a valid generated message promises.
func checkValid(t *testing.T, cfg Config, o order.Order) {
	t.Helper()
	require.True(t, promotable(o, testCatalog, cfg.Now), "%+v", o)
	require.GreaterOrEqual(t, o.Quantity, int64(1))
	require.LessOrEqual(t, o.Quantity, int64(5))
	want := int64(math.Round(float64(testCatalog.Products[o.ProductID]) * testCatalog.Currencies[o.Currency]))
	require.Equal(t, max(want, 1), o.UnitPriceCents, "the catalog price converted to %s", o.Currency)
	if cfg.Burst {
		require.True(t, o.OrderTimestamp.Equal(cfg.Now), "burst timestamp %v", o.OrderTimestamp)
	} else {
		require.False(t, o.OrderTimestamp.After(cfg.Now), "timestamp %v after now", o.OrderTimestamp)
		require.True(t, o.OrderTimestamp.After(cfg.Now.Add(-time.Hour)), "timestamp %v more than an hour ago", o.OrderTimestamp)
	}
	require.Regexp(t, `^CUST-\d{5}$`, o.CustomerID)
	require.NotEmpty(t, o.UserAgent)
	require.NotEmpty(t, o.IP)
	require.NotEmpty(t, o.SessionID)
}

// tally classifies msgs independently of the generator's own counts: a
// message byte-identical to an earlier valid one is a duplicate, one that
// decodes and would be promoted is unique, and anything else must be
// rejected by Decode or at promotion.
func tally(t *testing.T, cfg Config, msgs [][]byte) Counts {
	t.Helper()
	var c Counts
	seen := map[string]bool{}
	ids := map[string]bool{}
	for _, m := range msgs {
		c.Total++
		if seen[string(m)] {
			c.Duplicates++
			continue
		}
		o, err := order.Decode(m)
		if err == nil && promotable(o, testCatalog, cfg.Now) {
			checkValid(t, cfg, o)
			require.False(t, ids[o.OrderID], "order id %s reused by a different message", o.OrderID)
			ids[o.OrderID] = true
			seen[string(m)] = true
			c.Unique++
			continue
		}
		c.Invalid++
	}
	return c
}

func TestCountsAddUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"valid only", Config{}},
		{"mixed", Config{Duplicates: 0.2, Invalid: 0.1}},
		{"mixed burst", Config{Duplicates: 0.3, Invalid: 0.3, Burst: true}},
		{"invalid only", Config{Invalid: 1}},
		{"duplicates and invalid fill everything", Config{Duplicates: 0.5, Invalid: 0.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGen(t, tc.cfg)
			msgs := g.Batch(1500)
			require.Len(t, msgs, 1500)
			got := g.Counts()
			require.Equal(t, 1500, got.Total)
			require.Equal(t, got.Total, got.Unique+got.Duplicates+got.Invalid)
			require.Equal(t, got, tally(t, g.cfg, msgs), "the generator's counts match what it produced")
			if tc.cfg.Duplicates > 0 {
				require.NotZero(t, got.Duplicates)
			}
			if tc.cfg.Invalid > 0 {
				require.NotZero(t, got.Invalid)
			}
			if tc.cfg.Duplicates+tc.cfg.Invalid == 0 {
				require.Equal(t, got.Total, got.Unique)
			}
		})
	}
}

func TestAllDuplicates(t *testing.T) {
	t.Parallel()
	// With nothing sent yet there is nothing to duplicate: the first message
	// must be a valid order, not an invalid one, and the rest re-send it.
	g := newGen(t, Config{Duplicates: 1})
	msgs := g.Batch(50)
	require.Equal(t, Counts{Total: 50, Unique: 1, Duplicates: 49}, g.Counts())
	require.Equal(t, g.Counts(), tally(t, g.cfg, msgs))
	for _, m := range msgs[1:] {
		require.Equal(t, msgs[0], m)
	}
}

func TestDuplicatesAreByteIdenticalResends(t *testing.T) {
	t.Parallel()
	g := newGen(t, Config{Duplicates: 0.4})
	var sent [][]byte
	dups := 0
	for range 1000 {
		before := g.Counts().Duplicates
		m := g.Next()
		if g.Counts().Duplicates > before {
			dups++
			require.True(t, slices.ContainsFunc(sent, func(s []byte) bool { return bytes.Equal(s, m) }),
				"duplicate %s was never sent before", m)
			continue
		}
		o, err := order.Decode(m)
		require.NoError(t, err)
		checkValid(t, g.cfg, o)
		sent = append(sent, m)
	}
	require.NotZero(t, dups)
}

func TestInvalidMessagesAreRejected(t *testing.T) {
	t.Parallel()
	g := newGen(t, Config{Invalid: 1})
	decodeReasons := map[string]int{}
	promotion := 0
	for _, m := range g.Batch(700) {
		o, err := order.Decode(m)
		if err != nil {
			var rej *order.Rejection
			require.ErrorAs(t, err, &rej)
			decodeReasons[rej.Reason]++
			continue
		}
		require.False(t, promotable(o, testCatalog, testNow), "invalid message %s would be promoted", m)
		promotion++
	}
	require.Equal(t, Counts{Total: 700, Invalid: 700}, g.Counts())
	// Both truncated JSON and incomplete objects are generated, and most
	// invalid orders are for promotion to catch.
	require.NotZero(t, decodeReasons[order.ReasonMalformedJSON])
	require.NotZero(t, decodeReasons[order.ReasonMissingField])
	require.Greater(t, promotion, 0)
}

func TestInvalidKindsEachBreakOneRule(t *testing.T) {
	t.Parallel()
	g := newGen(t, Config{Invalid: 1})
	kinds := map[string]bool{}
	for _, m := range g.Batch(700) {
		o, err := order.Decode(m)
		if err != nil {
			continue
		}
		_, product := testCatalog.Products[o.ProductID]
		switch {
		case !product:
			kinds["unknown product"] = true
		case !slices.Contains(testCatalog.Zips, o.ZipCode):
			kinds["unknown zip"] = true
		case o.Quantity == 0:
			kinds["quantity 0"] = true
		case o.UnitPriceCents < 0:
			kinds["negative price"] = true
		case o.OrderTimestamp.After(testNow.AddDate(2, 0, 0)):
			kinds["years ahead"] = true
		default:
			t.Fatalf("invalid message %s breaks no rule", m)
		}
	}
	require.Len(t, kinds, 5, "kinds seen: %v", kinds)
}

func TestBurstTimestampsAreIdentical(t *testing.T) {
	t.Parallel()
	g := newGen(t, Config{Burst: true})
	for _, m := range g.Batch(200) {
		var msg order.Message
		require.NoError(t, json.Unmarshal(m, &msg))
		require.Equal(t, "2024-05-01T12:00:00Z", msg.OrderTimestamp)
	}
}

func TestTimestampsSpreadOverTheLastHour(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	g := newGen(t, Config{Now: now})
	distinct := map[time.Time]bool{}
	for _, m := range g.Batch(500) {
		o, err := order.Decode(m)
		require.NoError(t, err)
		require.False(t, o.OrderTimestamp.After(now))
		require.True(t, o.OrderTimestamp.After(now.Add(-time.Hour)))
		distinct[o.OrderTimestamp] = true
	}
	require.Greater(t, len(distinct), 400, "timestamps are spread, not bunched")
}

func TestSameSeedAndRunIDSameStream(t *testing.T) {
	t.Parallel()
	cfg := Config{Duplicates: 0.2, Invalid: 0.2, Seed: 7, RunID: "abc123", Now: testNow}
	a, b := newGen(t, cfg), newGen(t, cfg)
	require.Equal(t, a.Batch(800), b.Batch(800))
	require.Equal(t, a.Counts(), b.Counts())

	other := cfg
	other.Seed = 8
	require.NotEqual(t, newGen(t, cfg).Batch(50), newGen(t, other).Batch(50), "another seed, another stream")
}

func TestRunIDSeparatesOrderIDs(t *testing.T) {
	t.Parallel()
	ids := func(runID string) map[string]bool {
		out := map[string]bool{}
		for _, m := range newGen(t, Config{Seed: 1, RunID: runID}).Batch(100) {
			o, err := order.Decode(m)
			require.NoError(t, err)
			require.Regexp(t, regexp.MustCompile(`^ORD-`+runID+`-\d{8}$`), o.OrderID)
			out[o.OrderID] = true
		}
		return out
	}
	a, b := ids("aaaaaa"), ids("bbbbbb")
	require.Len(t, a, 100)
	require.Len(t, b, 100)
	for id := range a {
		require.False(t, b[id], "%s in both runs", id)
	}
}

func TestCustomersComeFromThePool(t *testing.T) {
	t.Parallel()
	g := newGen(t, Config{Customers: 3})
	customers := map[string]bool{}
	for _, m := range g.Batch(300) {
		o, err := order.Decode(m)
		require.NoError(t, err)
		customers[o.CustomerID] = true
	}
	require.Equal(t, map[string]bool{"CUST-00001": true, "CUST-00002": true, "CUST-00003": true}, customers)
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	require.Equal(t, 1000, c.Customers)
	require.NotZero(t, c.Seed)
	require.False(t, c.Now.IsZero())
	require.Regexp(t, `^[0-9a-f]{6}$`, c.RunID)
	require.Zero(t, c.Duplicates)
	require.Zero(t, c.Invalid)
	require.False(t, c.Burst)

	set := Config{Customers: 5, Seed: 9, Now: testNow, RunID: "r"}
	require.Equal(t, set, set.WithDefaults())
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		cat  Catalog
		want string
	}{
		{"negative duplicates", Config{Duplicates: -0.1}, testCatalog, "duplicates -0.1"},
		{"duplicates above one", Config{Duplicates: 1.5}, testCatalog, "duplicates 1.5"},
		{"NaN duplicates", Config{Duplicates: math.NaN()}, testCatalog, "duplicates NaN"},
		{"negative invalid", Config{Invalid: -1}, testCatalog, "invalid -1"},
		{"invalid above one", Config{Invalid: 2}, testCatalog, "invalid 2"},
		{"NaN invalid", Config{Invalid: math.NaN()}, testCatalog, "invalid NaN"},
		{"sum above one", Config{Duplicates: 0.6, Invalid: 0.5}, testCatalog, "must not exceed 1"},
		{"empty catalog", Config{}, Catalog{}, "catalog is empty"},
		{"no products", Config{}, Catalog{Currencies: testCatalog.Currencies, Zips: testCatalog.Zips}, "catalog is empty"},
		{"no currencies", Config{}, Catalog{Products: testCatalog.Products, Zips: testCatalog.Zips}, "catalog is empty"},
		{"no zips", Config{}, Catalog{Products: testCatalog.Products, Currencies: testCatalog.Currencies}, "catalog is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := New(tc.cat, tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, g)
		})
	}
	for _, ok := range []Config{{Duplicates: 0, Invalid: 0}, {Duplicates: 1}, {Invalid: 1}, {Duplicates: 0.25, Invalid: 0.75}} {
		_, err := New(testCatalog, ok)
		require.NoError(t, err, "%+v", ok)
	}
}

func TestCatalogIsCopied(t *testing.T) {
	t.Parallel()
	zips := []string{"b", "a"}
	cat := Catalog{Products: map[string]int64{"P": 100}, Currencies: map[string]float64{"USD": 1}, Zips: zips}
	g, err := New(cat, Config{Seed: 1, Now: testNow})
	require.NoError(t, err)
	require.Equal(t, []string{"b", "a"}, zips, "New does not reorder the caller's slice")
	o, err := order.Decode(g.Next())
	require.NoError(t, err)
	require.Contains(t, zips, o.ZipCode)
}
