// Package dedup keeps a sliding de-duplication window of order ids in a
// Redis sorted set scored by when each id was promoted.
//
// Each id has its own expiry (score + window), unlike the seed's single hash
// whose one EXPIRE forgot every id at once; Redis 7.0 has no per-field hash
// expiry, and a sorted set trims stale ids in O(log n) per id. Ids are
// marked only after their promotion committed in PostgreSQL, so a batch
// redelivered after a crash is never mistaken for a duplicate of itself. The
// window is a fast path: PostgreSQL's primary key stays the final judge.
package dedup

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// markScript records ids as seen and trims ids older than the window.
//
//	KEYS[1] the window's sorted set
//	ARGV[1] now, unix ms
//	ARGV[2] window, ms
//	ARGV[3..] order ids
//
// The key's own expiry is pushed out to one window after the newest mark, so
// an idle window disappears by itself.
var markScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i = 3, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    args[#args + 1] = now
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - window))
redis.call('PEXPIRE', KEYS[1], window)
return #ARGV - 2
`)

// Window is a de-duplication window.
type Window struct {
	rdb    redis.UniversalClient
	key    string
	window time.Duration
	now    func() time.Time
}

// New returns a window over the sorted set at key.
func New(rdb redis.UniversalClient, key string, window time.Duration) *Window {
	return &Window{rdb: rdb, key: key, window: window, now: time.Now}
}

// Seen reports, for each id, whether it was marked within the window.
func (w *Window) Seen(ctx context.Context, ids []string) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	scores, err := w.rdb.ZMScore(ctx, w.key, ids...).Result()
	if err != nil {
		return nil, err
	}
	cutoff := float64(w.now().Add(-w.window).UnixMilli())
	for i, s := range scores {
		// go-redis reports a missing member as 0.
		out[i] = s != 0 && s >= cutoff
	}
	return out, nil
}

// Mark records ids as seen now. Call it only after their promotion
// committed.
func (w *Window) Mark(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	const chunk = 5000 // keeps each script call's argument list modest
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		args := make([]any, 0, n+2)
		args = append(args, w.now().UnixMilli(), w.window.Milliseconds())
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		if err := markScript.Run(ctx, w.rdb, []string{w.key}, args...).Err(); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// Size is the number of ids currently inside the window.
func (w *Window) Size(ctx context.Context) (int64, error) {
	cutoff := strconv.FormatInt(w.now().Add(-w.window).UnixMilli(), 10)
	return w.rdb.ZCount(ctx, w.key, cutoff, "+inf").Result()
}

// Clear forgets every id.
func (w *Window) Clear(ctx context.Context) error { return w.rdb.Del(ctx, w.key).Err() }
