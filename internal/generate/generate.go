// Package generate makes realistic synthetic orders for demos, tests and
// benchmarks: timestamps within the last hour (or one instant in a burst), a
// bounded pool of repeat customers, products, currencies and zip codes drawn
// from the lookup tables, exact re-sends of earlier orders as duplicates, and
// deliberately broken orders on request.
package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/redpg/redpg/internal/order"
)

// Catalog is what the generator draws from: normally the lookup snapshot.
type Catalog struct {
	// Products maps product id to its base price in USD cents.
	Products map[string]int64
	// Currencies maps currency code to units per USD.
	Currencies map[string]float64
	// Zips lists known zip codes.
	Zips []string
}

// Config shapes a generated stream.
type Config struct {
	// Duplicates is the fraction (0-1) of messages that re-send an earlier
	// valid order unchanged. Defaults to 0.
	Duplicates float64
	// Invalid is the fraction (0-1) of messages that are malformed or
	// invalid. Defaults to 0.
	Invalid float64
	// Burst gives every order the same timestamp. Defaults to false.
	Burst bool
	// Customers is the size of the repeat-customer pool. Defaults to 1000.
	Customers int
	// Seed makes the stream reproducible; 0 picks a random seed.
	Seed uint64
	// Now is the reference time. Defaults to time.Now().
	Now time.Time
	// RunID distinguishes order ids of separate runs. Defaults to a random
	// token, so two runs never collide.
	RunID string
}

// WithDefaults returns c with unset fields filled.
func (c Config) WithDefaults() Config {
	if c.Customers == 0 {
		c.Customers = 1000
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	if c.RunID == "" {
		c.RunID = fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	}
	return c
}

// Validate checks the fractions, so a command line can be refused before
// any connection is made.
func (c Config) Validate() error {
	var errs []error
	if c.Duplicates < 0 || c.Duplicates > 1 || math.IsNaN(c.Duplicates) {
		errs = append(errs, fmt.Errorf("duplicates %v: want a fraction between 0 and 1", c.Duplicates))
	}
	if c.Invalid < 0 || c.Invalid > 1 || math.IsNaN(c.Invalid) {
		errs = append(errs, fmt.Errorf("invalid %v: want a fraction between 0 and 1", c.Invalid))
	}
	if c.Duplicates+c.Invalid > 1 {
		errs = append(errs, errors.New("duplicates + invalid must not exceed 1"))
	}
	return errors.Join(errs...)
}

func (c Config) validate(cat Catalog) error {
	errs := []error{c.Validate()}
	if len(cat.Products) == 0 || len(cat.Currencies) == 0 || len(cat.Zips) == 0 {
		errs = append(errs, errors.New("catalog is empty: run `redpg migrate` and `redpg init-cache --all`"))
	}
	return errors.Join(errs...)
}

// Counts tallies what a generator produced.
type Counts struct {
	Total      int
	Unique     int // distinct valid orders: what should reach production
	Duplicates int // re-sends of earlier valid orders
	Invalid    int // orders that must end in the dead-letter store
}

// Generator produces order messages. It is not safe for concurrent use.
type Generator struct {
	cfg        Config
	rng        *rand.Rand
	products   []string
	prices     map[string]int64
	currencies []string
	rates      map[string]float64
	zips       []string
	sent       [][]byte // recent valid messages, for duplicates
	scratch    []byte   // reused while building a message
	seq        int
	counts     Counts
}

// New returns a generator drawing from cat.
func New(cat Catalog, cfg Config) (*Generator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(cat); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		prices: cat.Products, rates: cat.Currencies, zips: append([]string(nil), cat.Zips...)}
	for id := range cat.Products {
		g.products = append(g.products, id)
	}
	for c := range cat.Currencies {
		g.currencies = append(g.currencies, c)
	}
	slices.Sort(g.products)
	slices.Sort(g.currencies)
	slices.Sort(g.zips)
	return g, nil
}

// Counts reports what has been generated so far.
func (g *Generator) Counts() Counts { return g.counts }

// Next returns the next message.
func (g *Generator) Next() []byte {
	g.counts.Total++
	r := g.rng.Float64()
	switch {
	case r < g.cfg.Duplicates:
		// Until a valid order has been sent there is nothing to re-send:
		// send a valid one rather than fall through to an invalid one.
		if len(g.sent) > 0 {
			g.counts.Duplicates++
			return g.sent[g.rng.IntN(len(g.sent))]
		}
	case r < g.cfg.Duplicates+g.cfg.Invalid:
		g.counts.Invalid++
		return g.invalid()
	}
	msg := g.valid()
	g.counts.Unique++
	const keep = 4096
	if len(g.sent) < keep {
		g.sent = append(g.sent, msg)
	} else {
		g.sent[g.rng.IntN(keep)] = msg
	}
	return msg
}

// Batch returns the next n messages.
func (g *Generator) Batch(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// message draws the next valid order. Strings are built with strconv
// rather than fmt: the producer's cost per order decides how close enqueue
// gets to a raw LPUSH.
func (g *Generator) message() order.Order {
	g.seq++
	prod := g.products[g.rng.IntN(len(g.products))]
	cur := g.currencies[g.rng.IntN(len(g.currencies))]
	ts := g.cfg.Now
	if !g.cfg.Burst {
		ts = ts.Add(-time.Duration(g.rng.Int64N(int64(time.Hour))))
	}
	priceUSD := g.prices[prod]
	local := int64(math.Round(float64(priceUSD) * g.rates[cur]))
	if local < 1 {
		local = 1
	}
	cust := g.rng.IntN(g.cfg.Customers) + 1
	b := g.scratch[:0]
	b = appendPadded(append(b, "ORD-"+g.cfg.RunID+"-"...), g.seq, 8)
	orderID := string(b)
	b = appendPadded(append(b[:0], "CUST-"...), cust, 5)
	customerID := string(b)
	b = append(b[:0], "198.51."...)
	b = append(strconv.AppendInt(b, int64(cust/250%256), 10), '.')
	ip := string(strconv.AppendInt(b, int64(cust%250+1), 10))
	b = append(b[:0], "sess-"+g.cfg.RunID+"-"...)
	b = append(strconv.AppendInt(b, int64(cust), 10), '-')
	session := string(strconv.AppendInt(b, int64(g.seq/7), 10))
	g.scratch = b
	return order.Order{
		OrderID:        orderID,
		CustomerID:     customerID,
		ProductID:      prod,
		Quantity:       int64(1 + g.rng.IntN(5)),
		UnitPriceCents: local,
		Currency:       cur,
		ZipCode:        g.zips[g.rng.IntN(len(g.zips))],
		OrderTimestamp: ts.UTC(),
		UserAgent:      userAgents[cust%len(userAgents)],
		IP:             ip,
		SessionID:      session,
	}
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(n), 10)
	for i := len(d); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

func (g *Generator) valid() []byte {
	o := g.message()
	g.scratch = order.AppendMessage(g.scratch[:0], &o)
	return append([]byte(nil), g.scratch...)
}

// invalid returns one of several kinds of broken message, each of which the
// pipeline must dead-letter with a specific reason.
func (g *Generator) invalid() []byte {
	o := g.message()
	m := o.Message()
	switch g.rng.IntN(7) {
	case 0:
		return []byte(`{"order_id": "` + m.OrderID + `", "customer_id": `) // truncated JSON
	case 1:
		m.ProductID = "PROD-UNKNOWN-" + fmt.Sprint(g.rng.IntN(100))
	case 2:
		m.Quantity = 0
	case 3:
		m.UnitPrice = "-" + m.UnitPrice
	case 4:
		m.OrderTimestamp = g.cfg.Now.AddDate(3, 0, 0).UTC().Format(time.RFC3339)
	case 5:
		m.ZipCode = "00000"
	case 6:
		b, _ := json.Marshal(map[string]any{"order_id": m.OrderID, "quantity": "many"})
		return b
	}
	b, _ := json.Marshal(m)
	return b
}

var userAgents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
	"ShopApp/4.2.1 (Android 14; Pixel 8)",
}
