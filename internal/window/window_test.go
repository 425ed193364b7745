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

func TestRecordCountsEachOrderOnceByOrderTime(t *testing.T) {
	t.Parallel()
	rdb, k := redisOnly(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 600e6, time.UTC)
	w := New(rdb, k, 0)
	w.now = func() time.Time { return now }

	orders := []Order{
		{ID: "a", Time: now.Add(-10 * time.Second), USDCents: 100},  // 1m, 5m, 1h
		{ID: "b", Time: now.Add(-2 * time.Minute), USDCents: 250},   // 5m, 1h
		{ID: "c", Time: now.Add(-30 * time.Minute), USDCents: 1000}, // 1h
		{ID: "d", Time: now.Add(-2 * time.Hour), USDCents: 99999},   // too old: never counted
		{ID: "e", Time: now, USDCents: 7},                           // this very second
	}
	require.NoError(t, w.Record(ctx, orders))
	// A redelivered batch, and an overlapping one, count nothing twice.
	require.NoError(t, w.Record(ctx, orders[:2]))
	require.NoError(t, w.Record(ctx, append([]Order{{ID: "f", Time: now.Add(-59 * time.Minute), USDCents: 1}}, orders...)))

	figs, err := w.Read(ctx)
	require.NoError(t, err)
	require.Len(t, figs, 3)
	want := []struct {
		span   string
		orders int64
		cents  int64
	}{{"1m", 2, 107}, {"5m", 3, 357}, {"1h", 5, 1358}}
	for i, f := range figs {
		require.Equal(t, want[i].span, f.Span)
		require.Equal(t, want[i].orders, f.Orders, f.Span)
		require.Equal(t, want[i].cents, f.RevenueUSDCents, f.Span)
		require.Equal(t, now.Truncate(time.Second).Add(time.Second), f.To)
	}
	n, err := w.Promotions(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)

	// An hour and a half later everything has left every window, and the
	// keeper's trim empties both structures.
	now = now.Add(90 * time.Minute)
	figs, err = w.Read(ctx)
	require.NoError(t, err)
	for _, f := range figs {
		require.Zero(t, f.Orders, f.Span)
		require.Zero(t, f.RevenueUSDCents, f.Span)
	}
	removed, err := w.Trim(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), removed)
	sz, err := w.Sizes(ctx)
	require.NoError(t, err)
	require.Equal(t, Sizes{}, sz)
}

func TestRecordLargeBatchInChunks(t *testing.T) {
	t.Parallel()
	rdb, k := redisOnly(t)
	ctx := context.Background()
	w := New(rdb, k, 0)
	now := time.Now()
	var orders []Order
	for i := range 2*recordChunk + 17 {
		orders = append(orders, Order{ID: fmt.Sprintf("o%d", i), Time: now.Add(-time.Duration(i) * time.Millisecond), USDCents: 3})
	}
	require.NoError(t, w.Record(ctx, orders))
	figs, err := w.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(len(orders)), figs[0].Orders)
	require.Equal(t, int64(3*len(orders)), figs[0].RevenueUSDCents)
	sz, err := w.Sizes(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(len(orders)), sz.Members)
}
