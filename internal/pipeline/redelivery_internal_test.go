package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/testenv"
)

// A worker that committed a batch and lost track of it before the ack (say
// Redis blipped) claims the very same batch again: the ledger recognises
// it, so the worker acknowledges it instead of promoting it a second time.
func TestRedeliveredBatchIsAcknowledgedNotPromotedAgain(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := New(Config{Keys: env.Keys, Tables: env.Tables}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	gen, err := p.Generate(ctx, 120, generate.Config{Seed: 11}, nil)
	require.NoError(t, err)

	b, err := p.queue.Claim(ctx, "w", "b-1", 100, time.Hour)
	require.NoError(t, err)
	pr, err := p.prepare(ctx, b.Messages)
	require.NoError(t, err)
	pr.claim = ledger.Claim{Epoch: b.Epoch, Mark: b.Mark}
	out, err := p.commit(ctx, "w", b.ID, pr)
	require.NoError(t, err)
	require.Len(t, out.promoted, 100)
	require.Empty(t, out.status)

	// The same batch committed again (no ack, no window mark happened) is
	// refused by the ledger and rolled back.
	again, err := p.commit(ctx, "w", b.ID, pr)
	require.NoError(t, err)
	require.Equal(t, ledger.Committed, again.status)
	require.Empty(t, again.promoted)
	require.Equal(t, int64(100), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))

	// Redelivered to the same worker: attempts 2, and handled by acking.
	redelivered, err := p.queue.Claim(ctx, "w", "b-2", 100, time.Hour)
	require.NoError(t, err)
	require.Equal(t, "b-1", redelivered.ID)
	require.Equal(t, int64(2), redelivered.Attempts)
	counts, err := p.handle(ctx, ctx, "w", redelivered)
	require.NoError(t, err)
	require.Equal(t, ledger.Counts{}, counts, "nothing new happened")
	id, n, err := p.queue.Inflight(ctx, "w")
	require.NoError(t, err)
	require.Empty(t, id)
	require.Zero(t, n, "the batch was acknowledged")

	// The rest of the queue goes through normally.
	_, err = p.Run(ctx, RunOptions{UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(gen.Unique), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Batches()+" WHERE batch_id = 'b-1'"))
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	require.Zero(t, r.Duplicates)
}

// A batch that keeps failing for a reason of its own ends in the
// one-by-one fallback, which promotes what it can and dead-letters the rest
// with the database's error, all under the ledger.
func TestCommitEachPromotesWhatItCan(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := New(Config{Keys: env.Keys, Tables: env.Tables}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	gen, err := p.Generate(ctx, 20, generate.Config{Seed: 12}, nil)
	require.NoError(t, err)
	b, err := p.queue.Claim(ctx, "w", "b-each", 20, time.Hour)
	require.NoError(t, err)
	pr, err := p.prepare(ctx, b.Messages)
	require.NoError(t, err)
	require.Len(t, pr.rows, gen.Unique)
	// Poison one row so that PostgreSQL refuses it: text cannot hold NUL.
	pr.rows[3].Order.CustomerID = "CUST-\x00"
	poisoned := pr.rows[3].Order.OrderID

	_, err = p.commit(ctx, "w", b.ID, pr)
	require.Error(t, err, "the whole batch fails at once")
	out, err := p.commitEach(ctx, "w", b.ID, pr)
	require.NoError(t, err)
	require.Len(t, out.promoted, gen.Unique-1)
	require.Equal(t, ledger.Counts{Received: 20, Promoted: int64(gen.Unique - 1), Rejected: 1}, out.counts)
	var reason string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT reason FROM "+env.Tables.Rejected()+" WHERE order_id = $1", poisoned).Scan(&reason))
	require.Equal(t, "infrastructure_failure", reason)
	status, err := ledger.Status(ctx, env.PG, env.Tables, b.ID)
	require.NoError(t, err)
	require.Equal(t, ledger.Committed, status)
}
