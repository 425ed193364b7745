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
//
// Messages are carved out of large blocks rather than allocated one by one
// (allocating was a quarter of the generator's time), and capped at their
// own length, so appending to one never overwrites the next. Duplicates are
// copied out of a private store of recent messages instead of aliasing the
// originals, so that the store does not keep whole blocks alive.
type Generator struct {
	cfg        Config
	rng        *rand.Rand
	products   []string  // sorted: a seed must pick the same product whatever the map order
	prices     []int64   // base price in USD cents, by product index
	currencies []string  // sorted, as products
	rates      []float64 // units per USD, by currency index
	zips       []string  // sorted, as products
	enc        encoder
	// dupBelow and invalidBelow are Duplicates and Duplicates+Invalid
	// scaled to the 53 bits rand.Float64 would divide by 2^53: comparing
	// the integer draw picks exactly what comparing the float would.
	dupBelow     uint64
	invalidBelow uint64
	sent         [][]byte // recent valid messages, kept only when duplicates are wanted
	arena        []byte   // the block messages are carved from
	seq          int
	counts       Counts
}

// arenaBlock is the size of the blocks messages are carved from: a few
// hundred messages, so a caller that keeps one message pins little.
const arenaBlock = 64 << 10

// keepSent is how many recent valid messages duplicates are drawn from.
const keepSent = 4096

// New returns a generator drawing from cat.
func New(cat Catalog, cfg Config) (*Generator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(cat); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		zips: append([]string(nil), cat.Zips...)}
	for id := range cat.Products {
		g.products = append(g.products, id)
	}
	for c := range cat.Currencies {
		g.currencies = append(g.currencies, c)
	}
	slices.Sort(g.products)
	slices.Sort(g.currencies)
	slices.Sort(g.zips)
	for _, id := range g.products {
		g.prices = append(g.prices, cat.Products[id])
	}
	for _, c := range g.currencies {
		g.rates = append(g.rates, cat.Currencies[c])
	}
	g.dupBelow = threshold(cfg.Duplicates)
	g.invalidBelow = threshold(cfg.Duplicates + cfg.Invalid)
	g.enc = newEncoder(cfg, g.products, g.currencies, g.zips)
	return g, nil
}

// threshold returns the t for which x < t exactly when x/2^53 < f, for
// every integer x below 2^53: scaling by a power of two is exact, and an
// integer is below a real number exactly when it is below its ceiling.
func threshold(f float64) uint64 {
	return uint64(math.Ceil(f * (1 << 53)))
}

// Counts reports what has been generated so far.
func (g *Generator) Counts() Counts { return g.counts }

// Next returns the next message.
func (g *Generator) Next() []byte {
	g.counts.Total++
	x := g.rng.Uint64() << 11 >> 11 // the draw behind rand.Float64
	switch {
	case x < g.dupBelow:
		// Until a valid order has been sent there is nothing to re-send:
		// send a valid one rather than fall through to an invalid one.
		if len(g.sent) > 0 {
			g.counts.Duplicates++
			return g.carve(g.sent[g.rng.IntN(len(g.sent))])
		}
	case x < g.invalidBelow:
		g.counts.Invalid++
		return g.invalid()
	}
	msg := g.valid()
	g.counts.Unique++
	// The replacement slot is drawn even when duplicates are off, so that
	// the stream does not depend on whether anything is kept.
	if g.counts.Unique <= keepSent {
		if g.dupBelow > 0 {
			g.sent = append(g.sent, append([]byte(nil), msg...))
		}
	} else if i := g.rng.IntN(keepSent); g.dupBelow > 0 {
		g.sent[i] = append(g.sent[i][:0], msg...)
	}
	return msg
}

// Batch returns the next n messages.
func (g *Generator) Batch(n int) [][]byte {
	return g.AppendBatch(make([][]byte, 0, n), n)
}

// AppendBatch appends the next n messages to dst, so that a producer can
// reuse the slice of a chunk it has pushed.
func (g *Generator) AppendBatch(dst [][]byte, n int) [][]byte {
	for range n {
		dst = append(dst, g.Next())
	}
	return dst
}

// carve copies msg into the arena.
func (g *Generator) carve(msg []byte) []byte {
	g.reserve(len(msg))
	start := len(g.arena)
	g.arena = append(g.arena, msg...)
	return g.arena[start:len(g.arena):len(g.arena)]
}

// reserve makes room for n more bytes in the arena. Messages already
// carved keep the block they were carved from.
func (g *Generator) reserve(n int) {
	if cap(g.arena)-len(g.arena) < n {
		g.arena = make([]byte, 0, max(arenaBlock, n))
	}
}

// draw is the random part of one order: everything else follows from it.
type draw struct {
	seq       int
	product   int // index into Generator.products
	currency  int // index into Generator.currencies
	zip       int // index into Generator.zips
	customer  int // 1 to Customers
	quantity  int64
	ageNanos  int64 // how long before Now the order was placed
	unitCents int64 // the product's price in the currency
}

// draw takes the next order's random choices, in the order the stream has
// always taken them, so that a seed keeps producing the same orders.
func (g *Generator) draw() draw {
	g.seq++
	d := draw{seq: g.seq}
	d.product = g.rng.IntN(len(g.products))
	d.currency = g.rng.IntN(len(g.currencies))
	if !g.cfg.Burst {
		d.ageNanos = g.rng.Int64N(int64(time.Hour))
	}
	d.customer = g.rng.IntN(g.cfg.Customers) + 1
	d.quantity = int64(1 + g.rng.IntN(5))
	d.zip = g.rng.IntN(len(g.zips))
	d.unitCents = max(int64(math.Round(float64(g.prices[d.product])*g.rates[d.currency])), 1)
	return d
}

// order spells d out as an order: the slow way, for the invalid messages
// that are edited before they are encoded.
func (g *Generator) order(d *draw) order.Order {
	run := g.cfg.RunID
	b := appendZeroPadded([]byte("ORD-"+run+"-"), uint64(d.seq), 8)
	orderID := string(b)
	b = appendZeroPadded(append(b[:0], "CUST-"...), uint64(d.customer), 5)
	customerID := string(b)
	return order.Order{
		OrderID:        orderID,
		CustomerID:     customerID,
		ProductID:      g.products[d.product],
		Quantity:       d.quantity,
		UnitPriceCents: d.unitCents,
		Currency:       g.currencies[d.currency],
		ZipCode:        g.zips[d.zip],
		OrderTimestamp: g.cfg.Now.Add(-time.Duration(d.ageNanos)).UTC(),
		UserAgent:      userAgents[d.customer%len(userAgents)],
		IP:             string(appendIP(nil, d.customer)),
		SessionID:      string(appendSession([]byte("sess-"+run+"-"), d)),
	}
}

// appendIP appends the customer's address: one per customer.
func appendIP(b []byte, customer int) []byte {
	b = append(b, "198.51."...)
	b = append(strconv.AppendInt(b, int64(customer/250%256), 10), '.')
	return strconv.AppendInt(b, int64(customer%250+1), 10)
}

// appendSession appends the session number after the "sess-<run>-"
// prefix: a customer's session changes every seven orders of the stream.
func appendSession(b []byte, d *draw) []byte {
	b = append(strconv.AppendInt(b, int64(d.customer), 10), '-')
	return strconv.AppendInt(b, int64(d.seq/7), 10)
}

// valid returns the next valid order's message, written straight into the
// arena.
func (g *Generator) valid() []byte {
	d := g.draw()
	g.reserve(g.enc.maxLen)
	start := len(g.arena)
	g.arena = g.enc.appendValid(g.arena, &d)
	return g.arena[start:len(g.arena):len(g.arena)]
}

// invalid returns one of several kinds of broken message, each of which the
// pipeline must dead-letter with a specific reason.
func (g *Generator) invalid() []byte {
	d := g.draw()
	o := g.order(&d)
	m := o.Message()
	switch g.rng.IntN(7) {
	case 0:
		return []byte(`{"order_id": "` + m.OrderID + `", "customer_id": `) // truncated JSON
	case 1:
		m.ProductID = "PROD-UNKNOWN-" + strconv.Itoa(g.rng.IntN(100))
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
