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

// Mark records ids as seen now, trims ids older than the window and pushes
// the key's own expiry out to one window from now, so an idle window
// disappears by itself. Call it only after their promotion committed.
//
// It sends one plain ZADD per chunk rather than a script: every id marked
// in a batch has the same score, and a script would turn each argument into
// a Lua string and back before Redis could add it, doubling the server's
// work per id.
func (w *Window) Mark(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := w.now().UnixMilli()
	score := strconv.FormatInt(now, 10)
	const chunk = 5000 // keeps each command's argument list modest
	pipe := w.rdb.Pipeline()
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		args := make([]any, 0, 2+2*n)
		args = append(args, "zadd", w.key)
		for _, id := range ids[:n] {
			args = append(args, score, id)
		}
		pipe.Do(ctx, args...)
		ids = ids[n:]
	}
	pipe.ZRemRangeByScore(ctx, w.key, "-inf", "("+strconv.FormatInt(now-w.window.Milliseconds(), 10))
	pipe.PExpire(ctx, w.key, w.window)
	_, err := pipe.Exec(ctx)
	return err
}

// Size is the number of ids currently inside the window.
func (w *Window) Size(ctx context.Context) (int64, error) {
	cutoff := strconv.FormatInt(w.now().Add(-w.window).UnixMilli(), 10)
	return w.rdb.ZCount(ctx, w.key, cutoff, "+inf").Result()
}

// Clear forgets every id.
func (w *Window) Clear(ctx context.Context) error { return w.rdb.Del(ctx, w.key).Err() }
