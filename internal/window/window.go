// Package window keeps live time windows of promoted orders in Redis: how
// many orders, and how much revenue in US cents, carry an order time within
// the last 1, 5 and 60 minutes.
//
// Orders are counted into buckets by order time: per second for the last
// few minutes (FineRetention), which the 1- and 5-minute windows read, and
// per minute for the hour, which the 60-minute window reads (over whole
// minutes, plus the seconds of the current minute). A batch adds one
// HINCRBY per bucket it touches, never per order, so recording costs Redis
// little however the orders' times are spread, and a reading is a few
// HMGETs. Buckets are not keyed by order id: a committed batch is recorded
// once by construction (a batch redelivered after its commit is settled
// from the ledger, not recorded again), and only a network retry of the
// recording itself could count a batch twice. A keeper trims buckets that
// fell out of the windows, so the hashes stay small.
package window

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/keys"
)

// Spans are the windows reported, shortest first.
var Spans = []time.Duration{time.Minute, 5 * time.Minute, time.Hour}

// DefaultRetention is how far back minute buckets are kept: the longest
// span plus a minute, so a reading never finds its oldest minute trimmed.
const DefaultRetention = time.Hour + time.Minute

// FineRetention is how far back second buckets are kept: the 5-minute
// window plus a minute.
const FineRetention = 6 * time.Minute

// Order is what the windows need to know of one promoted order.
type Order struct {
	ID       string
	Time     time.Time
	USDCents int64
}

// Figure is one window's reading over [From, To).
type Figure struct {
	Span            string    `json:"span"`
	From            time.Time `json:"from"`
	To              time.Time `json:"to"`
	Orders          int64     `json:"orders"`
	RevenueUSDCents int64     `json:"revenue_usd_cents"`
}

// Sizes are the entry counts of the windows' Redis structures.
type Sizes struct {
	Members int64 `json:"members"` // buckets in the order-count hash
	Buckets int64 `json:"buckets"` // buckets in the revenue hash
}

// Windows records and reads the windows. It is safe for concurrent use.
type Windows struct {
	rdb       redis.UniversalClient
	keys      keys.Space
	retention time.Duration
	now       func() time.Time
}

// New returns the windows under k. retention 0 means DefaultRetention.
func New(rdb redis.UniversalClient, k keys.Space, retention time.Duration) *Windows {
	if retention == 0 {
		retention = DefaultRetention
	}
	return &Windows{rdb: rdb, keys: k, retention: retention, now: time.Now}
}

// Buckets are hash fields: "s<unix second>" and "m<unix minute>".
func secField(sec int64) string { return "s" + strconv.FormatInt(sec, 10) }
func minField(min int64) string { return "m" + strconv.FormatInt(min, 10) }

// Record counts the orders promoted by one committed batch, in one
// pipelined round trip: an HINCRBY per bucket touched in the count and the
// revenue hashes, and one INCR of the promotions counter. Orders older than
// the retention are not counted, as the keeper would trim them at once.
// Call it once per committed batch, after the commit.
func (w *Windows) Record(ctx context.Context, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	now := w.now()
	oldest, oldestFine := now.Add(-w.retention).Unix(), now.Add(-FineRetention).Unix()
	type bucket struct{ n, cents int64 }
	buckets := map[string]*bucket{}
	add := func(field string, cents int64) {
		b := buckets[field]
		if b == nil {
			b = &bucket{}
			buckets[field] = b
		}
		b.n++
		b.cents += cents
	}
	for _, o := range orders {
		sec := o.Time.Unix()
		if sec < oldest {
			continue
		}
		add(minField(floorDiv(sec, 60)), o.USDCents)
		if sec >= oldestFine {
			add(secField(sec), o.USDCents)
		}
	}
	pipe := w.rdb.TxPipeline()
	for f, b := range buckets {
		pipe.HIncrBy(ctx, w.keys.Window(), f, b.n)
		pipe.HIncrBy(ctx, w.keys.WindowRevenue(), f, b.cents)
	}
	pipe.Incr(ctx, w.keys.Promotions())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record windows: %w", err)
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Read returns each span's figures over [From, To), where To is the end of
// the current second. The 1- and 5-minute windows start exactly one span
// before To; the hour starts at the first whole minute within the hour
// before To, since older orders are kept per minute. Count and revenue come
// from one atomic reading, so they cover exactly the same orders.
func (w *Windows) Read(ctx context.Context) ([]Figure, error) {
	return w.ReadAt(ctx, w.now())
}

// ReadAt is Read as of now.
func (w *Windows) ReadAt(ctx context.Context, now time.Time) ([]Figure, error) {
	to := now.Truncate(time.Second).Add(time.Second)
	out := make([]Figure, len(Spans))
	fields := make([][]string, len(Spans))
	for i, s := range Spans {
		from := to.Add(-s)
		var fs []string
		if s <= FineRetention-time.Minute {
			for sec := from.Unix(); sec < to.Unix(); sec++ {
				fs = append(fs, secField(sec))
			}
		} else {
			from = ceilMinute(from)
			toMin := floorDiv(to.Unix(), 60)
			for m := from.Unix() / 60; m < toMin; m++ {
				fs = append(fs, minField(m))
			}
			for sec := toMin * 60; sec < to.Unix(); sec++ {
				fs = append(fs, secField(sec))
			}
		}
		out[i] = Figure{Span: spanName(s), From: from.UTC(), To: to.UTC()}
		fields[i] = fs
	}
	pipe := w.rdb.TxPipeline()
	counts := make([]*redis.SliceCmd, len(Spans))
	cents := make([]*redis.SliceCmd, len(Spans))
	for i, fs := range fields {
		if len(fs) == 0 {
			continue
		}
		counts[i] = pipe.HMGet(ctx, w.keys.Window(), fs...)
		cents[i] = pipe.HMGet(ctx, w.keys.WindowRevenue(), fs...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	for i := range out {
		if counts[i] != nil {
			out[i].Orders, out[i].RevenueUSDCents = sum(counts[i].Val()), sum(cents[i].Val())
		}
	}
	return out, nil
}

func ceilMinute(t time.Time) time.Time {
	if m := t.Truncate(time.Minute); !m.Equal(t) {
		return m.Add(time.Minute)
	}
	return t
}

func sum(vals []any) int64 {
	var n int64
	for _, v := range vals {
		if s, ok := v.(string); ok {
			x, _ := strconv.ParseInt(s, 10, 64)
			n += x
		}
	}
	return n
}

func spanName(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
}

// trimScript drops the buckets of both hashes that no window reads any more.
//
//	KEYS[1] count hash   KEYS[2] revenue hash
//	ARGV[1] oldest second kept   ARGV[2] oldest minute kept
//
// Returns how many buckets it removed from the count hash.
var trimScript = redis.NewScript(`
local oldestSec, oldestMin = tonumber(ARGV[1]), tonumber(ARGV[2])
local gone = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local kind, n = string.sub(f, 1, 1), tonumber(string.sub(f, 2))
  if not n or (kind == 's' and n < oldestSec) or (kind == 'm' and n < oldestMin) or (kind ~= 's' and kind ~= 'm') then
    gone[#gone + 1] = f
  end
end
for i = 1, #gone, 1000 do
  local part = {unpack(gone, i, math.min(i + 999, #gone))}
  redis.call('HDEL', KEYS[1], unpack(part))
  redis.call('HDEL', KEYS[2], unpack(part))
end
return #gone
`)

// Trim removes the buckets older than the windows read and reports how
// many it removed. The keeper calls it periodically.
func (w *Windows) Trim(ctx context.Context) (int64, error) {
	now := w.now()
	n, err := trimScript.Run(ctx, w.rdb, []string{w.keys.Window(), w.keys.WindowRevenue()},
		now.Add(-FineRetention).Unix(), floorDiv(now.Add(-w.retention).Unix(), 60)).Int64()
	if err != nil {
		return 0, fmt.Errorf("trim windows: %w", err)
	}
	return n, nil
}

// Sizes reports how many entries the windows' structures hold.
func (w *Windows) Sizes(ctx context.Context) (Sizes, error) {
	pipe := w.rdb.Pipeline()
	m := pipe.HLen(ctx, w.keys.Window())
	b := pipe.HLen(ctx, w.keys.WindowRevenue())
	if _, err := pipe.Exec(ctx); err != nil {
		return Sizes{}, fmt.Errorf("window sizes: %w", err)
	}
	return Sizes{Members: m.Val(), Buckets: b.Val()}, nil
}

// Promotions is how many batches have promoted orders so far: a number
// that changes whenever orders does.
func (w *Windows) Promotions(ctx context.Context) (int64, error) {
	n, err := w.rdb.Get(ctx, w.keys.Promotions()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}
