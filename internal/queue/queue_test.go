package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/testenv"
)

// msgs returns n distinct messages "<prefix>-0" ... in order.
func msgs(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, m := range b {
		out[i] = string(m)
	}
	return out
}

func newQueue(t *testing.T, env *testenv.Env, cfg queue.Config) *queue.Queue {
	t.Helper()
	cfg.Keys = env.Keys
	q, err := queue.New(env.RDB, cfg)
	require.NoError(t, err)
	return q
}

var (
	future = func() time.Duration { return time.Hour }
	past   = func() time.Duration { return -time.Second }
)

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	_, err := queue.New(env.RDB, queue.Config{Keys: env.Keys, MaxDepth: -1})
	require.ErrorContains(t, err, "MaxDepth")
	_, err = queue.New(env.RDB, queue.Config{Keys: env.Keys, PushChunk: -5})
	require.ErrorContains(t, err, "PushChunk")
	cfg := queue.Config{}.WithDefaults()
	require.Equal(t, 100000, cfg.MaxDepth)
	require.Equal(t, 5000, cfg.PushChunk)
}

func TestPushInChunksCountsProduced(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{PushChunk: 3})

	// Every LPUSH announces itself on the events channel: count them.
	sub := env.RDB.Subscribe(ctx, env.Keys.Events())
	defer sub.Close()
	_, err := sub.Receive(ctx) // subscription confirmed
	require.NoError(t, err)

	require.NoError(t, q.Push(ctx, msgs("m", 10), nil))

	depth, err := q.Depth(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(10), depth)
	produced, err := q.Produced(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(10), produced)

	ch := sub.Channel()
	for i := range 4 { // ceil(10/3) LPUSHes
		select {
		case m := <-ch:
			require.Equal(t, "queued", m.Payload)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of 4 chunk notices arrived", i)
		}
	}

	require.NoError(t, q.Push(ctx, msgs("n", 2), nil))
	produced, err = q.Produced(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(12), produced)
}

func TestProducedIsZeroOnAFreshQueue(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	q := newQueue(t, env, queue.Config{})
	n, err := q.Produced(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	b, err := q.Claim(context.Background(), "w", "b-1", 10, future())
	require.NoError(t, err)
	require.Nil(t, b, "an empty queue yields no batch")
}

func TestClaimIsFIFO(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{PushChunk: 2})
	require.NoError(t, q.Push(ctx, msgs("a", 5), nil))
	require.NoError(t, q.Push(ctx, msgs("b", 3), nil))

	var got []string
	for i := 0; ; i++ {
		b, err := q.Claim(ctx, "w", fmt.Sprintf("b-%d", i), 3, future())
		require.NoError(t, err)
		if b == nil {
			break
		}
		got = append(got, strs(b.Messages)...)
		ok, err := q.Ack(ctx, "w", b.ID)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.Equal(t, append(strs(msgs("a", 5)), strs(msgs("b", 3))...), got)
}

func TestClaimMovesExactlyNAndRedeliversTheSameBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	require.NoError(t, q.Push(ctx, msgs("m", 10), nil))

	b, err := q.Claim(ctx, "w1", "b-first", 4, future())
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Equal(t, "b-first", b.ID)
	require.Equal(t, int64(1), b.Attempts)
	require.Equal(t, strs(msgs("m", 4)), strs(b.Messages))

	depth, err := q.Depth(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(6), depth)
	processing, err := env.RDB.LRange(ctx, env.Keys.Processing("w1"), 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, strs(b.Messages), processing)
	id, n, err := q.Inflight(ctx, "w1")
	require.NoError(t, err)
	require.Equal(t, "b-first", id)
	require.Equal(t, int64(4), n)

	// Claiming again before Ack returns the same batch, not new messages.
	again, err := q.Claim(ctx, "w1", "b-second", 4, future())
	require.NoError(t, err)
	require.Equal(t, "b-first", again.ID)
	require.Equal(t, int64(2), again.Attempts)
	require.Equal(t, strs(b.Messages), strs(again.Messages))
	depth, err = q.Depth(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(6), depth)

	// A claim larger than what is left takes what is left.
	other, err := q.Claim(ctx, "w2", "b-other", 100, future())
	require.NoError(t, err)
	require.Len(t, other.Messages, 6)
	depth, err = q.Depth(ctx)
	require.NoError(t, err)
	require.Zero(t, depth)

	id, n, err = q.Inflight(ctx, "w3")
	require.NoError(t, err)
	require.Empty(t, id)
	require.Zero(t, n)
}

func TestAckOnlyTheWorkersOwnBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	require.NoError(t, q.Push(ctx, msgs("m", 5), nil))
	b, err := q.Claim(ctx, "w", "b-1", 5, future())
	require.NoError(t, err)

	ok, err := q.Ack(ctx, "w", "b-wrong")
	require.NoError(t, err)
	require.False(t, ok)
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), snap.InFlight(), "a wrong batch id must not drop the batch")

	ok, err = q.Ack(ctx, "other-worker", b.ID)
	require.NoError(t, err)
	require.False(t, ok)

	ok, err = q.Ack(ctx, "w", b.ID)
	require.NoError(t, err)
	require.True(t, ok)
	snap, err = q.Snapshot(ctx)
	require.NoError(t, err)
	require.Zero(t, snap.InFlight())
	exists, err := env.RDB.Exists(ctx, env.Keys.Processing("w"), env.Keys.Inflight("w")).Result()
	require.NoError(t, err)
	require.Zero(t, exists)

	ok, err = q.Ack(ctx, "w", b.ID)
	require.NoError(t, err)
	require.False(t, ok, "a second Ack finds nothing")
}

func TestRequeueReturnsMessagesToTheConsumingEnd(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	all := msgs("m", 10)
	require.NoError(t, q.Push(ctx, all, nil))

	b, err := q.Claim(ctx, "dead", "b-dead", 3, past())
	require.NoError(t, err)
	require.Equal(t, strs(all[:3]), strs(b.Messages))

	// A guard for a different batch changes nothing.
	n, err := q.Requeue(ctx, "dead", "b-other")
	require.NoError(t, err)
	require.Equal(t, int64(-1), n)
	held, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), held.InFlight())

	n, err = q.Requeue(ctx, "dead", "b-dead")
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, figures{depth: 10, produced: 10, claimed: 3, returned: 3}, figuresOf(snap))

	// The requeued messages are claimed next, oldest first.
	next, err := q.Claim(ctx, "alive", "b-next", 4, future())
	require.NoError(t, err)
	require.Equal(t, strs(all[:4]), strs(next.Messages))
	rest, err := q.Claim(ctx, "alive2", "b-rest", 100, future())
	require.NoError(t, err)
	require.Equal(t, strs(all[4:]), strs(rest.Messages))

	// A worker holding no batch is simply forgotten.
	require.NoError(t, q.Heartbeat(ctx, -time.Second, "idle"))
	n, err = q.Requeue(ctx, "idle", "")
	require.NoError(t, err)
	require.Zero(t, n)
	workers, err := env.RDB.ZRange(ctx, env.Keys.Workers(), 0, -1).Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"alive", "alive2"}, workers)

	// Requeue guarded by "" refuses a worker that holds a batch.
	n, err = q.Requeue(ctx, "alive", "")
	require.NoError(t, err)
	require.Equal(t, int64(-1), n)
}

func TestRequeueKeepsOrderForLargeBatches(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	all := msgs("m", 2500) // crosses the scripts' 1000-element chunks
	require.NoError(t, q.Push(ctx, all, nil))
	b, err := q.Claim(ctx, "dead", "b-1", 2500, past())
	require.NoError(t, err)
	require.Equal(t, strs(all), strs(b.Messages))
	n, err := q.Requeue(ctx, "dead", "b-1")
	require.NoError(t, err)
	require.Equal(t, int64(2500), n)
	again, err := q.Claim(ctx, "w", "b-2", 2500, future())
	require.NoError(t, err)
	require.Equal(t, strs(all), strs(again.Messages))
}

func TestReleaseDropsADurableBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	require.NoError(t, q.Push(ctx, msgs("m", 5), nil))
	b, err := q.Claim(ctx, "dead", "b-1", 3, past())
	require.NoError(t, err)

	require.NoError(t, q.Release(ctx, "dead", "b-wrong"))
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), snap.InFlight(), "releasing another batch id changes nothing")

	require.NoError(t, q.Release(ctx, "dead", b.ID))
	snap, err = q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, figures{depth: 2, produced: 5, claimed: 3}, figuresOf(snap),
		"released messages leave Redis without returning to the queue")
}

func TestExpiredAndHeartbeat(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	require.NoError(t, q.Push(ctx, msgs("m", 4), nil))
	_, err := q.Claim(ctx, "late", "b-1", 2, past())
	require.NoError(t, err)
	_, err = q.Claim(ctx, "alive", "b-2", 2, future())
	require.NoError(t, err)

	expired, err := q.Expired(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"late"}, expired)

	require.NoError(t, q.Heartbeat(ctx, time.Hour, "late"))
	expired, err = q.Expired(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, expired)

	expired, err = q.Expired(ctx, -2*time.Hour)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"late", "alive"}, expired)

	n, err := q.Workers(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.NoError(t, q.Leave(ctx, "alive"))
	n, err = q.Workers(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestSnapshotCounters(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, figures{}, figuresOf(snap))

	require.NoError(t, q.Push(ctx, msgs("m", 20), nil))
	_, err = q.Claim(ctx, "w1", "b-1", 5, future())
	require.NoError(t, err)
	_, err = q.Claim(ctx, "w2", "b-2", 7, future())
	require.NoError(t, err)
	b3, err := q.Claim(ctx, "w3", "b-3", 1, future())
	require.NoError(t, err)
	ok, err := q.Ack(ctx, "w3", b3.ID)
	require.NoError(t, err)
	require.True(t, ok)

	snap, err = q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, figures{depth: 7, inFlight: 12, produced: 20, workers: 3, claimed: 13}, figuresOf(snap))
	depth, err := q.Depth(ctx)
	require.NoError(t, err)
	workers, err := q.Workers(ctx)
	require.NoError(t, err)
	require.Equal(t, snap.Depth, depth)
	require.Equal(t, snap.Workers, workers)
}

func TestPushWaitsUnderBackpressureAndNeverDrops(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const maxDepth, chunk, total = 5, 2, 60
	q := newQueue(t, env, queue.Config{MaxDepth: maxDepth, PushChunk: chunk})

	var waits atomic.Int64
	var maxSeen atomic.Int64
	waiting := make(chan struct{})
	var once sync.Once
	all := msgs("m", total)
	pushed := make(chan error, 1)
	go func() {
		pushed <- q.Push(ctx, all, func(depth int64) {
			waits.Add(1)
			if depth > maxSeen.Load() {
				maxSeen.Store(depth)
			}
			once.Do(func() { close(waiting) })
		})
	}()

	// With no consumer the producer must stop and wait.
	select {
	case <-waiting:
	case err := <-pushed:
		t.Fatalf("Push returned (%v) without waiting for a consumer", err)
	case <-ctx.Done():
		t.Fatal("Push never reported waiting")
	}
	depth, err := q.Depth(ctx)
	require.NoError(t, err)
	require.Less(t, depth, int64(total))

	// Now drain with a consumer until every message arrived.
	var got []string
	for i := 0; len(got) < total; i++ {
		b, err := q.Claim(ctx, "consumer", fmt.Sprintf("b-%d", i), 3, future())
		require.NoError(t, err)
		if b == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("only %d of %d messages arrived", len(got), total)
			case <-time.After(5 * time.Millisecond):
			}
			continue
		}
		got = append(got, strs(b.Messages)...)
		ok, err := q.Ack(ctx, "consumer", b.ID)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.NoError(t, <-pushed)
	require.Equal(t, strs(all), got, "every message arrives, in order, none dropped")
	require.Positive(t, waits.Load())
	require.GreaterOrEqual(t, maxSeen.Load(), int64(maxDepth-chunk+1), "the producer waits only when the next chunk would not fit")
	require.LessOrEqual(t, maxSeen.Load(), int64(maxDepth), "a single producer never takes the queue past MaxDepth")
	produced, err := q.Produced(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(total), produced)
}

func TestPushStopsWaitingWhenCancelled(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	q := newQueue(t, env, queue.Config{MaxDepth: 1})
	require.NoError(t, q.Push(context.Background(), msgs("first", 1), nil))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reported atomic.Int64
	err := q.Push(ctx, msgs("second", 3), func(depth int64) {
		reported.Store(depth)
		cancel()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, int64(1), reported.Load())

	snap, err := q.Snapshot(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), snap.Depth, "nothing of the cancelled push was queued")
	require.Equal(t, int64(1), snap.Produced)
}

func TestPurgeAdjustsProduced(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})
	require.NoError(t, q.Push(ctx, msgs("m", 10), nil))
	done, err := q.Claim(ctx, "w1", "b-1", 3, future())
	require.NoError(t, err)
	ok, err := q.Ack(ctx, "w1", done.ID)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = q.Claim(ctx, "w2", "b-2", 2, future())
	require.NoError(t, err)

	removed, err := q.Purge(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(7), removed, "5 queued + 2 in flight")
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, figures{produced: 10, claimed: 5, returned: 2, discarded: 7}, figuresOf(snap),
		"the purge counts what it removed: 3 consumed + 7 discarded = 10 arrived")
	require.Equal(t, int64(10), snap.Arrived())
	exists, err := env.RDB.Exists(ctx, env.Keys.Processing("w2"), env.Keys.Inflight("w2")).Result()
	require.NoError(t, err)
	require.Zero(t, exists)
}

func TestClaimFailsOnAClosedClient(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	opt, err := redis.ParseURL(env.RedisURL)
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	require.NoError(t, rdb.Close())
	q, err := queue.New(rdb, queue.Config{Keys: env.Keys})
	require.NoError(t, err)
	_, err = q.Claim(context.Background(), "w", "b", 1, future())
	require.Error(t, err)
	require.True(t, errors.Is(err, redis.ErrClosed), "got %v", err)
}

// TestRequeuedMessagesComeBackUnchanged: the redelivery envelope the requeue
// script adds is invisible to consumers, and each copy is counted on its own.
func TestRequeuedMessagesComeBackUnchanged(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{MaxDeliveries: 3})
	payload := []byte(`{"order_id":"same bytes twice"}`)
	require.NoError(t, q.Push(ctx, [][]byte{payload}, nil))
	for i := 1; i <= 2; i++ {
		b, err := q.Claim(ctx, "w", fmt.Sprintf("b-%d", i), 10, -time.Second)
		require.NoError(t, err)
		require.Equal(t, [][]byte{payload}, b.Messages, "claim %d sees the producer's bytes", i)
		n, err := q.Requeue(ctx, "w", b.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
	}
	// A fresh copy with the same bytes starts its own count.
	require.NoError(t, q.Push(ctx, [][]byte{payload}, nil))
	b, err := q.Claim(ctx, "w", "b-3", 10, -time.Second)
	require.NoError(t, err)
	require.Equal(t, [][]byte{payload, payload}, b.Messages)
	_, err = q.Requeue(ctx, "w", b.ID)
	require.NoError(t, err)
	snap, err := q.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), snap.Quarantined, "only the copy held by three dead workers is quarantined")
	require.Equal(t, int64(1), snap.Depth, "the fresh copy (one death) is requeued")
}

// figures are a snapshot's counts, without batch ids, marks and epochs.
type figures struct {
	depth, inFlight, produced, workers, claimed, returned, discarded, quarantined int64
}

func figuresOf(s queue.Snapshot) figures {
	return figures{depth: s.Depth, inFlight: s.InFlight(), produced: s.Produced, workers: s.Workers,
		claimed: s.Claimed, returned: s.Returned, discarded: s.Discarded, quarantined: s.Quarantined}
}

func TestBackpressureIsRecordedInRedis(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := newQueue(t, env, queue.Config{MaxDepth: 1})
	require.NoError(t, q.Push(ctx, msgs("first", 1), nil))

	bp, err := q.Backpressure(ctx)
	require.NoError(t, err)
	require.Equal(t, queue.Backpressure{}, bp, "nobody has waited yet")

	waiting := make(chan struct{})
	var once sync.Once
	pushed := make(chan error, 1)
	go func() {
		pushed <- q.Push(ctx, msgs("second", 1), func(int64) { once.Do(func() { close(waiting) }) })
	}()
	<-waiting
	bp, err = q.Backpressure(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), bp.Waiting, "the blocked producer is listed as waiting")

	time.Sleep(100 * time.Millisecond) // let it wait a measurable while
	b, err := q.Claim(ctx, "consumer", "b-1", 1, future())
	require.NoError(t, err)
	require.NotNil(t, b)
	require.NoError(t, <-pushed)
	bp, err = q.Backpressure(ctx)
	require.NoError(t, err)
	require.Zero(t, bp.Waiting, "a producer that got room is no longer listed")
	require.GreaterOrEqual(t, bp.Waited, 100*time.Millisecond, "its wait is added to the total")
}

// With WaitReplicas above the replicas the server has, WAIT cannot be
// satisfied: Push says so, yet the chunk is queued and counted, because
// WAIT confirms a write, it does not undo one.
func TestPushWaitReportsUnconfirmedChunk(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	_, err := queue.New(env.RDB, queue.Config{Keys: env.Keys, WaitReplicas: -1})
	require.ErrorContains(t, err, "WaitReplicas")

	info, err := env.RDB.Info(ctx, "replication").Result()
	require.NoError(t, err)
	var replicas int
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			replicas, err = strconv.Atoi(v)
			require.NoError(t, err)
		}
	}
	q := newQueue(t, env, queue.Config{PushChunk: 2, WaitReplicas: replicas + 1, WaitTimeout: 20 * time.Millisecond})
	err = q.Push(ctx, msgs("w", 3), nil)
	require.ErrorIs(t, err, queue.ErrNotReplicated)
	require.ErrorContains(t, err, fmt.Sprintf("%d of %d replicas", replicas, replicas+1))
	depth, err := q.Depth(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), depth, "the first chunk is queued; Push stopped there")
	produced, err := q.Produced(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), produced)
}

// TestWorkerListShowsLeasesAndRegistrations checks what `stats` and the
// dashboard show of each worker: its id, the lease deadline on the Redis
// clock, soonest first, and what it registered; a worker that registered
// nothing is still listed, and one that left is gone.
func TestWorkerListShowsLeasesAndRegistrations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	q := newQueue(t, env, queue.Config{})

	empty, err := q.WorkerList(ctx)
	require.NoError(t, err)
	require.Empty(t, empty)

	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, q.Register(ctx, queue.WorkerInfo{Host: "h1", PID: 42, Version: "v1.2.3", Started: started}, "w-late", "w-soon"))
	before := time.Now()
	require.NoError(t, q.Heartbeat(ctx, time.Hour, "w-late"))
	require.NoError(t, q.Heartbeat(ctx, time.Minute, "w-soon"))
	require.NoError(t, q.Heartbeat(ctx, 30*time.Minute, "w-anonymous"))

	list, err := q.WorkerList(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	ids := []string{list[0].ID, list[1].ID, list[2].ID}
	require.Equal(t, []string{"w-soon", "w-anonymous", "w-late"}, ids, "soonest lease deadline first")
	require.Equal(t, queue.WorkerInfo{Host: "h1", PID: 42, Version: "v1.2.3", Started: started}, list[0].WorkerInfo)
	require.Equal(t, list[0].WorkerInfo, list[2].WorkerInfo)
	require.Equal(t, queue.WorkerInfo{}, list[1].WorkerInfo, "a worker that registered nothing is listed without details")
	// The deadline is the Redis server's clock plus the lease; the two
	// clocks are the same machine's here, with slack for a slow CI host.
	require.WithinDuration(t, before.Add(time.Minute), list[0].LeaseUntil, 30*time.Second)
	require.WithinDuration(t, before.Add(time.Hour), list[2].LeaseUntil, 30*time.Second)
	require.Equal(t, time.UTC, list[0].LeaseUntil.Location())

	require.NoError(t, q.Leave(ctx, "w-soon"))
	list, err = q.WorkerList(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "w-anonymous", list[0].ID)
}
