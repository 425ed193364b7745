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
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/keys"
)

// unwrapLua is the one parser of the redelivery envelope that requeueScript
// puts before a message: ASCII record separator, "RD", the number of dead
// workers that held this copy (decimal digits), unit separator. No JSON
// message starts with a control character, so producers' bytes are never
// mistaken for it, and bytes that only look like a broken envelope are left
// exactly as they are — on first delivery and after any requeue alike.
// Scripts that include it call unwrap(s) -> body, count.
const unwrapLua = `
local function unwrap(s)
  if string.byte(s, 1) ~= 30 then
    return s, 0
  end
  local digits = string.match(s, '^\030RD(%d+)\031')
  if not digits or #digits > 9 then
    return s, 0
  end
  return string.sub(s, #digits + 5), tonumber(digits)
end
`

// nowLua reads the Redis server's clock in unix milliseconds. Leases are
// written and judged on this one clock, so a worker host whose clock runs
// minutes ahead or behind neither steals live batches nor keeps dead ones.
const nowLua = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// claimScript claims a batch for a worker.
//
//	KEYS[1] ingestion list   KEYS[2] worker's processing list
//	KEYS[3] worker's inflight hash   KEYS[4] workers lease set
//	KEYS[5] quarantine list  KEYS[6] account hash
//	ARGV[1] worker id   ARGV[2] id for a new batch
//	ARGV[3] most messages to take   ARGV[4] lease length, ms
//	ARGV[5] epoch to start if the account has none
//
// Returns {batch_id, {messages...}, attempts, quarantined, mark, epoch}, or an
// empty table when there is nothing to do. Messages are returned without
// their redelivery envelope; the processing list keeps them as they were.
// A worker whose previous batch is still unacknowledged gets that batch
// back (attempts incremented) rather than a new one. Quarantined messages
// are served before the ingestion list, as a batch of their own.
//
// A new batch adds its size to the account's "claimed" field in the same
// step that takes the messages, whoever produced them, and mark is the
// field's value right after: every batch claimed before a reading of the
// account has a mark no greater than the "claimed" it read, which is what
// lets reconciliation match batches against the ledger exactly. Marks are
// comparable within one epoch of the account (see bindScript); an account
// that claims without one — created behind redpg's back — starts one.
var claimScript = redis.NewScript(unwrapLua + nowLua + `
redis.call('ZADD', KEYS[4], now_ms() + tonumber(ARGV[4]), ARGV[1])
local function bodies(items)
  for i = 1, #items do
    if string.byte(items[i], 1) == 30 then
      items[i] = unwrap(items[i])
    end
  end
  return items
end
if redis.call('LLEN', KEYS[2]) > 0 then
  local id = redis.call('HGET', KEYS[3], 'batch_id')
  if not id then
    id = ARGV[2]
    redis.call('HSET', KEYS[3], 'batch_id', id)
  end
  local attempts = redis.call('HINCRBY', KEYS[3], 'attempts', 1)
  local q = tonumber(redis.call('HGET', KEYS[3], 'quarantine') or '0')
  local f = redis.call('HMGET', KEYS[3], 'mark', 'epoch')
  return {id, bodies(redis.call('LRANGE', KEYS[2], 0, -1)), attempts, q, tonumber(f[1] or '0'), f[2] or ''}
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
redis.call('HSETNX', KEYS[6], 'epoch', ARGV[5])
local epoch = redis.call('HGET', KEYS[6], 'epoch')
local mark = redis.call('HINCRBY', KEYS[6], 'claimed', #items)
redis.call('HSET', KEYS[3], 'batch_id', ARGV[2], 'attempts', 1, 'quarantine', quarantined, 'mark', mark, 'epoch', epoch)
return {ARGV[2], bodies(items), 1, quarantined, mark, epoch}
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
// end of the list it came from, oldest message first, and forgets the
// worker. Each message moved back to the ingestion list is wrapped in a
// redelivery envelope (see unwrapLua) counting how many dead workers held
// that very copy; a copy that reaches the limit was in the hands of that
// many dead workers — likely the one killing them — and goes to the
// quarantine list unwrapped instead, so it cannot be replayed forever.
// Counting per copy, not per content, keeps an innocent duplicate from
// inheriting its twin's deaths. A quarantined batch goes back to the
// quarantine list as it is: it stays quarantined.
//
//	KEYS[1] ingestion list   KEYS[2] processing list
//	KEYS[3] inflight hash    KEYS[4] workers lease set
//	KEYS[5] quarantine list  KEYS[6] account hash
//	KEYS[7] worker registry
//	ARGV[1] worker id        ARGV[2] batch id expected, "" for none
//	ARGV[3] redeliveries before quarantine
//
// Returns the number of messages moved, which are added to the account's
// "returned" field, or -1 when the worker holds another batch than
// expected — it claimed a new one meanwhile, so it is alive and nothing is
// changed.
var requeueScript = redis.NewScript(unwrapLua + `
local cur = redis.call('HGET', KEYS[3], 'batch_id') or ''
if cur ~= ARGV[2] then
  return -1
end
local limit = tonumber(ARGV[3])
local quarantined = redis.call('HGET', KEYS[3], 'quarantine') == '1'
local items = redis.call('LRANGE', KEYS[2], 0, -1)
local n = #items
local back, held = {}, {}
local function flush(key, list)
  if #list > 0 then
    redis.call('RPUSH', key, unpack(list))
  end
  return {}
end
for i = n, 1, -1 do
  if quarantined then
    held[#held + 1] = items[i]
  else
    local body, count = unwrap(items[i])
    count = count + 1
    if count >= limit then
      redis.call('LPUSH', KEYS[5], body)
    else
      back[#back + 1] = '\030RD' .. count .. '\031' .. body
    end
  end
  if #back == 1000 then back = flush(KEYS[1], back) end
  if #held == 1000 then held = flush(KEYS[5], held) end
end
flush(KEYS[1], back)
flush(KEYS[5], held)
if n > 0 then
  redis.call('HINCRBY', KEYS[6], 'returned', n)
end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
return n
`)

// Defaults, in one place: config, pipeline and benchmark refer to these.
const (
	// DefaultMaxDepth is the queue length at which producers wait.
	DefaultMaxDepth = 100000
	// DefaultPushChunk is how many messages one LPUSH carries.
	DefaultPushChunk = 5000
	// DefaultMaxDeliveries is how many dead workers may hold a message before
	// it is quarantined.
	DefaultMaxDeliveries = 10
	// DefaultWaitTimeout is how long Push waits for replicas to confirm a
	// chunk when WaitReplicas is set.
	DefaultWaitTimeout = time.Second
)

// Config configures a Queue.
type Config struct {
	// Keys is the key space.
	Keys keys.Space
	// MaxDepth is the ingestion list length at which Push waits. Defaults to
	// DefaultMaxDepth.
	MaxDepth int
	// PushChunk is how many messages one LPUSH carries. Defaults to
	// DefaultPushChunk.
	PushChunk int
	// MaxDeliveries is how many dead workers may have held a message before
	// it is quarantined and dead-lettered undecoded. Defaults to
	// DefaultMaxDeliveries.
	MaxDeliveries int
	// WaitReplicas, when positive, makes Push confirm each chunk with Redis
	// WAIT: a chunk counts as pushed only once that many replicas of the
	// queue's master hold it, so a failover after Push returned cannot lose
	// it (replication is otherwise asynchronous). Defaults to 0: no wait.
	WaitReplicas int
	// WaitTimeout bounds each WAIT. A chunk the replicas did not confirm in
	// time is still queued on the master, and Push reports ErrNotReplicated.
	// Defaults to DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	c.MaxDepth = cmp.Or(c.MaxDepth, DefaultMaxDepth)
	c.PushChunk = cmp.Or(c.PushChunk, DefaultPushChunk)
	c.MaxDeliveries = cmp.Or(c.MaxDeliveries, DefaultMaxDeliveries)
	c.WaitTimeout = cmp.Or(c.WaitTimeout, DefaultWaitTimeout)
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
	if c.WaitReplicas < 0 {
		return fmt.Errorf("queue: WaitReplicas %d must not be negative", c.WaitReplicas)
	}
	if c.WaitTimeout < time.Millisecond {
		return fmt.Errorf("queue: WaitTimeout %s must be at least 1ms", c.WaitTimeout)
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

// Keys is the queue's key space.
func (q *Queue) Keys() keys.Space { return q.cfg.Keys }

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
		if err := q.pushChunk(ctx, args); err != nil {
			return err
		}
		q.adjustReferenceCounters(ctx, int64(n))
		q.rdb.Publish(ctx, k.Events(), "queued")
		msgs = msgs[n:]
	}
	return nil
}

// ErrNotReplicated is returned by Push when WaitReplicas is set and the
// replicas did not confirm a chunk within WaitTimeout. The chunk is queued
// on the master (and counted as produced); only its survival of a failover
// is not confirmed.
var ErrNotReplicated = errors.New("not confirmed by enough replicas")

// pushChunk queues one chunk and counts it as produced, atomically.
func (q *Queue) pushChunk(ctx context.Context, args []any) error {
	k := q.cfg.Keys
	tx := func(pipe redis.Pipeliner) error {
		pipe.LPush(ctx, k.Queue(), args...)
		pipe.IncrBy(ctx, k.Produced(), int64(len(args)))
		return nil
	}
	if q.cfg.WaitReplicas == 0 {
		if _, err := q.rdb.TxPipelined(ctx, tx); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		return nil
	}
	return q.pushAndWait(ctx, tx)
}

// pushAndWait runs tx and then WAIT on one connection to the queue's
// master: WAIT counts the replicas that have everything this connection
// wrote, so it must follow the write on the same connection, and it cannot
// go inside the MULTI (Redis answers WAIT there without waiting). A cluster
// whose slot moved meanwhile answers MOVED before anything is written; the
// push is then retried on the slot's new master.
func (q *Queue) pushAndWait(ctx context.Context, tx func(redis.Pipeliner) error) error {
	var err error
	for attempt := 0; attempt < 6; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 250 * time.Millisecond):
			}
		}
		var node *redis.Client
		if node, err = q.master(ctx); err != nil {
			continue
		}
		conn := node.Conn()
		_, err = conn.TxPipelined(ctx, tx)
		var acked int64
		if err == nil {
			acked, err = conn.Wait(ctx, q.cfg.WaitReplicas, q.cfg.WaitTimeout).Result()
		}
		_ = conn.Close()
		if err == nil {
			if acked < int64(q.cfg.WaitReplicas) {
				return fmt.Errorf("enqueue: %w: %d of %d replicas within %s", ErrNotReplicated, acked, q.cfg.WaitReplicas, q.cfg.WaitTimeout)
			}
			return nil
		}
		if !isRedirect(err) {
			break
		}
		if cc, ok := q.rdb.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
	}
	return fmt.Errorf("enqueue: %w", err)
}

// master is the client of the server holding the queue: the slot's master
// in a cluster, the client itself otherwise (a Sentinel client always
// talks to the current master).
func (q *Queue) master(ctx context.Context) (*redis.Client, error) {
	switch c := q.rdb.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, q.cfg.Keys.Queue())
	case *redis.Client:
		return c, nil
	default:
		return nil, fmt.Errorf("WaitReplicas needs a single-server, Sentinel or cluster client, not %T", q.rdb)
	}
}

// isRedirect recognises errors after which nothing was written and the
// push may go again: a cluster's answer that the slot lives elsewhere
// (MOVED, ASK, or a MULTI aborted because of one), a failover under way
// (TRYAGAIN, CLUSTERDOWN, a replica refusing writes), or a master that
// cannot be dialled. A connection lost mid-way is not among them: the
// chunk may have been queued.
func isRedirect(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"MOVED ", "ASK ", "EXECABORT", "TRYAGAIN", "CLUSTERDOWN", "READONLY"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// refCounterScript adds to a counter that belongs to another program, only
// if that program created it, never taking it below zero.
//
//	KEYS[1] counter   ARGV[1] amount (may be negative)
//
// Returns the counter's new value, or -1 when it does not exist.
var refCounterScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v < 0 then
  redis.call('SET', KEYS[1], 0)
  v = 0
end
return v
`)

// adjustReferenceCounters keeps the Python reference's depth counters
// (keys.Space.ReferenceCounters) truthful for its producers, which INCRBY
// them for every order queued and throttle — dropping orders — once they
// pass MAX_QUEUE_DEPTH, expecting the consumer to decrement. Each counter
// hashes to its own cluster slot, so this is a step of its own after the
// atomic one; a failure only leaves the reference's estimate stale, which
// the next adjustment corrects, and is not worth failing a batch for.
func (q *Queue) adjustReferenceCounters(ctx context.Context, delta int64) {
	pipe := q.rdb.Pipeline()
	for _, key := range q.cfg.Keys.ReferenceCounters() {
		refCounterScript.Eval(ctx, pipe, []string{key}, delta)
	}
	_, _ = pipe.Exec(ctx)
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
	// Mark is the account's claimed count right after this batch was
	// claimed, in the account's epoch Epoch (see claimScript); the ledger
	// row keeps both.
	Mark  int64
	Epoch string
}

// Claim takes up to n messages for worker, or returns the worker's
// unacknowledged batch if it has one. newID is used if a new batch starts.
// It returns a nil Batch when the queue is empty. The claim renews the
// worker's lease for lease, on the Redis server's clock.
func (q *Queue) Claim(ctx context.Context, worker, newID string, n int, lease time.Duration) (*Batch, error) {
	k := q.cfg.Keys
	res, err := claimScript.Run(ctx, q.rdb,
		[]string{k.Queue(), k.Processing(worker), k.Inflight(worker), k.Workers(), k.Quarantine(), k.Account()},
		worker, newID, n, lease.Milliseconds(), newEpoch()).Slice()
	if err != nil {
		return nil, fmt.Errorf("claim batch: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	if len(res) != 6 {
		return nil, fmt.Errorf("claim batch: unexpected reply of %d elements", len(res))
	}
	id, _ := res[0].(string)
	items, _ := res[1].([]any)
	attempts, _ := res[2].(int64)
	quarantined, _ := res[3].(int64)
	mark, _ := res[4].(int64)
	epoch, _ := res[5].(string)
	b := &Batch{ID: id, Attempts: attempts, Quarantined: quarantined == 1, Mark: mark, Epoch: epoch, Messages: make([][]byte, 0, len(items))}
	for _, it := range items {
		s, _ := it.(string)
		b.Messages = append(b.Messages, []byte(s))
	}
	if attempts == 1 && !b.Quarantined {
		q.adjustReferenceCounters(ctx, -int64(len(b.Messages)))
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

// heartbeatScript renews leases on the Redis server's clock.
//
//	KEYS[1] workers lease set
//	ARGV[1] lease length, ms   ARGV[2...] worker ids
//
// Returns the number of workers renewed.
var heartbeatScript = redis.NewScript(nowLua + `
local deadline = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], deadline, ARGV[i])
end
return #ARGV - 1
`)

// Heartbeat renews the workers' leases for lease from now on the Redis
// server's clock.
func (q *Queue) Heartbeat(ctx context.Context, lease time.Duration, workers ...string) error {
	if len(workers) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(workers))
	args = append(args, lease.Milliseconds())
	for _, w := range workers {
		args = append(args, w)
	}
	return heartbeatScript.Run(ctx, q.rdb, []string{q.cfg.Keys.Workers()}, args...).Err()
}

// Leave removes a worker that holds no batch from the lease set and the
// registry.
func (q *Queue) Leave(ctx context.Context, worker string) error {
	k := q.cfg.Keys
	pipe := q.rdb.TxPipeline()
	pipe.ZRem(ctx, k.Workers(), worker)
	pipe.HDel(ctx, k.WorkerInfo(), worker)
	_, err := pipe.Exec(ctx)
	return err
}

// WorkerInfo is what a worker says about itself when it starts.
type WorkerInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Register records who runs workers, for `stats`: the registry is
// informational, and entries of workers that died are removed by the reaper
// with their lease.
func (q *Queue) Register(ctx context.Context, info WorkerInfo, workers ...string) error {
	if info.Started.IsZero() {
		info.Started = time.Now().UTC()
	}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	args := make([]any, 0, 2*len(workers))
	for _, w := range workers {
		args = append(args, w, b)
	}
	if len(args) == 0 {
		return nil
	}
	return q.rdb.HSet(ctx, q.cfg.Keys.WorkerInfo(), args...).Err()
}

// WorkerStatus is a worker holding a lease.
type WorkerStatus struct {
	ID string `json:"id"`
	WorkerInfo
	// LeaseUntil is when its lease ends unless renewed (Redis server clock).
	LeaseUntil time.Time `json:"lease_until"`
}

// WorkerList lists the workers holding a lease, with what they registered.
func (q *Queue) WorkerList(ctx context.Context) ([]WorkerStatus, error) {
	k := q.cfg.Keys
	zs, err := q.rdb.ZRangeWithScores(ctx, k.Workers(), 0, -1).Result()
	if err != nil || len(zs) == 0 {
		return nil, err
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i], _ = z.Member.(string)
	}
	infos, err := q.rdb.HMGet(ctx, k.WorkerInfo(), ids...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]WorkerStatus, len(zs))
	for i, z := range zs {
		out[i] = WorkerStatus{ID: ids[i], LeaseUntil: time.UnixMilli(int64(z.Score)).UTC()}
		if s, ok := infos[i].(string); ok {
			_ = json.Unmarshal([]byte(s), &out[i].WorkerInfo)
		}
	}
	return out, nil
}

// expiredScript lists workers whose lease ended, on the Redis server's
// clock.
//
//	KEYS[1] workers lease set
//	ARGV[1] grace, ms: how long past its deadline a lease still counts
//
// Returns the worker ids.
var expiredScript = redis.NewScript(nowLua + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now_ms() - tonumber(ARGV[1])))
`)

// Expired lists workers whose lease ended more than grace ago, judged on
// the Redis server's clock like the leases themselves.
func (q *Queue) Expired(ctx context.Context, grace time.Duration) ([]string, error) {
	return expiredScript.Run(ctx, q.rdb, []string{q.cfg.Keys.Workers()}, grace.Milliseconds()).StringSlice()
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

// Requeue returns a worker's unacknowledged batch to the list it came from
// and forgets the worker. batchID guards against moving a batch other than
// the one the caller fenced; "" means the worker held none. It returns how
// many messages moved, or -1 when the worker holds another batch.
func (q *Queue) Requeue(ctx context.Context, worker, batchID string) (int64, error) {
	k := q.cfg.Keys
	n, err := requeueScript.Run(ctx, q.rdb,
		[]string{k.Queue(), k.Processing(worker), k.Inflight(worker), k.Workers(), k.Quarantine(), k.Account(), k.WorkerInfo()},
		worker, batchID, q.cfg.MaxDeliveries).Int64()
	if err != nil {
		return 0, fmt.Errorf("requeue worker %s: %w", worker, err)
	}
	if n > 0 {
		q.adjustReferenceCounters(ctx, n)
		q.rdb.Publish(ctx, k.Events(), "queued")
	}
	return n, nil
}

// releaseScript forgets a dead worker whose batch is durable already.
//
//	KEYS[1] processing list   KEYS[2] inflight hash   KEYS[3] workers lease set
//	KEYS[4] worker registry
//	ARGV[1] worker id         ARGV[2] batch id
//
// Returns 1, or 0 when the worker holds another batch (it is alive).
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'batch_id') ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
`)

// Release forgets a dead worker whose batch turned out to be durable
// already: its messages are dropped from Redis, not requeued.
func (q *Queue) Release(ctx context.Context, worker, batchID string) error {
	k := q.cfg.Keys
	return releaseScript.Run(ctx, q.rdb, []string{k.Processing(worker), k.Inflight(worker), k.Workers(), k.WorkerInfo()}, worker, batchID).Err()
}

// MaxDeliveries is the redelivery limit before quarantine.
func (q *Queue) MaxDeliveries() int { return q.cfg.MaxDeliveries }

// Depth is the number of messages waiting in the ingestion list.
func (q *Queue) Depth(ctx context.Context) (int64, error) {
	return q.rdb.LLen(ctx, q.cfg.Keys.Queue()).Result()
}

// Workers is the number of workers holding a lease, alive or not yet reaped.
func (q *Queue) Workers(ctx context.Context) (int64, error) {
	return q.rdb.ZCard(ctx, q.cfg.Keys.Workers()).Result()
}

// Produced is the number of messages redpg's producers enqueued.
func (q *Queue) Produced(ctx context.Context) (int64, error) {
	n, err := q.rdb.Get(ctx, q.cfg.Keys.Produced()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// purgeScript deletes every waiting, quarantined and claimed message and
// counts them in the account, so reconciliation still balances.
//
//	KEYS[1] ingestion list   KEYS[2] quarantine list   KEYS[3] workers lease set
//	KEYS[4] account hash     KEYS[5] worker registry
//	ARGV[1] key prefix of processing lists   ARGV[2] key prefix of inflight hashes
//
// Returns the number of messages removed. The claimed ones are added to
// "returned" (they left their batch without a ledger row) and every one to
// "discarded".
var purgeScript = redis.NewScript(`
local removed = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2])
local claimed = 0
for _, w in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  claimed = claimed + redis.call('LLEN', ARGV[1] .. w)
  redis.call('DEL', ARGV[1] .. w, ARGV[2] .. w)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
redis.call('HINCRBY', KEYS[4], 'returned', claimed)
redis.call('HINCRBY', KEYS[4], 'discarded', removed + claimed)
return removed + claimed
`)

// Purge deletes every waiting, quarantined and claimed message, and counts
// them as discarded. Stop workers first: a worker that commits a purged
// batch afterwards finds it gone and cannot acknowledge it.
func (q *Queue) Purge(ctx context.Context) (int64, error) {
	k := q.cfg.Keys
	n, err := purgeScript.Run(ctx, q.rdb, []string{k.Queue(), k.Quarantine(), k.Workers(), k.Account(), k.WorkerInfo()},
		k.Processing(""), k.Inflight("")).Int64()
	if err != nil {
		return 0, fmt.Errorf("purge queue: %w", err)
	}
	// The reference's depth counters describe the list just emptied.
	pipe := q.rdb.Pipeline()
	for _, key := range k.ReferenceCounters() {
		refCounterScript.Eval(ctx, pipe, []string{key}, math.MinInt32)
	}
	_, _ = pipe.Exec(ctx)
	return n, nil
}

// snapshotScript reads, in one atomic step, every figure reconciliation
// needs from Redis.
//
//	KEYS[1] ingestion list   KEYS[2] workers lease set   KEYS[3] produced counter
//	KEYS[4] quarantine list  KEYS[5] account hash
//	ARGV[1] key prefix of processing lists   ARGV[2] key prefix of inflight hashes
//
// Returns {depth, quarantined, produced, workers, claimed, returned,
// discarded, {batch_id, size, mark, ...}, database, epoch} where the eighth
// element lists every claimed, unacknowledged batch flat, database is the
// id of the database the account is bound to ("" when unbound) and epoch
// the account's epoch ("" before its first claim or binding).
var snapshotScript = redis.NewScript(`
local batches = {}
local workers = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, w in ipairs(workers) do
  local n = redis.call('LLEN', ARGV[1] .. w)
  if n > 0 then
    local f = redis.call('HMGET', ARGV[2] .. w, 'batch_id', 'mark')
    batches[#batches + 1] = f[1] or ''
    batches[#batches + 1] = n
    batches[#batches + 1] = tonumber(f[2] or '0')
  end
end
local a = redis.call('HMGET', KEYS[5], 'claimed', 'returned', 'discarded', 'database', 'epoch')
return {redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[4]),
  tonumber(redis.call('GET', KEYS[3]) or '0'), #workers,
  tonumber(a[1] or '0'), tonumber(a[2] or '0'), tonumber(a[3] or '0'), batches, a[4] or '', a[5] or ''}
`)

// InflightBatch is a claimed batch not yet acknowledged.
type InflightBatch struct {
	ID   string
	Size int64
	Mark int64
}

// Snapshot is a consistent reading of the queue's figures.
type Snapshot struct {
	Depth       int64 // waiting in the ingestion list
	Quarantined int64 // waiting to be dead-lettered undecoded
	Produced    int64 // ever enqueued by redpg's producers
	Workers     int64 // workers holding a lease
	Claimed     int64 // ever taken into a batch, from any producer
	Returned    int64 // taken back out of an unfinished batch (requeue, purge)
	Discarded   int64 // removed by a purge
	Batches     []InflightBatch
	// Database is the id of the database the account is bound to, "" when
	// unbound (see Bind).
	Database string
	// Epoch is the account's epoch: marks compare only within it.
	Epoch string
}

// InFlight is the number of messages claimed and not yet acknowledged.
func (s Snapshot) InFlight() int64 {
	var n int64
	for _, b := range s.Batches {
		n += b.Size
	}
	return n
}

// Arrived is the number of messages that ever entered the queue, from any
// producer: what is there now, plus what left it for a batch and did not
// come back, plus what was discarded.
func (s Snapshot) Arrived() int64 {
	return s.Depth + s.Quarantined + s.Claimed - s.Returned + s.Discarded
}

// Snapshot reads the queue's figures atomically.
func (q *Queue) Snapshot(ctx context.Context) (Snapshot, error) {
	k := q.cfg.Keys
	res, err := snapshotScript.Run(ctx, q.rdb, []string{k.Queue(), k.Workers(), k.Produced(), k.Quarantine(), k.Account()},
		k.Processing(""), k.Inflight("")).Slice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("read queue figures: %w", err)
	}
	if len(res) != 10 {
		return Snapshot{}, fmt.Errorf("read queue figures: unexpected reply of %d elements", len(res))
	}
	n := make([]int64, 7)
	for i := range n {
		n[i], _ = res[i].(int64)
	}
	s := Snapshot{Depth: n[0], Quarantined: n[1], Produced: n[2], Workers: n[3], Claimed: n[4], Returned: n[5], Discarded: n[6]}
	s.Database, _ = res[8].(string)
	s.Epoch, _ = res[9].(string)
	flat, _ := res[7].([]any)
	for i := 0; i+2 < len(flat); i += 3 {
		id, _ := flat[i].(string)
		size, _ := flat[i+1].(int64)
		mark, _ := flat[i+2].(int64)
		s.Batches = append(s.Batches, InflightBatch{ID: id, Size: size, Mark: mark})
	}
	return s, nil
}

// bindScript ties the account to the database whose ledger it balances
// against, and gives it an epoch.
//
//	KEYS[1] account hash   KEYS[2] produced counter   KEYS[3] workers lease set
//	KEYS[4...] what else belongs to the database and goes with a reset: the
//	de-dup window, the live windows
//	ARGV[1] database id    ARGV[2] "1" when that database has never
//	counted a claimed batch   ARGV[3] epoch to start   ARGV[4] "1" to reset
//	whatever the account holds
//
// Returns {state, database id the account had, epoch}, state being:
// "bound" — the account is this database's already; "adopted" — it was
// bound to none (Redis lost it, or it predates binding) and keeps its
// counters; "reset" — it starts over at zero (claimed, returned, discarded
// and produced) in a new epoch, because the database is fresh, or on
// request, and no worker holds a lease — and the de-dup and live windows
// go too: they describe orders of the database they were kept for, and a
// window that says "seen" of an id this database never stored would make
// a valid re-send a duplicate stored nowhere; "mismatch" — it is another
// database's and this one has a history too, or workers are live: nothing
// changes.
var bindScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'database')
if cur == ARGV[1] and ARGV[4] ~= '1' then
  redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3])
  return {'bound', cur, redis.call('HGET', KEYS[1], 'epoch')}
end
local idle = redis.call('ZCARD', KEYS[3]) == 0
if not cur and ARGV[2] ~= '1' and ARGV[4] ~= '1' then
  redis.call('HSET', KEYS[1], 'database', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3])
  return {'adopted', '', redis.call('HGET', KEYS[1], 'epoch')}
end
if not idle or (cur and ARGV[2] ~= '1' and ARGV[4] ~= '1') then
  return {'mismatch', cur or '', redis.call('HGET', KEYS[1], 'epoch') or ''}
end
redis.call('DEL', unpack(KEYS))
redis.call('HSET', KEYS[1], 'database', ARGV[1], 'epoch', ARGV[3])
return {'reset', cur or '', ARGV[3]}
`)

// Binding says how Bind found the account.
type Binding struct {
	// State is "bound", "adopted", "reset" or "mismatch" (see bindScript).
	State string
	// Previous is the database the account belonged to before.
	Previous string
	// Epoch is the account's epoch after binding.
	Epoch string
}

// Bind ties the account to database, which is fresh when it has never
// counted a claimed batch; reset starts the account over whatever it
// holds, as long as no worker is live (see bindScript).
func (q *Queue) Bind(ctx context.Context, database string, fresh, reset bool) (Binding, error) {
	k := q.cfg.Keys
	res, err := bindScript.Run(ctx, q.rdb, []string{k.Account(), k.Produced(), k.Workers(), k.Dedup(), k.Window(), k.WindowRevenue()},
		database, flag(fresh), newEpoch(), flag(reset)).StringSlice()
	if err != nil {
		return Binding{}, fmt.Errorf("bind the Redis account to the database: %w", err)
	}
	if len(res) != 3 {
		return Binding{}, fmt.Errorf("bind the Redis account: unexpected reply of %d elements", len(res))
	}
	return Binding{State: res[0], Previous: res[1], Epoch: res[2]}, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// newEpoch returns a fresh epoch name: the time it started, for people, and
// random bits, so two never collide.
func newEpoch() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
