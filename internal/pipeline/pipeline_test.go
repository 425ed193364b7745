package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/money"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/transform"
)

// newPipeline builds a pipeline on env. workerPG nil means env.PG.
func newPipeline(t *testing.T, env *testenv.Env, cfg pipeline.Config, workerPG *pgxpool.Pool) *pipeline.Pipeline {
	t.Helper()
	cfg.Keys, cfg.Tables = env.Keys, env.Tables
	if cfg.IdleWait == 0 {
		cfg.IdleWait = 100 * time.Millisecond
	}
	p, err := pipeline.New(cfg, env.PG, workerPG, env.RDB)
	require.NoError(t, err)
	return p
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// requireConsistent checks the invariants every finished run must satisfy.
func requireConsistent(t *testing.T, ctx context.Context, env *testenv.Env, p *pipeline.Pipeline, gen generate.Counts) {
	t.Helper()
	require.Equal(t, int64(gen.Unique), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()), "production rows")
	require.Equal(t, int64(gen.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()), "dead letters")
	tot, err := ledger.Totals(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Equal(t, int64(gen.Unique), tot.Promoted, "ledger promoted")
	require.Equal(t, int64(gen.Duplicates), tot.Duplicates, "ledger duplicates")
	require.Equal(t, int64(gen.Invalid), tot.Rejected, "ledger rejected")

	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "reconcile problems: %v\n%s", r.Problems, r)
	require.Zero(t, r.Unaccounted)
	require.Equal(t, int64(gen.Total), r.Produced)
	require.Contains(t, r.String(), "OK:")

	s, err := p.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.QueueDepth)
	require.Zero(t, s.Processing)
	require.Zero(t, s.StagingRows)
	require.Zero(t, s.Workers, "workers leave the lease set when they stop")
	require.Equal(t, int64(gen.Total), s.Produced)
	require.Equal(t, int64(gen.Unique), s.ProductionRows)
	require.Equal(t, int64(gen.Unique), s.PromotedTotal)
	require.Equal(t, int64(gen.Invalid), s.RejectedRows)
	require.Equal(t, int64(gen.Invalid), s.RejectedTotal)
	require.Equal(t, int64(gen.Duplicates), s.DuplicatesTotal)
	require.Equal(t, int64(32), s.LookupCacheSize)
	var byReason int64
	for _, n := range s.RejectedByReason {
		byReason += n
	}
	require.Equal(t, int64(gen.Invalid), byReason)
}

// requireViewsMatch refreshes the views through Promote and compares their
// totals with direct aggregates over orders.
func requireViewsMatch(t *testing.T, ctx context.Context, env *testenv.Env, p *pipeline.Pipeline) {
	t.Helper()
	require.NoError(t, p.Promote(ctx))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()), "workers leave nothing in staging")
	env.RequireViewsMatchOrders(t)
}

// TestEndToEnd is the "Done when": 20,000 orders with 5% duplicates
// and 3% invalid, four workers, everything accounted for.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	const n, workers = 20000, 4
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 500}, nil)

	gen, err := p.Generate(ctx, n, generate.Config{Duplicates: 0.05, Invalid: 0.03, Seed: 42}, nil)
	require.NoError(t, err)
	require.Equal(t, n, gen.Total)
	require.Equal(t, n, gen.Unique+gen.Duplicates+gen.Invalid)
	require.Positive(t, gen.Duplicates)
	require.Positive(t, gen.Invalid)

	// Each worker, after its first batch, waits until all four have done
	// one: this finishes only if four workers really run side by side.
	var mu sync.Mutex
	perWorker := map[string]int{}
	allStarted := make(chan struct{})
	var reported ledger.Counts
	counts, err := p.Run(ctx, pipeline.RunOptions{Workers: workers, UntilEmpty: true, OnBatch: func(r pipeline.BatchReport) {
		mu.Lock()
		perWorker[r.Worker]++
		reported = reported.Add(r.Counts)
		first := perWorker[r.Worker] == 1
		if first && len(perWorker) == workers {
			close(allStarted)
		}
		mu.Unlock()
		if first {
			select {
			case <-allStarted:
			case <-ctx.Done():
			}
		}
	}})
	require.NoError(t, err)
	require.Len(t, perWorker, workers, "batches per worker: %v", perWorker)
	require.Equal(t, ledger.Counts{Received: n, Promoted: int64(gen.Unique), Duplicates: int64(gen.Duplicates), Rejected: int64(gen.Invalid)}, counts)
	require.Equal(t, counts, reported)
	require.Equal(t, int64(workers), env.Count(t, "SELECT count(DISTINCT worker) FROM "+env.Tables.Batches()+" WHERE status = 'committed'"))

	requireConsistent(t, ctx, env, p, gen)
	s, err := p.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(gen.Unique), s.DedupWindowSize, "every promoted id is in the window")
	requireViewsMatch(t, ctx, env, p)
	// The generator's invalid kinds all ended with a reason.
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = '' OR detail IS NULL"))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE total_amount_usd * 100 <> "+
		money.USDCentsSQL("(total_amount * 100)", "(SELECT rate_to_usd FROM "+env.Tables.Currencies()+" c WHERE c.currency_code = currency)")),
		"every USD total is the amount divided by rate_to_usd, rounded half up exactly")
}

// TestThroughPgBouncer runs workers through PgBouncer in transaction mode.
func TestThroughPgBouncer(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	bouncer := testenv.PgBouncer(t, 8)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 300}, bouncer)

	gen, err := p.Generate(ctx, 3000, generate.Config{Duplicates: 0.05, Invalid: 0.03, Seed: 7}, nil)
	require.NoError(t, err)
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 3, UntilEmpty: true})
	require.NoError(t, err)
	require.GreaterOrEqual(t, bouncer.Stat().AcquireCount(), int64(10), "the workers' transactions went through PgBouncer")
	requireConsistent(t, ctx, env, p, gen)
	requireViewsMatch(t, ctx, env, p)
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	_, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables, Lease: 50 * time.Millisecond, BatchSize: -1}, env.PG, nil, env.RDB)
	require.ErrorContains(t, err, "lease")
	require.ErrorContains(t, err, "batch size")

	p := newPipeline(t, env, pipeline.Config{}, nil)
	cfg := p.Config()
	require.Equal(t, 5000, cfg.BatchSize)
	require.Equal(t, time.Hour, cfg.DedupWindow)
	require.Equal(t, 30*time.Second, cfg.Lease)
	require.Equal(t, env.Schema, cfg.Tables.Schema)
}

// message returns a valid order message with the given id and product.
func message(t *testing.T, id, product, zip string) []byte {
	t.Helper()
	b, err := json.Marshal(order.Message{OrderID: id, CustomerID: "CUST-1", ProductID: product, Quantity: 3, UnitPrice: "10.00",
		Currency: "GBP", ZipCode: zip, OrderTimestamp: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
	require.NoError(t, err)
	return b
}

func TestReaperRequeuesADeadWorkersBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 50, Lease: 300 * time.Millisecond}, nil)
	gen, err := p.Generate(ctx, 300, generate.Config{Seed: 3}, nil)
	require.NoError(t, err)

	// A worker claimed a batch and died: its lease is already over.
	b, err := p.Queue().Claim(ctx, "dead-worker", "b-x", 100, -time.Second)
	require.NoError(t, err)
	require.Len(t, b.Messages, 100)

	moved, err := p.Reap(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(100), moved)
	status, err := ledger.Status(ctx, env.PG, env.Tables, "b-x")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status, "the batch is fenced before it is requeued")
	snap, err := p.Queue().Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(300), snap.Depth)
	require.Zero(t, snap.InFlight())

	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	requireConsistent(t, ctx, env, p, gen)
	var worker string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT worker FROM "+env.Tables.Batches()+" WHERE batch_id = 'b-x'").Scan(&worker))
	require.Equal(t, "dead-worker", worker)
}

func TestRunReapsADeadWorkerByItself(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 50, Lease: 300 * time.Millisecond}, nil)
	gen, err := p.Generate(ctx, 200, generate.Config{Seed: 4, Duplicates: 0.1}, nil)
	require.NoError(t, err)
	_, err = p.Queue().Claim(ctx, "dead-worker", "b-x", 100, -time.Second)
	require.NoError(t, err)

	// UntilEmpty must not return while the dead worker holds messages.
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	requireConsistent(t, ctx, env, p, gen)
	status, err := ledger.Status(ctx, env.PG, env.Tables, "b-x")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status)
}

// A worker that committed its batch but died before acknowledging it:
// the reaper finds the batch committed and releases it instead of
// requeueing, so nothing is promoted or counted twice.
func TestReaperReleasesACommittedBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 50, Lease: 300 * time.Millisecond}, nil)
	gen, err := p.Generate(ctx, 150, generate.Config{Seed: 5}, nil)
	require.NoError(t, err)
	b, err := p.Queue().Claim(ctx, "dead-worker", "b-y", 100, -time.Second)
	require.NoError(t, err)

	// Do what the dead worker did before dying: stage, promote, record.
	snap, err := p.Lookups().Current(ctx)
	require.NoError(t, err)
	var orders []order.Order
	for _, raw := range b.Messages {
		o, err := order.Decode(raw)
		require.NoError(t, err)
		orders = append(orders, o)
	}
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		rows := transform.Apply(orders, snap)
		if _, err := stage.Copy(ctx, tx, env.Tables, b.ID, rows); err != nil {
			return err
		}
		res, err := promote.Batch(ctx, tx, env.Tables, b.ID, rows)
		if err != nil {
			return err
		}
		ok, err := ledger.Record(ctx, tx, env.Tables, b.ID, ledger.Committed, "dead-worker",
			ledger.Claim{Epoch: b.Epoch, Mark: b.Mark}, ledger.Counts{Received: 100, Promoted: int64(len(res.Promoted))})
		require.True(t, ok)
		return err
	}))

	moved, err := p.Reap(ctx)
	require.NoError(t, err)
	require.Zero(t, moved, "a committed batch is released, not requeued")
	qs, err := p.Queue().Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(50), qs.Depth)
	require.Zero(t, qs.InFlight())
	require.Zero(t, qs.Workers)

	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	requireConsistent(t, ctx, env, p, gen)
	status, err := ledger.Status(ctx, env.PG, env.Tables, "b-y")
	require.NoError(t, err)
	require.Equal(t, ledger.Committed, status)
}

// Delivering the same orders twice never doubles rows, whether the window
// or the primary key catches the repeat.
func TestRepeatedDeliveryNeverDoublesRows(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 40}, nil)
	var msgs [][]byte
	for i := range 100 {
		msgs = append(msgs, message(t, fmt.Sprintf("ORD-%03d", i), "PROD-002", "60601"))
	}
	require.NoError(t, p.Push(ctx, msgs, nil))
	c1, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(100), c1.Promoted)

	// Again: the de-dup window catches them.
	require.NoError(t, p.Push(ctx, msgs, nil))
	c2, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{Received: 100, Duplicates: 100}, c2)

	// Again with the window forgotten: PostgreSQL's primary key catches them.
	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{Dedup: true}))
	require.NoError(t, p.Push(ctx, msgs, nil))
	c3, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{Received: 100, Duplicates: 100}, c3)

	require.Equal(t, int64(100), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	require.Equal(t, int64(300), r.Produced)
	require.Equal(t, int64(200), r.Duplicates)
}

func TestIterationsBoundsTheRun(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 10}, nil)
	_, err := p.Generate(ctx, 50, generate.Config{Seed: 6}, nil)
	require.NoError(t, err)
	c, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, Iterations: 2})
	require.NoError(t, err)
	require.Equal(t, int64(20), c.Received)
	depth, err := p.Queue().Depth(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(30), depth)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	require.Equal(t, int64(30), r.Queued)
}

func TestRunStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(ctx, pipeline.RunOptions{Workers: 2}) // an idle, endless run
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("Run did not stop after its context was cancelled")
	}
	n, err := p.Queue().Workers(context.Background())
	require.NoError(t, err)
	require.Zero(t, n, "idle workers leave the lease set")
}

func TestReplayPromotesFixedDeadLettersOnce(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 10}, nil)

	var msgs [][]byte
	for i := range 30 {
		msgs = append(msgs, message(t, fmt.Sprintf("ORD-NEW-%02d", i), "PROD-900", "10001"))
	}
	for i := range 20 {
		msgs = append(msgs, message(t, fmt.Sprintf("ORD-OK-%02d", i), "PROD-001", "94102"))
	}
	msgs = append(msgs, message(t, "ORD-BADZIP", "PROD-001", "99999"))
	require.NoError(t, p.Push(ctx, msgs, nil))
	_, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(20), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Equal(t, int64(30), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = $1", order.ReasonUnknownProduct))

	// Fix the cause: add the product and republish it.
	_, err = env.PG.Exec(ctx, "INSERT INTO "+env.Tables.Products()+
		" (product_id, product_name, category, base_price) VALUES ('PROD-900', 'Desk Lamp', 'Home & Kitchen', 12.66)")
	require.NoError(t, err)
	_, err = p.InitCache(ctx, "products")
	require.NoError(t, err)

	res, err := p.Replay(ctx, pipeline.ReplayOptions{Reason: order.ReasonUnknownProduct})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 30, Promoted: 30}, res)
	require.Equal(t, int64(50), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Equal(t, int64(30), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE product_name = 'Desk Lamp'"))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = $1", order.ReasonUnknownProduct))
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	require.Equal(t, int64(50), r.Promoted)
	require.Equal(t, int64(1), r.Rejected)
	seen, err := p.Dedup().Seen(ctx, []string{"ORD-NEW-00"})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, seen, "replayed orders join the de-dup window")

	again, err := p.Replay(ctx, pipeline.ReplayOptions{Reason: order.ReasonUnknownProduct})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{}, again, "a second replay finds nothing")
	require.Equal(t, int64(50), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))

	// A letter whose cause is not fixed comes back with a new id.
	var oldID int64
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT id FROM "+env.Tables.Rejected()).Scan(&oldID))
	res, err = p.Replay(ctx, pipeline.ReplayOptions{IDs: []int64{oldID}})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 1, StillRejected: 1}, res)
	var newID int64
	var reason string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT id, reason FROM "+env.Tables.Rejected()).Scan(&newID, &reason))
	require.Greater(t, newID, oldID)
	require.Equal(t, order.ReasonUnknownZip, reason)
	r, err = p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
}

func TestClear(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 100}, nil)
	_, err := p.Generate(ctx, 300, generate.Config{Seed: 8, Invalid: 0.1, Duplicates: 0.1}, nil)
	require.NoError(t, err)
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 1, Iterations: 2})
	require.NoError(t, err)
	require.NoError(t, p.Promote(ctx))
	_, err = p.Queue().Claim(ctx, "holder", "b-held", 10, time.Hour)
	require.NoError(t, err)

	s, err := p.Stats(ctx)
	require.NoError(t, err)
	require.Positive(t, s.DedupWindowSize)
	require.Positive(t, s.LookupCacheSize)
	require.Positive(t, s.QueueDepth)

	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{Dedup: true}))
	s, err = p.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.DedupWindowSize)
	require.Positive(t, s.LookupCacheSize)

	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{Cache: true}))
	s, err = p.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.LookupCacheSize)
	require.Positive(t, s.ProductionRows, "clearing Redis leaves PostgreSQL alone")

	// A live worker holds a batch: emptying the queue under it would count
	// its batch both promoted and discarded, so clear refuses.
	err = p.Clear(ctx, pipeline.ClearOptions{Queue: true})
	require.ErrorIs(t, err, pipeline.ErrWorkersRunning)
	require.Contains(t, err.Error(), "stop them")
	// Once its lease ran out (a dead worker), the queue can be emptied.
	require.NoError(t, p.Queue().Heartbeat(ctx, -time.Second, "holder"))
	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{Queue: true}))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "purging keeps reconciliation exact: %s", r)
	require.Zero(t, r.Queued)
	require.Zero(t, r.InFlight)

	require.NoError(t, p.Clear(ctx, pipeline.ClearOptions{All: true}))
	s, err = p.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.ProductionRows)
	require.Zero(t, s.RejectedRows)
	require.Zero(t, s.StagingRows)
	require.Zero(t, s.Batches)
	require.Zero(t, s.Produced)
	for v, n := range s.Views {
		require.Zero(t, n, v)
	}
	var keys []string
	for _, pattern := range []string{env.Prefix + "*", env.Keys.Pattern()} {
		iter := env.RDB.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		require.NoError(t, iter.Err())
	}
	require.Empty(t, keys, "clear --all removes every redpg key")
	require.Equal(t, int64(15), env.Count(t, "SELECT count(*) FROM "+env.Tables.Products()), "lookup tables are never touched")
}

func TestStatsAndReconcileOnAnEmptyPipeline(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	s, err := p.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.ProductionRows)
	require.Zero(t, s.LookupCacheSize, "stats does not publish a snapshot")
	require.Len(t, s.Views, 3)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK())
	require.Empty(t, r.Problems)
}

func TestReconcileReportsLostMessages(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{}, nil)
	_, err := p.Generate(ctx, 10, generate.Config{Seed: 9}, nil)
	require.NoError(t, err)
	// Something outside redpg drops three messages.
	require.NoError(t, env.RDB.RPopCount(ctx, env.Keys.Queue(), 3).Err())
	ctx2, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := p.Reconcile(ctx2)
	require.NoError(t, err)
	require.False(t, r.OK())
	require.Equal(t, int64(-3), r.OtherProducers, "three counted messages never reached a worker")
	require.Contains(t, r.String(), "PROBLEM: 3 messages counted by redpg's producers never reached a worker")
}
