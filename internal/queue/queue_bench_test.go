package queue_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/testenv"
)

// BenchmarkQueueCap measures what one list on one Redis master carries:
// producers LPUSH chunks of 5000 orders of a realistic size (about 420
// bytes) while workers claim and acknowledge batches of 5000, all on one
// key, so one server thread does all of it. It reports messages through
// the queue per second (pushed and claimed), the figure docs/SCALING.md
// quotes:
//
//	go test -run '^$' -bench BenchmarkQueueCap -benchtime 20x ./internal/queue/
func BenchmarkQueueCap(b *testing.B) {
	for _, pairs := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("pairs=%d", pairs), func(b *testing.B) {
			benchCap(b, pairs)
		})
	}
}

func benchCap(b *testing.B, pairs int) {
	target, err := redisconn.Parse(testenv.RedisURL())
	require.NoError(b, err)
	ctx := context.Background()
	rdb, err := redisconn.Open(ctx, target, redisconn.Options{PoolSize: 4 * pairs})
	require.NoError(b, err, "Redis at %s (start it with `make services`)", testenv.RedisURL())
	ks := keys.Space{Prefix: "bench:" + testenv.ID() + ":"}
	b.Cleanup(func() {
		_ = rdb.Unlink(ctx, ks.Queue()).Err()
		_ = redisconn.UnlinkMatching(ctx, rdb, ks.Pattern())
		_ = rdb.Close()
	})
	q, err := queue.New(rdb, queue.Config{Keys: ks, MaxDepth: 1 << 30})
	require.NoError(b, err)
	const chunk = 5000
	body := `{"order_id":"ORD-%s-%08d","customer_id":"CUST-00421","product_id":"PROD-0007","quantity":2,` +
		`"unit_price":"129.99","currency":"EUR","order_timestamp":"2026-11-25T21:51:22.123Z",` +
		`"shipping_address":{"street":"12 Example Road","city":"Springfield","state":"IL","zip_code":"62701","country":"US"},` +
		`"payment_method":"credit_card","notes":"%s"}`
	pad := strings.Repeat("x", 60)
	msgs := make([][]byte, chunk)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf(body, ks.Prefix, i, pad))
	}
	b.SetBytes(int64(len(msgs[0])) * chunk)
	var moved atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var worker atomic.Int64
	done := make(chan error, pairs)
	var next atomic.Int64
	for range pairs {
		go func() {
			id := fmt.Sprintf("w%d", worker.Add(1))
			for next.Add(1) <= int64(b.N) {
				if err := q.Push(ctx, msgs, nil); err != nil {
					done <- err
					return
				}
				for got := 0; got < chunk; {
					bt, err := q.Claim(ctx, id, fmt.Sprintf("b-%s-%d", id, next.Load()), chunk, time.Minute)
					if err != nil {
						done <- err
						return
					}
					if bt == nil {
						break // another pair took this chunk
					}
					if _, err := q.Ack(ctx, id, bt.ID); err != nil {
						done <- err
						return
					}
					got += len(bt.Messages)
					moved.Add(int64(len(bt.Messages)))
				}
			}
			done <- nil
		}()
	}
	for range pairs {
		require.NoError(b, <-done)
	}
	b.StopTimer()
	// Whatever a pair left behind is claimed here, outside the timing.
	for {
		bt, err := q.Claim(ctx, "drain", "b-drain", chunk, time.Minute)
		require.NoError(b, err)
		if bt == nil {
			break
		}
		_, _ = q.Ack(ctx, "drain", bt.ID)
	}
	b.ReportMetric(float64(moved.Load())/time.Since(start).Seconds(), "msgs/s")
}
