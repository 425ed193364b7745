package dedup_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/dedup"
	"github.com/redpg/redpg/internal/testenv"
)

// benchWindow returns a window on a private key of the test Redis, removed
// when b ends.
func benchWindow(b *testing.B) (*dedup.Window, *redis.Client) {
	b.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL())
	require.NoError(b, err)
	rdb := redis.NewClient(opt)
	key := "bench:" + testenv.ID() + ":orders:dedup"
	require.NoError(b, rdb.Ping(context.Background()).Err(), "Redis at %s (start it with `make services`)", testenv.RedisURL())
	b.Cleanup(func() {
		rdb.Del(context.Background(), key)
		_ = rdb.Close()
	})
	return dedup.New(rdb, key, time.Hour), rdb
}

func benchIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ORD-%s-%08d", prefix, i)
	}
	return ids
}

// BenchmarkSeen checks batches of 5000 ids, half of them in a window of
// 100,000, with one ZMSCORE each.
func BenchmarkSeen(b *testing.B) {
	ctx := context.Background()
	w, _ := benchWindow(b)
	known := benchIDs("known", 100000)
	require.NoError(b, w.Mark(ctx, known))
	batch := append(benchIDs("new", 2500), known[:2500]...)
	b.ReportAllocs()
	for b.Loop() {
		seen, err := w.Seen(ctx, batch)
		require.NoError(b, err)
		require.True(b, seen[len(seen)-1])
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkMark marks batches of 5000 fresh ids.
func BenchmarkMark(b *testing.B) {
	ctx := context.Background()
	w, _ := benchWindow(b)
	const n = 5000
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		require.NoError(b, w.Mark(ctx, benchIDs(fmt.Sprint(i), n)))
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "orders/s")
}
