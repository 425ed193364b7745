// Package queue is a reliable work queue on Redis lists.
//
// Producers LPUSH JSON messages onto the ingestion list in multi-value
// batches, waiting (never dropping) while the list is longer than the
// configured depth. Workers claim batches with a Lua script that moves up to
// N messages atomically from the list's tail into a per-worker processing
// list, tagged with a batch id and covered by a lease the worker renews with
// heartbeats. A batch leaves Redis only when the worker acknowledges it,
// which it does after its effect is durable in PostgreSQL. A processing list
// whose lease expired is moved back to the ingestion list by Requeue.
//
// Unlike BRPOP, nothing is lost when a worker dies between taking work and
// finishing it; unlike asynq, a claim is a whole batch, so the per-message
// cost stays close to a plain RPOP with a count.
package queue

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/keys"
)

// claimScript claims a batch for a worker.
//
//	KEYS[1] ingestion list   KEYS[2] worker's processing list
//	KEYS[3] worker's inflight hash   KEYS[4] workers lease set
//	KEYS[5] quarantine list
//	ARGV[1] worker id   ARGV[2] id for a new batch
//	ARGV[3] most messages to take   ARGV[4] lease deadline, unix ms
//
// Returns {batch_id, {messages...}, attempts, quarantined}, or an empty
// table when there is nothing to do. A worker whose previous batch is still
// unacknowledged gets that batch back (attempts incremented) rather than a
// new one. Quarantined messages are served before the ingestion list, as a
// batch of their own.
var claimScript = redis.NewScript(`
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
if redis.call('LLEN', KEYS[2]) > 0 then
  local id = redis.call('HGET', KEYS[3], 'batch_id')
  if not id then
    id = ARGV[2]
    redis.call('HSET', KEYS[3], 'batch_id', id)
  end
  local attempts = redis.call('HINCRBY', KEYS[3], 'attempts', 1)
  local q = tonumber(redis.call('HGET', KEYS[3], 'quarantine') or '0')
  return {id, redis.call('LRANGE', KEYS[2], 0, -1), attempts, q}
end
local quarantined = 1
local items = redis.call('RPOP', KEYS[5], tonumber(ARGV[3]))
if not items then
  quarantined = 0
  items = redis.call('RPOP', KEYS[1], tonumber(ARGV[3]))
end
if not items then
  return {}
end
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
redis.call('HSET', KEYS[3], 'batch_id', ARGV[2], 'attempts', 1, 'quarantine', quarantined)
return {ARGV[2], items, 1, quarantined}
`)

// ackScript drops a worker's processing list once its batch is durable.
//
//	KEYS[1] processing list   KEYS[2] inflight hash
//	ARGV[1] batch id
//
// Returns 1 when acknowledged, 0 when the batch is no longer this worker's
// (it was reclaimed), which the caller must treat as "not mine any more".
var ackScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'batch_id') ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

// requeueScript moves a worker's unacknowledged batch back to the consuming
// end of the ingestion list, oldest message first, and forgets the worker.
// Each message it moves is wrapped in a redelivery envelope (see Unwrap)
// counting how many dead workers held that very copy; a copy that reaches
// the limit was in the hands of that many dead workers — likely the one
// killing them — and goes to the quarantine list unwrapped instead, so it
// cannot be replayed forever. Counting per copy, not per content, keeps an
// innocent duplicate from inheriting its twin's deaths.
//
//	KEYS[1] ingestion list   KEYS[2] processing list
//	KEYS[3] inflight hash    KEYS[4] workers lease set
//	KEYS[5] quarantine list
//	ARGV[1] worker id        ARGV[2] batch id expected, "" for none
//	ARGV[3] redeliveries before quarantine
//
// Returns the number of messages moved, or -1 when the worker holds another
// batch than expected — it claimed a new one meanwhile, so it is alive and
// nothing is changed.
var requeueScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[3], 'batch_id') or ''
if cur ~= ARGV[2] then
  return -1
end
local limit = tonumber(ARGV[3])
local items = redis.call('LRANGE', KEYS[2], 0, -1)
local n = #items
local back = {}
for i = n, 1, -1 do
  local body, count = items[i], 0
  if string.sub(body, 1, 3) == '\030RD' then
    local sep = string.find(body, '\031', 4, true)
    if sep then
      count = tonumber(string.sub(body, 4, sep - 1)) or 0
      body = string.sub(body, sep + 1)
    end
  end
  count = count + 1
  if count >= limit then
    redis.call('LPUSH', KEYS[5], body)
  else
    back[#back + 1] = '\030RD' .. count .. '\031' .. body
    if #back == 1000 then
      redis.call('RPUSH', KEYS[1], unpack(back))
      back = {}
    end
  end
end
if #back > 0 then
  redis.call('RPUSH', KEYS[1], unpack(back))
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return n
`)

// envelope is the prefix requeueScript puts before a redelivered message:
// ASCII record separator, "RD", the redelivery count, unit separator. No
// JSON message starts with a control character, so it cannot be mistaken
// for a producer's bytes.
const envelope = "\x1eRD"

// Unwrap returns a message without its redelivery envelope, and how many
// dead workers held it (0 for a first delivery).
func Unwrap(msg []byte) ([]byte, int) {
	if !bytes.HasPrefix(msg, []byte(envelope)) {
		return msg, 0
	}
	sep := bytes.IndexByte(msg[len(envelope):], 0x1f)
	if sep < 0 {
		return msg, 0
	}
	n, err := strconv.Atoi(string(msg[len(envelope) : len(envelope)+sep]))
	if err != nil {
		return msg, 0
	}
	return msg[len(envelope)+sep+1:], n
}

// Config configures a Queue.
type Config struct {
	// Keys is the key space.
	Keys keys.Space
	// MaxDepth is the ingestion list length at which Push waits. Defaults to
	// 100000.
	MaxDepth int
	// PushChunk is how many messages one LPUSH carries. Defaults to 5000.
	PushChunk int
	// MaxDeliveries is how many dead workers may have held a message before
	// it is quarantined and dead-lettered undecoded. Defaults to 10.
	MaxDeliveries int
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.MaxDepth == 0 {
		c.MaxDepth = 100000
	}
	if c.PushChunk == 0 {
		c.PushChunk = 5000
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 10
	}
	return c
}

func (c Config) validate() error {
	if c.MaxDepth < 1 {
		return fmt.Errorf("queue: MaxDepth %d must be positive", c.MaxDepth)
	}
	if c.PushChunk < 1 {
		return fmt.Errorf("queue: PushChunk %d must be positive", c.PushChunk)
	}
	if c.MaxDeliveries < 1 {
		return fmt.Errorf("queue: MaxDeliveries %d must be positive", c.MaxDeliveries)
	}
	return nil
}

// Queue is the ingestion queue. It is safe for concurrent use.
type Queue struct {
	cfg Config
	rdb redis.UniversalClient
}

// New returns a Queue.
func New(rdb redis.UniversalClient, cfg Config) (*Queue, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Queue{cfg: cfg, rdb: rdb}, nil
}

// WaitFunc is told the queue depth each time Push has to wait for room.
type WaitFunc func(depth int64)

// Push enqueues msgs in multi-value LPUSHes, counting them as produced in
// the same transaction. While the next chunk would take the queue past
// MaxDepth it waits, reporting the depth to onWait, and never drops a
// message. (Producers racing each other may overshoot by a chunk each.)
func (q *Queue) Push(ctx context.Context, msgs [][]byte, onWait WaitFunc) error {
	k := q.cfg.Keys
	for len(msgs) > 0 {
		n := min(q.cfg.PushChunk, q.cfg.MaxDepth, len(msgs))
		if err := q.waitForRoom(ctx, n, onWait); err != nil {
			return err
		}
		args := make([]any, n)
		for i, m := range msgs[:n] {
			args[i] = m
		}
		pipe := q.rdb.TxPipeline()
		pipe.LPush(ctx, k.Queue(), args...)
		pipe.IncrBy(ctx, k.Produced(), int64(n))
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		q.rdb.Publish(ctx, k.Events(), "queued")
		msgs = msgs[n:]
	}
	return nil
}

// waitForRoom returns once n more messages fit under MaxDepth. While it
// waits it is listed in the producers-waiting set, and when it is done it
// adds the time it waited to the producers' total, so `redpg stats` shows
// backpressure as it happens and over time.
func (q *Queue) waitForRoom(ctx context.Context, n int, onWait WaitFunc) error {
	delay := 10 * time.Millisecond
	var w waiter
	defer w.done(ctx, q)
	for {
		depth, err := q.rdb.LLen(ctx, q.cfg.Keys.Queue()).Result()
		if err != nil {
			return fmt.Errorf("read queue depth: %w", err)
		}
		if depth+int64(n) <= int64(q.cfg.MaxDepth) {
			return nil
		}
		w.waiting(ctx, q, delay)
		if onWait != nil {
			onWait(depth)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// waiter is one producer's wait for room in the queue.
type waiter struct {
	id    string
	start time.Time
}

// waitNotice is how long a waiting producer stays listed after its last
// notice beyond its next poll: a producer that died while waiting drops out
// of the count by itself.
const waitNotice = 2 * time.Second

// waiting lists the producer as waiting until its next poll plus
// waitNotice. Errors are ignored: the listing is for people, not for flow.
func (w *waiter) waiting(ctx context.Context, q *Queue, poll time.Duration) {
	now := time.Now()
	if w.start.IsZero() {
		var b [6]byte
		_, _ = rand.Read(b[:])
		w.id, w.start = hex.EncodeToString(b[:]), now
	}
	q.rdb.ZAdd(ctx, q.cfg.Keys.ProducersWaiting(), redis.Z{Score: float64(now.Add(poll + waitNotice).UnixMilli()), Member: w.id})
}

// done unlists a producer that waited and adds its wait to the total.
func (w *waiter) done(ctx context.Context, q *Queue) {
	if w.start.IsZero() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	k := q.cfg.Keys
	pipe := q.rdb.Pipeline()
	pipe.ZRem(ctx, k.ProducersWaiting(), w.id)
	pipe.ZRemRangeByScore(ctx, k.ProducersWaiting(), "-inf", "("+strconv.FormatInt(time.Now().UnixMilli(), 10))
	pipe.IncrBy(ctx, k.ProducerWaitMs(), time.Since(w.start).Milliseconds())
	_, _ = pipe.Exec(ctx)
}

// Backpressure is how producers fared against MaxDepth.
type Backpressure struct {
	Waiting int64         // producers waiting for room now
	Waited  time.Duration // total time producers have waited
}

// Backpressure reads how many producers wait now and how long all waited.
func (q *Queue) Backpressure(ctx context.Context) (Backpressure, error) {
	k := q.cfg.Keys
	pipe := q.rdb.Pipeline()
	n := pipe.ZCount(ctx, k.ProducersWaiting(), strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf")
	ms := pipe.Get(ctx, k.ProducerWaitMs())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Backpressure{}, fmt.Errorf("read backpressure: %w", err)
	}
	waited, _ := ms.Int64()
	return Backpressure{Waiting: n.Val(), Waited: time.Duration(waited) * time.Millisecond}, nil
}

// Batch is a claimed batch of messages.
type Batch struct {
	// ID identifies the batch in Redis and in the pipeline_batches ledger.
	ID string
	// Messages are the raw payloads, oldest first.
	Messages [][]byte
	// Attempts counts how often this worker has claimed this batch.
	Attempts int64
	// Quarantined batches hold messages that were in the hands of
	// MaxDeliveries dead workers: dead-letter them, do not decode them.
	Quarantined bool
}

// Claim takes up to n messages for worker, or returns the worker's
// unacknowledged batch if it has one. newID is used if a new batch starts.
// It returns a nil Batch when the queue is empty. The claim renews the
// worker's lease until leaseDeadline.
func (q *Queue) Claim(ctx context.Context, worker, newID string, n int, leaseDeadline time.Time) (*Batch, error) {
	k := q.cfg.Keys
	res, err := claimScript.Run(ctx, q.rdb,
		[]string{k.Queue(), k.Processing(worker), k.Inflight(worker), k.Workers(), k.Quarantine()},
		worker, newID, n, leaseDeadline.UnixMilli()).Slice()
	if err != nil {
		return nil, fmt.Errorf("claim batch: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	if len(res) != 4 {
		return nil, fmt.Errorf("claim batch: unexpected reply of %d elements", len(res))
	}
	id, _ := res[0].(string)
	items, _ := res[1].([]any)
	attempts, _ := res[2].(int64)
	quarantined, _ := res[3].(int64)
	b := &Batch{ID: id, Attempts: attempts, Quarantined: quarantined == 1, Messages: make([][]byte, 0, len(items))}
	for _, it := range items {
		s, _ := it.(string)
		msg, _ := Unwrap([]byte(s))
		b.Messages = append(b.Messages, msg)
	}
	return b, nil
}

// Ack removes an acknowledged batch. It reports false when the batch is no
// longer the worker's because it was reclaimed meanwhile.
func (q *Queue) Ack(ctx context.Context, worker, batchID string) (bool, error) {
	k := q.cfg.Keys
	n, err := ackScript.Run(ctx, q.rdb, []string{k.Processing(worker), k.Inflight(worker)}, batchID).Int()
	if err != nil {
		return false, fmt.Errorf("acknowledge batch %s: %w", batchID, err)
	}
	return n == 1, nil
}

// Heartbeat renews the worker's lease until deadline.
func (q *Queue) Heartbeat(ctx context.Context, worker string, deadline time.Time) error {
	return q.rdb.ZAdd(ctx, q.cfg.Keys.Workers(), redis.Z{Score: float64(deadline.UnixMilli()), Member: worker}).Err()
}

// Leave removes a worker that holds no batch from the lease set.
func (q *Queue) Leave(ctx context.Context, worker string) error {
	return q.rdb.ZRem(ctx, q.cfg.Keys.Workers(), worker).Err()
}

// Expired lists workers whose lease ended before now.
func (q *Queue) Expired(ctx context.Context, now time.Time) ([]string, error) {
	return q.rdb.ZRangeByScore(ctx, q.cfg.Keys.Workers(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(now.UnixMilli(), 10)}).Result()
}

// Inflight returns the id of the batch a worker holds ("" for none) and how
// many messages it has.
func (q *Queue) Inflight(ctx context.Context, worker string) (string, int64, error) {
	k := q.cfg.Keys
	pipe := q.rdb.Pipeline()
	id := pipe.HGet(ctx, k.Inflight(worker), "batch_id")
	n := pipe.LLen(ctx, k.Processing(worker))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", 0, err
	}
	return id.Val(), n.Val(), nil
}

// Requeue returns a worker's unacknowledged batch to the ingestion list and
// forgets the worker. batchID guards against moving a batch other than the
// one the caller fenced; "" means the worker held none. It returns how many
// messages moved, or -1 when the worker holds another batch.
func (q *Queue) Requeue(ctx context.Context, worker, batchID string) (int64, error) {
	k := q.cfg.Keys
	n, err := requeueScript.Run(ctx, q.rdb,
		[]string{k.Queue(), k.Processing(worker), k.Inflight(worker), k.Workers(), k.Quarantine()},
		worker, batchID, q.cfg.MaxDeliveries).Int64()
	if err != nil {
		return 0, fmt.Errorf("requeue worker %s: %w", worker, err)
	}
	if n > 0 {
		q.rdb.Publish(ctx, k.Events(), "queued")
	}
	return n, nil
}

// releaseScript forgets a dead worker whose batch is durable already.
//
//	KEYS[1] processing list   KEYS[2] inflight hash   KEYS[3] workers lease set
//	ARGV[1] worker id         ARGV[2] batch id
//
// Returns 1, or 0 when the worker holds another batch (it is alive).
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'batch_id') ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`)

// Release forgets a dead worker whose batch turned out to be durable
// already: its messages are dropped from Redis, not requeued.
func (q *Queue) Release(ctx context.Context, worker, batchID string) error {
	k := q.cfg.Keys
	return releaseScript.Run(ctx, q.rdb, []string{k.Processing(worker), k.Inflight(worker), k.Workers()}, worker, batchID).Err()
}

// MaxDeliveries is the redelivery limit before quarantine.
func (q *Queue) MaxDeliveries() int { return q.cfg.MaxDeliveries }

// Depth is the number of messages waiting in the ingestion list.
func (q *Queue) Depth(ctx context.Context) (int64, error) {
	return q.rdb.LLen(ctx, q.cfg.Keys.Queue()).Result()
}

// InFlight is the number of messages claimed but not acknowledged, across
// all workers alive or dead.
func (q *Queue) InFlight(ctx context.Context) (int64, error) {
	k := q.cfg.Keys
	workers, err := q.rdb.ZRange(ctx, k.Workers(), 0, -1).Result()
	if err != nil || len(workers) == 0 {
		return 0, err
	}
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(workers))
	for i, w := range workers {
		cmds[i] = pipe.LLen(ctx, k.Processing(w))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// Workers is the number of workers holding a lease, alive or not yet reaped.
func (q *Queue) Workers(ctx context.Context) (int64, error) {
	return q.rdb.ZCard(ctx, q.cfg.Keys.Workers()).Result()
}

// Produced is the number of messages ever enqueued.
func (q *Queue) Produced(ctx context.Context) (int64, error) {
	n, err := q.rdb.Get(ctx, q.cfg.Keys.Produced()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// Purge deletes every waiting, quarantined and claimed message. Produced is
// reduced by what was removed, so reconciliation still holds; stop
// producers and workers first, or the counts may race.
func (q *Queue) Purge(ctx context.Context) (int64, error) {
	k := q.cfg.Keys
	workers, err := q.rdb.ZRange(ctx, k.Workers(), 0, -1).Result()
	if err != nil {
		return 0, err
	}
	snap, err := q.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	removed := snap.Depth + snap.InFlight + snap.Quarantined
	pipe := q.rdb.TxPipeline()
	pipe.Del(ctx, k.Queue(), k.Quarantine())
	for _, w := range workers {
		pipe.Del(ctx, k.Processing(w), k.Inflight(w))
	}
	pipe.Del(ctx, k.Workers())
	pipe.DecrBy(ctx, k.Produced(), removed)
	_, err = pipe.Exec(ctx)
	return removed, err
}

// countsScript reads every counter reconciliation needs in one atomic step.
//
//	KEYS[1] ingestion list   KEYS[2] workers lease set   KEYS[3] produced counter
//	KEYS[4] quarantine list
//	ARGV[1] processing list key prefix (worker id is appended)
//
// Returns {depth, in flight, produced, workers, quarantined}.
var countsScript = redis.NewScript(`
local depth = redis.call('LLEN', KEYS[1])
local workers = redis.call('ZRANGE', KEYS[2], 0, -1)
local inflight = 0
for _, w in ipairs(workers) do
  inflight = inflight + redis.call('LLEN', ARGV[1] .. w)
end
local produced = tonumber(redis.call('GET', KEYS[3]) or '0')
return {depth, inflight, produced, #workers, redis.call('LLEN', KEYS[4])}
`)

// Snapshot is a consistent reading of the queue's counters.
type Snapshot struct {
	Depth    int64 // waiting in the ingestion list
	InFlight int64 // claimed by workers, not yet acknowledged
	Produced int64 // ever enqueued
	Workers  int64 // workers holding a lease
	// Quarantined messages wait to be dead-lettered undecoded.
	Quarantined int64
}

// Snapshot reads the queue's counters atomically.
func (q *Queue) Snapshot(ctx context.Context) (Snapshot, error) {
	k := q.cfg.Keys
	res, err := countsScript.Run(ctx, q.rdb, []string{k.Queue(), k.Workers(), k.Produced(), k.Quarantine()}, k.Processing("")).Int64Slice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("read queue counters: %w", err)
	}
	if len(res) != 5 {
		return Snapshot{}, fmt.Errorf("read queue counters: unexpected reply of %d elements", len(res))
	}
	return Snapshot{Depth: res[0], InFlight: res[1], Produced: res[2], Workers: res[3], Quarantined: res[4]}, nil
}
