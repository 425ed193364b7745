// Package window keeps live time windows of promoted orders in Redis: how
// many orders, and how much revenue in US cents, carry an order time within
// the last 1, 5 and 60 minutes.
//
// Each promoted order is a member of a sorted set scored by its order time,
// keyed by its order id, so a batch delivered twice is counted once; its
// revenue is added to a per-second bucket the first time its id enters the
// set. Counting is ZCOUNT over a score range and revenue a sum over at most
// 3,600 buckets, so a reading costs the same however many orders arrive. A
// keeper trims members and buckets that fell out of the longest window
// (ZREMRANGEBYSCORE), so the structures hold one hour of orders at most.
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

// DefaultRetention is how far back order times are kept: the longest span
// plus a minute, so a reading never finds its oldest second already trimmed.
const DefaultRetention = time.Hour + time.Minute

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
	Members int64 `json:"members"` // orders in the sorted set
	Buckets int64 `json:"buckets"` // seconds in the revenue hash
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

// recordScript counts promoted orders into the windows.
//
//	KEYS[1] window sorted set (order id → order time, unix ms)
//	KEYS[2] revenue hash (unix second → USD cents)
//	KEYS[3] promotions counter
//	ARGV[1] oldest order time kept, unix ms
//	ARGV[2..] triples: order id, order time unix ms, USD cents
//
// Returns how many orders were counted for the first time. An id already in
// the set (a redelivered batch) adds nothing; an order older than ARGV[1]
// is not counted at all, as the keeper would trim it at once. The counter
// is incremented once per call, so a refresher can tell a change happened.
// A fixed handful of commands per call (ZMSCORE, a multi-member ZADD, one
// HMGET and one HSET of the touched buckets), rather than a ZADD and an
// HINCRBY per order: inside a script every redis.call costs Redis's one
// thread far more than an argument does, and per-order calls made recording
// the windows cost a fifth of end-to-end throughput.
var recordScript = redis.NewScript(`
local oldest = tonumber(ARGV[1])
local ids, zargs, ms, cents = {}, {}, {}, {}
for i = 2, #ARGV, 3 do
  local t = tonumber(ARGV[i + 1])
  if t >= oldest then
    local n = #ids + 1
    ids[n], ms[n], cents[n] = ARGV[i], t, ARGV[i + 2]
    zargs[2 * n - 1], zargs[2 * n] = t, ARGV[i]
  end
end
local added = 0
if #ids > 0 then
  local before = redis.call('ZMSCORE', KEYS[1], unpack(ids))
  redis.call('ZADD', KEYS[1], 'NX', unpack(zargs))
  local buckets = {}
  for j = 1, #ids do
    if not before[j] then
      added = added + 1
      local sec = math.floor(ms[j] / 1000)
      buckets[sec] = (buckets[sec] or 0) + tonumber(cents[j])
    end
  end
  local fields, adds = {}, {}
  for sec, c in pairs(buckets) do
    fields[#fields + 1] = string.format('%d', sec)
    adds[#adds + 1] = c
  end
  if #fields > 0 then
    local cur = redis.call('HMGET', KEYS[2], unpack(fields))
    local args = {}
    for j = 1, #fields do
      args[2 * j - 1] = fields[j]
      args[2 * j] = string.format('%d', (tonumber(cur[j]) or 0) + adds[j])
    end
    redis.call('HSET', KEYS[2], unpack(args))
  end
end
redis.call('INCR', KEYS[3])
return added
`)

// recordChunk bounds the orders one script call carries, keeping each
// call's argument list (three per order) and its time in Redis modest.
const recordChunk = 1000

// Record counts orders promoted by one committed batch: one pipelined round
// trip, whatever the batch size. Call it only after the commit; recording
// the same orders again changes nothing.
func (w *Windows) Record(ctx context.Context, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	oldest := strconv.FormatInt(w.now().Add(-w.retention).UnixMilli(), 10)
	ks := []string{w.keys.Window(), w.keys.WindowRevenue(), w.keys.Promotions()}
	pipe := w.rdb.Pipeline()
	for len(orders) > 0 {
		n := min(recordChunk, len(orders))
		args := make([]any, 0, 1+3*n)
		args = append(args, oldest)
		for _, o := range orders[:n] {
			args = append(args, o.ID, o.Time.UnixMilli(), o.USDCents)
		}
		recordScript.Eval(ctx, pipe, ks, args...) // EVALSHA cannot fall back to EVAL inside a pipeline
		orders = orders[n:]
	}
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("record windows: %w", err)
	}
	return nil
}

// readScript reads every window in one atomic step.
//
//	KEYS[1] window sorted set   KEYS[2] revenue hash
//	ARGV[1] end of the windows, unix seconds (exclusive)
//	ARGV[2..] each window's length in seconds
//
// Returns {orders, revenue cents} per window, in ARGV order.
var readScript = redis.NewScript(`
local to = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  local from = to - tonumber(ARGV[i])
  out[#out + 1] = redis.call('ZCOUNT', KEYS[1], string.format('%d', from * 1000), string.format('(%d', to * 1000))
  local cents = 0
  for sec = from, to - 1 do
    local v = redis.call('HGET', KEYS[2], string.format('%d', sec))
    if v then cents = cents + tonumber(v) end
  end
  out[#out + 1] = cents
end
return out
`)

// Read returns each span's figures over [To−span, To), where To is the end
// of the current second: windows are whole seconds, so the count and the
// revenue cover exactly the same orders.
func (w *Windows) Read(ctx context.Context) ([]Figure, error) {
	return w.ReadAt(ctx, w.now())
}

// ReadAt is Read as of now.
func (w *Windows) ReadAt(ctx context.Context, now time.Time) ([]Figure, error) {
	to := now.Truncate(time.Second).Add(time.Second)
	args := []any{to.Unix()}
	for _, s := range Spans {
		args = append(args, int64(s/time.Second))
	}
	res, err := readScript.Run(ctx, w.rdb, []string{w.keys.Window(), w.keys.WindowRevenue()}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	if len(res) != 2*len(Spans) {
		return nil, fmt.Errorf("read windows: unexpected reply of %d elements", len(res))
	}
	out := make([]Figure, len(Spans))
	for i, s := range Spans {
		out[i] = Figure{Span: spanName(s), From: to.Add(-s).UTC(), To: to.UTC(), Orders: res[2*i], RevenueUSDCents: res[2*i+1]}
	}
	return out, nil
}

func spanName(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
}

// trimScript drops revenue buckets older than a second.
//
//	KEYS[1] revenue hash   ARGV[1] oldest second kept
//
// Returns how many buckets it removed.
var trimScript = redis.NewScript(`
local oldest = tonumber(ARGV[1])
local gone = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if tonumber(f) < oldest then gone[#gone + 1] = f end
end
for i = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 999, #gone)))
end
return #gone
`)

// Trim removes orders and revenue buckets older than the retention and
// reports how many orders it removed. The keeper calls it periodically.
func (w *Windows) Trim(ctx context.Context) (int64, error) {
	oldest := w.now().Add(-w.retention)
	pipe := w.rdb.Pipeline()
	n := pipe.ZRemRangeByScore(ctx, w.keys.Window(), "-inf", "("+strconv.FormatInt(oldest.UnixMilli(), 10))
	trimScript.Eval(ctx, pipe, []string{w.keys.WindowRevenue()}, oldest.Unix())
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("trim windows: %w", err)
	}
	return n.Val(), nil
}

// Sizes reports how many entries the windows' structures hold.
func (w *Windows) Sizes(ctx context.Context) (Sizes, error) {
	pipe := w.rdb.Pipeline()
	m := pipe.ZCard(ctx, w.keys.Window())
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
