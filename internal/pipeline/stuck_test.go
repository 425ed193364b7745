package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// holdOpen begins a transaction on env that runs sql and stays open, as a
// frozen worker's does, until the returned function (also run at cleanup)
// rolls it back.
func holdOpen(t *testing.T, env *testenv.Env, sql string, args ...any) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := env.PG.Acquire(ctx)
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Release()
		t.Fatal(err)
	}
	var done atomic.Bool
	release := func() {
		if done.CompareAndSwap(false, true) {
			_ = tx.Rollback(ctx)
			conn.Release()
		}
	}
	t.Cleanup(release)
	_, err = tx.Exec(ctx, sql, args...)
	require.NoError(t, err)
	return release
}

// A reaper facing a dead worker whose ledger row another transaction holds
// (a frozen worker's, which has inserted it and not committed) used to wait
// for it without end, and every other dead worker's batch waited behind
// it. Now the fence gives up after lock_timeout, that worker is left for the
// next round, and the others are reaped.
func TestReaperReapsEachDeadWorkerOnItsOwn(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 50, LockTimeout: 300 * time.Millisecond}, nil)
	_, err := p.Generate(ctx, 100, generate.Config{Seed: 81}, nil)
	require.NoError(t, err)
	// Two dead workers; the frozen one's lease ran out first, so the
	// reaper meets it first.
	_, err = p.Queue().Claim(ctx, "frozen", "b-frozen", 50, -2*time.Second)
	require.NoError(t, err)
	_, err = p.Queue().Claim(ctx, "dead", "b-dead", 50, -time.Second)
	require.NoError(t, err)
	release := holdOpen(t, env, "INSERT INTO "+env.Tables.Batches()+" (batch_id, status, worker) VALUES ('b-frozen', 'committed', 'frozen')")

	reapCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	moved, err := p.Reap(reapCtx)
	require.Error(t, err, "the frozen worker's batch cannot be decided yet")
	require.NoError(t, reapCtx.Err(), "the reaper must not wait for the frozen transaction")
	require.Contains(t, err.Error(), "frozen")
	require.Equal(t, int64(50), moved, "the other dead worker was reaped all the same")
	status, err := ledger.Status(ctx, env.PG, env.Tables, "b-dead")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status)

	// The frozen transaction ends (PostgreSQL's idle-in-transaction timeout
	// in real life): the next round decides the batch.
	release()
	moved, err = p.Reap(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(50), moved)
	status, err = ledger.Status(ctx, env.PG, env.Tables, "b-frozen")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status)
}

// A worker that takes over a batch whose order ids a frozen transaction has
// inserted, uncommitted, used to block in COPY orders for as long as that
// transaction lived, while its heartbeat kept its lease alive. Now the
// statement gives up after lock_timeout and the batch is retried as a
// transient failure: never dead-lettered, however long it takes.
func TestLockWaitIsRetriedNotDeadLettered(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	var logs logBuffer
	p := newPipeline(t, env, pipeline.Config{BatchSize: 100, MaxAttempts: 1, LockTimeout: 200 * time.Millisecond, Logger: logs.logger()}, nil)
	require.NoError(t, p.Push(ctx, [][]byte{message(t, "ORD-HELD", "PROD-001", "94102"), message(t, "ORD-FREE", "PROD-002", "10001")}, nil))
	release := holdOpen(t, env, "INSERT INTO "+env.Tables.Orders()+
		" (order_id, customer_id, product_id, product_name, category, quantity, unit_price, currency, total_amount, total_amount_usd,"+
		" zip_code, city, state, country, shipping_zone, order_timestamp, raw_data)"+
		" VALUES ('ORD-HELD', 'C', 'PROD-001', 'P', 'C', 1, 1, 'USD', 1, 1, '94102', 'c', 's', 'US', 2, now(), '{}')")

	done := make(chan error, 1)
	go func() {
		_, err := p.Run(boundedCtx(t, time.Minute), pipeline.RunOptions{Workers: 1, UntilEmpty: true})
		done <- err
	}()
	lockTimeouts := func() int {
		n := 0
		for _, r := range logs.records(t, "batch not committed; retrying") {
			if s, _ := r["err"].(string); strings.Contains(s, "55P03") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for lockTimeouts() < 3 {
		require.True(t, time.Now().Before(deadline), "the worker never gave up waiting for the lock")
		time.Sleep(50 * time.Millisecond)
	}
	release()
	require.NoError(t, <-done)
	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()), "a lock wait is not the batch's fault")
}

// A batch's transaction that sits idle — its worker frozen — is ended by
// PostgreSQL after the idle-in-transaction timeout, which releases its
// locks; the worker, once it wakes, retries the batch. (The chaos test
// TestFrozenWorkerProcess does this with a SIGSTOPped process through
// PgBouncer.)
func TestIdleTransactionOfAStalledWorkerIsEnded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	var logs logBuffer
	var stalls atomic.Int32
	cfg := pipeline.Config{BatchSize: 100, IdleInTransactionTimeout: 300 * time.Millisecond, Logger: logs.logger()}
	cfg.Hooks.BeforeCommit = func(ctx context.Context, _ string) error {
		if stalls.Add(1) == 1 {
			time.Sleep(2 * time.Second) // frozen, inside the transaction
		}
		return nil
	}
	p := newPipeline(t, env, cfg, nil)
	gen, err := p.Generate(ctx, 50, generate.Config{Seed: 82}, nil)
	require.NoError(t, err)
	_, err = p.Run(boundedCtx(t, time.Minute), pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(gen.Unique), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.GreaterOrEqual(t, stalls.Load(), int32(2), "the stalled transaction was ended and the batch tried again")
	require.NotEmpty(t, logs.records(t, "batch not committed; retrying"))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = $1", order.ReasonInfrastructure))

	// And the three settings are what a pipeline transaction sees.
	var lock, stmt, idle string
	require.NoError(t, pgx.BeginTxFunc(ctx, env.PG, pgx.TxOptions{BeginQuery: pipeline.BeginSQL(p.Config())}, func(tx pgx.Tx) error {
		return errors.Join(tx.QueryRow(ctx, "SHOW lock_timeout").Scan(&lock), tx.QueryRow(ctx, "SHOW statement_timeout").Scan(&stmt),
			tx.QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&idle))
	}))
	require.Equal(t, []string{"5s", "1min", "300ms"}, []string{lock, stmt, idle})
}
