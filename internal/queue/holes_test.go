package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/testenv"
)

// Bytes that only look like a redelivery envelope are the producer's bytes:
// a worker sees them unchanged on the first delivery and after any number
// of requeues, so they meet the same fate on every path.
func TestMalformedEnvelopesReadTheSameOnEveryDelivery(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{MaxDeliveries: 100})
	payloads := [][]byte{
		[]byte("\x1eRDx\x1f{\"order_id\":\"A\"}"),        // count not a number
		[]byte("\x1eRD\x1f{\"order_id\":\"B\"}"),         // no count
		[]byte("\x1eRD12"),                               // no separator
		[]byte("\x1eRD-1\x1f{}"),                         // sign
		[]byte("\x1eRD99999999999\x1f{}"),                // too many digits
		[]byte("\x1eR"),                                  // truncated marker
		[]byte("\x1eRD3\x1f\x1eRD4\x1f{\"order_id\":1}"), // an envelope around an envelope-looking body
		[]byte(`{"order_id":"plain"}`),
	}
	require.NoError(t, q.Push(ctx, payloads, nil))
	first, err := q.Claim(ctx, "w", "b-0", 100, time.Hour)
	require.NoError(t, err)
	want := strs(first.Messages)
	for i := 1; i <= 3; i++ {
		n, err := q.Requeue(ctx, "w", fmt.Sprintf("b-%d", i-1))
		require.NoError(t, err)
		require.Equal(t, int64(len(payloads)), n)
		again, err := q.Claim(ctx, "w", fmt.Sprintf("b-%d", i), 100, time.Hour)
		require.NoError(t, err)
		require.Equal(t, want, strs(again.Messages), "delivery %d", i+1)
	}
	// What the first delivery saw is what was pushed, except that the one
	// well-formed envelope a producer wrote itself is read as one.
	require.Equal(t, string(payloads[0]), want[0])
	require.Contains(t, want, "\x1eRD4\x1f{\"order_id\":1}")
}

// A quarantined batch whose worker dies stays quarantined: it goes back to
// the quarantine list, not to the ingestion list where it would start its
// delivery count again.
func TestRequeuedQuarantineStaysQuarantined(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{MaxDeliveries: 2})
	require.NoError(t, q.Push(ctx, [][]byte{[]byte("poison")}, nil))
	for i := range 2 {
		b, err := q.Claim(ctx, "w", fmt.Sprintf("b-%d", i), 10, time.Hour)
		require.NoError(t, err)
		require.False(t, b.Quarantined)
		_, err = q.Requeue(ctx, "w", b.ID)
		require.NoError(t, err)
	}
	b, err := q.Claim(ctx, "w", "b-q", 10, time.Hour)
	require.NoError(t, err)
	require.True(t, b.Quarantined)
	_, err = q.Requeue(ctx, "w", b.ID)
	require.NoError(t, err)
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), snap.Quarantined, "back in quarantine")
	require.Zero(t, snap.Depth, "not back in the ingestion list")
	again, err := q.Claim(ctx, "w2", "b-q2", 10, time.Hour)
	require.NoError(t, err)
	require.True(t, again.Quarantined)
	require.Equal(t, [][]byte{[]byte("poison")}, again.Messages)
}

// Leases are written and judged on the Redis server's clock: nothing the
// caller's clock says enters a deadline, so a host whose clock runs minutes
// ahead or behind can neither keep a dead lease alive nor expire a live one.
func TestLeasesUseTheRedisClock(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	require.NoError(t, q.Push(ctx, msgs("m", 2), nil))
	_, err := q.Claim(ctx, "w", "b-1", 1, 30*time.Second)
	require.NoError(t, err)
	server, err := env.RDB.Time(ctx).Result()
	require.NoError(t, err)
	score, err := env.RDB.ZScore(ctx, env.Keys.Workers(), "w").Result()
	require.NoError(t, err)
	require.InDelta(t, float64(server.Add(30*time.Second).UnixMilli()), score, 2000, "deadline = Redis TIME + lease")

	require.NoError(t, q.Heartbeat(ctx, 5*time.Minute, "w"))
	score, err = env.RDB.ZScore(ctx, env.Keys.Workers(), "w").Result()
	require.NoError(t, err)
	require.InDelta(t, float64(server.Add(5*time.Minute).UnixMilli()), score, 2000)

	expired, err := q.Expired(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, expired)
	expired, err = q.Expired(ctx, -6*time.Minute)
	require.NoError(t, err)
	require.Equal(t, []string{"w"}, expired, "judged six minutes on, on the same clock")
}

// The Python reference's producers count what they queue in
// backpressure:ingestion and <queue>:counter and throttle on them: claims
// take them down, requeues put them back up, and they are never created by
// redpg nor taken below zero.
func TestReferenceCountersStayTruthful(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	counters := env.Keys.ReferenceCounters()
	t.Cleanup(func() { env.RDB.Del(context.Background(), counters...) })

	// No reference producer yet: redpg creates nothing.
	require.NoError(t, q.Push(ctx, msgs("r", 3), nil))
	b, err := q.Claim(ctx, "w", "b-1", 3, time.Hour)
	require.NoError(t, err)
	_, err = q.Ack(ctx, "w", b.ID)
	require.NoError(t, err)
	require.Zero(t, env.RDB.Exists(ctx, counters...).Val())

	// The reference producer pushes 10 the way push_batch does.
	var args []any
	for i := range 10 {
		args = append(args, fmt.Sprintf(`{"order_id": "ORD-%d"}`, i))
	}
	pipe := env.RDB.TxPipeline()
	pipe.LPush(ctx, env.Keys.Queue(), args...)
	for _, c := range counters {
		pipe.IncrBy(ctx, c, 10)
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, q.Push(ctx, msgs("m", 2), nil)) // redpg's producer counts too
	requireCounters(t, env, counters, 12)

	b, err = q.Claim(ctx, "w", "b-2", 5, time.Hour)
	require.NoError(t, err)
	requireCounters(t, env, counters, 7)
	_, err = q.Requeue(ctx, "w", b.ID)
	require.NoError(t, err)
	requireCounters(t, env, counters, 12)
	for i := 3; ; i++ {
		b, err := q.Claim(ctx, "w", "b-"+strconv.Itoa(i), 4, time.Hour)
		require.NoError(t, err)
		if b == nil {
			break
		}
		_, err = q.Ack(ctx, "w", b.ID)
		require.NoError(t, err)
	}
	requireCounters(t, env, counters, 0)
	_, err = q.Purge(ctx)
	require.NoError(t, err)
	requireCounters(t, env, counters, 0)
}

func requireCounters(t *testing.T, env *testenv.Env, counters []string, want int64) {
	t.Helper()
	for _, c := range counters {
		n, err := env.RDB.Get(context.Background(), c).Int64()
		require.NoError(t, err)
		require.Equal(t, want, n, c)
	}
}
