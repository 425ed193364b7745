package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/testenv"
)

func record(t *testing.T, env *testenv.Env, batchID, status string, c ledger.Counts) bool {
	t.Helper()
	ctx := context.Background()
	var ok bool
	require.NoError(t, pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		var err error
		ok, err = ledger.Record(ctx, tx, env.Tables, batchID, status, "w-1", ledger.Claim{}, c)
		return err
	}))
	return ok
}

func TestRecordOncePerBatch(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	c := ledger.Counts{Received: 10, Promoted: 7, Duplicates: 2, Rejected: 1}
	require.True(t, record(t, env, "b-1", ledger.Committed, c))
	require.False(t, record(t, env, "b-1", ledger.Committed, c), "a batch id already decided must be refused")

	status, err := ledger.Status(ctx, env.PG, env.Tables, "b-1")
	require.NoError(t, err)
	require.Equal(t, ledger.Committed, status)
	status, err = ledger.Status(ctx, env.PG, env.Tables, "b-unknown")
	require.NoError(t, err)
	require.Empty(t, status)

	tot, err := ledger.Totals(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Equal(t, c, tot, "the refused second record counted nothing")
}

func TestFenceUndecidedBatchAbandonsIt(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	status, err := ledger.Fence(ctx, env.PG, env.Tables, "b-dead", "dead-worker")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status)

	// The slow worker that held the batch can no longer commit it.
	require.False(t, record(t, env, "b-dead", ledger.Committed, ledger.Counts{Received: 5, Promoted: 5}))
	status, err = ledger.Status(ctx, env.PG, env.Tables, "b-dead")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status)

	var worker string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT worker FROM "+env.Tables.Batches()+" WHERE batch_id = 'b-dead'").Scan(&worker))
	require.Equal(t, "dead-worker", worker)

	status, err = ledger.Fence(ctx, env.PG, env.Tables, "b-dead", "another-reaper")
	require.NoError(t, err)
	require.Equal(t, ledger.Abandoned, status, "fencing twice is harmless")
}

func TestFenceCommittedBatchKeepsIt(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	require.True(t, record(t, env, "b-done", ledger.Committed, ledger.Counts{Received: 3, Promoted: 3}))
	status, err := ledger.Fence(ctx, env.PG, env.Tables, "b-done", "w-1")
	require.NoError(t, err)
	require.Equal(t, ledger.Committed, status)
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Batches()))
}

// A reaper fencing a batch whose worker is committing it right now waits
// for that transaction and then sees its outcome: exactly one side wins.
func TestFenceWaitsForAnInFlightCommit(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{true, false} {
		env := testenv.New(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tx, err := env.PG.Begin(ctx)
		require.NoError(t, err)
		ok, err := ledger.Record(ctx, tx, env.Tables, "b-race", ledger.Committed, "slow-worker", ledger.Claim{}, ledger.Counts{Received: 1, Promoted: 1})
		require.NoError(t, err)
		require.True(t, ok)

		fenced := make(chan string, 1)
		fenceErr := make(chan error, 1)
		go func() {
			s, err := ledger.Fence(ctx, env.PG, env.Tables, "b-race", "reaper")
			fenceErr <- err
			fenced <- s
		}()
		// Wait until the fence is blocked on the worker's row lock.
		for {
			n := env.Count(t, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
				"%"+env.Schema+"%pipeline_batches%ON CONFLICT%")
			if n > 0 {
				break
			}
			select {
			case err := <-fenceErr:
				t.Fatalf("Fence returned (%v) while the worker's transaction was open", err)
			case <-ctx.Done():
				t.Fatal("Fence never waited on the worker's transaction")
			case <-time.After(10 * time.Millisecond):
			}
		}
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Rollback(ctx))
		}
		require.NoError(t, <-fenceErr)
		status := <-fenced
		if commit {
			require.Equal(t, ledger.Committed, status, "the worker committed first: release, do not requeue")
		} else {
			require.Equal(t, ledger.Abandoned, status, "the worker rolled back: the reaper wins")
		}
		cancel()
	}
}

func TestTotalsAndCounts(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	tot, err := ledger.Totals(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{}, tot)

	a := ledger.Counts{Received: 10, Promoted: 6, Duplicates: 3, Rejected: 1}
	b := ledger.Counts{Received: 5, Promoted: 5}
	require.True(t, record(t, env, "b-a", ledger.Committed, a))
	require.True(t, record(t, env, "b-b", ledger.Committed, b))
	_, err = ledger.Fence(ctx, env.PG, env.Tables, "b-c", "dead")
	require.NoError(t, err)
	require.True(t, record(t, env, "replay-1", ledger.Replay, ledger.Counts{Promoted: 1, Rejected: -1}))

	tot, err = ledger.Totals(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{Received: 15, Promoted: 12, Duplicates: 3, Rejected: 0}, tot)
	require.Equal(t, ledger.Counts{Received: 15, Promoted: 11, Duplicates: 3, Rejected: 1}, a.Add(b))
}

func TestRecordRejectsUnknownStatus(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, env.PG, func(tx pgx.Tx) error {
		_, err := ledger.Record(ctx, tx, env.Tables, "b-1", "maybe", "w", ledger.Claim{}, ledger.Counts{})
		return err
	})
	require.Error(t, err)
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Batches()))
}
