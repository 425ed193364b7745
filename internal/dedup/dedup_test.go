package dedup

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/testenv"
)

// clock is a settable time source for Window.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newWindow returns a window whose clock the test controls. The window is
// long (an hour) so that the key's own real-time expiry never interferes;
// the test moves the clock instead of waiting.
func newWindow(t *testing.T, window time.Duration) (*Window, *clock, *testenv.Env) {
	t.Helper()
	env := testenv.New(t)
	c := &clock{t: time.Now()}
	w := New(env.RDB, env.Keys.Dedup(), window)
	w.now = c.now
	return w, c, env
}

func TestSeenAfterMark(t *testing.T) {
	t.Parallel()
	w, _, _ := newWindow(t, time.Hour)
	ctx := context.Background()

	seen, err := w.Seen(ctx, []string{"a", "b"})
	require.NoError(t, err)
	require.Equal(t, []bool{false, false}, seen)

	require.NoError(t, w.Mark(ctx, []string{"a", "b"}))
	seen, err = w.Seen(ctx, []string{"a", "c", "b"})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true}, seen)

	n, err := w.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	seen, err = w.Seen(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, seen)
	require.NoError(t, w.Mark(ctx, nil), "marking nothing is a no-op")
}

func TestWindowSlidesPerID(t *testing.T) {
	t.Parallel()
	const window = time.Hour
	w, c, env := newWindow(t, window)
	ctx := context.Background()
	t0 := time.Now()

	c.set(t0)
	require.NoError(t, w.Mark(ctx, []string{"old"}))
	c.set(t0.Add(40 * time.Minute))
	require.NoError(t, w.Mark(ctx, []string{"newer"}))

	// 70 minutes on: "old" left the window, "newer" has 30 minutes to go.
	c.set(t0.Add(70 * time.Minute))
	seen, err := w.Seen(ctx, []string{"old", "newer"})
	require.NoError(t, err)
	require.Equal(t, []bool{false, true}, seen, "each id expires on its own, not all at once")
	n, err := w.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	// "old" is still stored until the next Mark trims it.
	_, err = env.RDB.ZScore(ctx, env.Keys.Dedup(), "old").Result()
	require.NoError(t, err)
	require.NoError(t, w.Mark(ctx, []string{"fresh"}))
	_, err = env.RDB.ZScore(ctx, env.Keys.Dedup(), "old").Result()
	require.ErrorIs(t, err, redis.Nil, "Mark trims ids older than the window")
	card, err := env.RDB.ZCard(ctx, env.Keys.Dedup()).Result()
	require.NoError(t, err)
	require.Equal(t, int64(2), card)

	// Marking an id again restarts its window.
	c.set(t0.Add(100 * time.Minute))
	require.NoError(t, w.Mark(ctx, []string{"newer"}))
	c.set(t0.Add(135 * time.Minute))
	seen, err = w.Seen(ctx, []string{"newer", "fresh"})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, seen)

	// The key expires by itself one window after the last mark.
	ttl, err := env.RDB.PTTL(ctx, env.Keys.Dedup()).Result()
	require.NoError(t, err)
	require.Positive(t, ttl)
	require.LessOrEqual(t, ttl, window)
}

func TestMarkManyIDs(t *testing.T) {
	t.Parallel()
	w, _, _ := newWindow(t, time.Hour)
	ctx := context.Background()
	ids := make([]string, 12345) // more than one script call and many ZADD chunks
	for i := range ids {
		ids[i] = fmt.Sprintf("ORD-%06d", i)
	}
	require.NoError(t, w.Mark(ctx, ids))
	n, err := w.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(len(ids)), n)
	seen, err := w.Seen(ctx, append([]string{"missing"}, ids[len(ids)-3:]...))
	require.NoError(t, err)
	require.Equal(t, []bool{false, true, true, true}, seen)
}

func TestClear(t *testing.T) {
	t.Parallel()
	w, _, env := newWindow(t, time.Hour)
	ctx := context.Background()
	require.NoError(t, w.Mark(ctx, []string{"a", "b", "c"}))
	require.NoError(t, w.Clear(ctx))
	n, err := w.Size(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	seen, err := w.Seen(ctx, []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, seen)
	exists, err := env.RDB.Exists(ctx, env.Keys.Dedup()).Result()
	require.NoError(t, err)
	require.Zero(t, exists)
}

func TestWindowsWithDifferentKeysAreIndependent(t *testing.T) {
	t.Parallel()
	w, _, env := newWindow(t, time.Hour)
	ctx := context.Background()
	other := New(env.RDB, env.Prefix+"other-window", time.Hour)
	require.NoError(t, w.Mark(ctx, []string{"x"}))
	seen, err := other.Seen(ctx, []string{"x"})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, seen)
}
