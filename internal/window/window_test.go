package window

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/testenv"
)

// redisOnly returns a client and a private key space, cleaned up after t.
func redisOnly(t *testing.T) (*redis.Client, keys.Space) {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL())
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	k := keys.Space{Prefix: "test:" + testenv.ID() + ":"}
	t.Cleanup(func() {
		ctx := context.Background()
		rdb.Del(ctx, k.Window(), k.WindowRevenue(), k.Promotions())
		_ = rdb.Close()
	})
	require.NoError(t, rdb.Ping(context.Background()).Err(), "Redis at %s (start it with `make services`)", testenv.RedisURL())
	return rdb, k
}

func TestRecordCountsOrdersByOrderTime(t *testing.T) {
	t.Parallel()
	rdb, k := redisOnly(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 600e6, time.UTC)
	w := New(rdb, k, 0)
	w.now = func() time.Time { return now }

	orders := []Order{
		{ID: "a", Time: now.Add(-10 * time.Second), USDCents: 100},            // 1m, 5m, 1h
		{ID: "b", Time: now.Add(-2 * time.Minute), USDCents: 250},             // 5m, 1h
		{ID: "c", Time: now.Add(-30 * time.Minute), USDCents: 1000},           // 1h
		{ID: "d", Time: now.Add(-2 * time.Hour), USDCents: 99999},             // too old: never counted
		{ID: "e", Time: now, USDCents: 7},                                     // this very second
		{ID: "f", Time: now.Add(-59 * time.Minute), USDCents: 1},              // inside the hour's first whole minute
		{ID: "g", Time: now.Add(-time.Hour + 30*time.Second), USDCents: 5000}, // before it: not counted
	}
	require.NoError(t, w.Record(ctx, orders[:3]))
	require.NoError(t, w.Record(ctx, orders[3:]))

	figs, err := w.Read(ctx)
	require.NoError(t, err)
	require.Len(t, figs, 3)
	to := now.Truncate(time.Second).Add(time.Second)
	want := []struct {
		span   string
		from   time.Time
		orders int64
		cents  int64
	}{
		{"1m", to.Add(-time.Minute), 2, 107},
		{"5m", to.Add(-5 * time.Minute), 3, 357},
		{"1h", time.Date(2030, 1, 2, 2, 5, 0, 0, time.UTC), 5, 1358}, // whole minutes from 02:05
	}
	for i, f := range figs {
		require.Equal(t, want[i].span, f.Span)
		require.Equal(t, want[i].from, f.From, f.Span)
		require.Equal(t, to, f.To)
		require.Equal(t, want[i].orders, f.Orders, f.Span)
		require.Equal(t, want[i].cents, f.RevenueUSDCents, f.Span)
	}
	n, err := w.Promotions(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	// An hour and a half later everything has left every window, and the
	// keeper's trim empties both hashes.
	now = now.Add(90 * time.Minute)
	figs, err = w.Read(ctx)
	require.NoError(t, err)
	for _, f := range figs {
		require.Zero(t, f.Orders, f.Span)
		require.Zero(t, f.RevenueUSDCents, f.Span)
	}
	removed, err := w.Trim(ctx)
	require.NoError(t, err)
	require.Positive(t, removed)
	sz, err := w.Sizes(ctx)
	require.NoError(t, err)
	require.Equal(t, Sizes{}, sz)
}

// A batch spread over the whole hour touches at most one bucket per minute
// and one per second of the last few minutes, however many orders it has:
// what keeps recording cheap for Redis.
func TestRecordTouchesFewBuckets(t *testing.T) {
	t.Parallel()
	rdb, k := redisOnly(t)
	ctx := context.Background()
	w := New(rdb, k, 0)
	now := time.Now()
	var orders []Order
	for i := range 5000 {
		orders = append(orders, Order{ID: fmt.Sprintf("o%d", i), Time: now.Add(-time.Duration(i) * 700 * time.Millisecond), USDCents: 3})
	}
	require.NoError(t, w.Record(ctx, orders))
	figs, err := w.ReadAt(ctx, now)
	require.NoError(t, err)
	var inHour int64
	for _, o := range orders {
		if !o.Time.Before(figs[2].From) {
			inHour++
		}
	}
	require.Equal(t, inHour, figs[2].Orders)
	require.Equal(t, 3*inHour, figs[2].RevenueUSDCents)
	sz, err := w.Sizes(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, sz.Members, int64(62+6*60+1), "buckets, not orders")
}
