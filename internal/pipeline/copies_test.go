package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// copyOf returns an order message for id from customer, with product and
// zip; an unknown product makes it fail promotion's checks.
func copyOf(t *testing.T, id, customer, product string) []byte {
	t.Helper()
	b, err := json.Marshal(order.Message{OrderID: id, CustomerID: customer, ProductID: product, Quantity: 2, UnitPrice: "5.00",
		Currency: "USD", ZipCode: "94102", OrderTimestamp: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	require.NoError(t, err)
	return b
}

// undecodable returns a message for id that fails decoding (no customer).
func undecodable(id string) []byte {
	return []byte(fmt.Sprintf(`{"order_id":%q,"product_id":"PROD-001","quantity":1,"unit_price":"1.00","currency":"USD","zip_code":"94102","order_timestamp":"2024-01-01T00:00:00Z"}`, id))
}

// outcome is what a run left behind, in a form two runs can be compared by.
type copiesOutcome struct {
	Orders     map[string]string // order id → customer id
	Letters    []string          // "order_id reason", sorted
	Duplicates int64             // ledger total
	Promoted   int64
	Rejected   int64
}

func readOutcome(t *testing.T, ctx context.Context, env *testenv.Env) copiesOutcome {
	t.Helper()
	out := copiesOutcome{Orders: map[string]string{}}
	rows, err := env.PG.Query(ctx, "SELECT order_id, customer_id FROM "+env.Tables.Orders())
	require.NoError(t, err)
	for rows.Next() {
		var id, cust string
		require.NoError(t, rows.Scan(&id, &cust))
		out.Orders[id] = cust
	}
	require.NoError(t, rows.Err())
	rows, err = env.PG.Query(ctx, "SELECT coalesce(order_id, ''), reason FROM "+env.Tables.Rejected())
	require.NoError(t, err)
	for rows.Next() {
		var id, reason string
		require.NoError(t, rows.Scan(&id, &reason))
		out.Letters = append(out.Letters, id+" "+reason)
	}
	require.NoError(t, rows.Err())
	slices.Sort(out.Letters)
	tot, err := ledger.Totals(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	out.Duplicates, out.Promoted, out.Rejected = tot.Duplicates, tot.Promoted, tot.Rejected
	return out
}

// runCopies processes the copies stream on a fresh environment in batches
// as cfg says, after promoting two orders in an earlier run: OLD-OUT,
// which has left the de-dup window since, and OLD-IN, which is still in it.
func runCopies(t *testing.T, cfg pipeline.Config) copiesOutcome {
	t.Helper()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, cfg, nil)

	require.NoError(t, p.Push(ctx, [][]byte{copyOf(t, "OLD-OUT", "C-0", "PROD-001"), copyOf(t, "OLD-IN", "C-0", "PROD-001")}, nil))
	_, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.NoError(t, env.RDB.ZRem(ctx, env.Keys.Dedup(), "OLD-OUT").Err())

	stream := [][]byte{
		copyOf(t, "A", "C-1", "PROD-999"), copyOf(t, "A", "C-2", "PROD-001"), // invalid, then valid
		undecodable("B"), copyOf(t, "B", "C-2", "PROD-001"), // undecodable, then valid
		copyOf(t, "C", "C-1", "PROD-001"), copyOf(t, "C", "C-2", "PROD-999"), // valid, then invalid
		copyOf(t, "D", "C-1", "PROD-001"), copyOf(t, "D", "C-2", "PROD-002"), // two valid copies
		copyOf(t, "E", "C-1", "PROD-001"), undecodable("E"), // valid, then undecodable
		copyOf(t, "F", "C-1", "PROD-999"), copyOf(t, "F", "C-2", "PROD-998"), // two invalid copies
		copyOf(t, "OLD-OUT", "C-3", "PROD-001"), copyOf(t, "OLD-OUT", "C-3", "PROD-999"), // re-sends outside the window
		copyOf(t, "OLD-IN", "C-3", "PROD-001"), copyOf(t, "OLD-IN", "C-3", "PROD-999"), // re-sends inside it
	}
	require.NoError(t, p.Push(ctx, stream, nil))
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	return readOutcome(t, ctx, env)
}

// TestCopiesOfOneIDDoNotDependOnBatching holds the pipeline to one rule for
// copies of an order id, whatever the batch size: an invalid copy is a dead
// letter and never claims the id; a valid copy is promoted unless the id is
// already in orders (committed before, or by an earlier copy in the same
// transaction), and is then a duplicate — inside the de-dup window or not.
func TestCopiesOfOneIDDoNotDependOnBatching(t *testing.T) {
	t.Parallel()
	want := copiesOutcome{
		Orders: map[string]string{"OLD-OUT": "C-0", "OLD-IN": "C-0", "A": "C-2", "B": "C-2", "C": "C-1", "D": "C-1", "E": "C-1"},
		Letters: []string{
			"A unknown_product", "B missing_field", "C unknown_product", "E missing_field",
			"F unknown_product", "F unknown_product", "OLD-IN unknown_product", "OLD-OUT unknown_product",
		},
		Duplicates: 3, // D's second copy and the valid re-sends of OLD-OUT and OLD-IN
		Promoted:   7,
		Rejected:   8,
	}
	for _, size := range []int{5000, 1, 3} {
		t.Run(fmt.Sprintf("batch_size_%d", size), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, runCopies(t, pipeline.Config{BatchSize: size}))
		})
	}
	// The fallback for a batch that keeps failing, which stages and
	// promotes its messages one at a time inside one transaction.
	t.Run("one_by_one", func(t *testing.T) {
		t.Parallel()
		fail := func(context.Context, string) error { return errors.New("the whole batch fails") }
		require.Equal(t, want, runCopies(t, pipeline.Config{BatchSize: 5000, MaxAttempts: 1, Hooks: pipeline.Hooks{BeforeStage: fail}}))
	})
}

// TestReplayPromotesTheValidOfTwoLettersOfOneID: two dead letters carry
// the same order id; once one of them is valid, replay promotes it, and the
// other is rejected again rather than counted as its duplicate.
func TestReplayPromotesTheValidOfTwoLettersOfOneID(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 10}, nil)
	// The still-invalid copy first, so that it is read first.
	require.NoError(t, p.Push(ctx, [][]byte{copyOf(t, "X", "C-1", "PROD-999"), copyOf(t, "X", "C-2", "PROD-900")}, nil))
	_, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))

	_, err = env.PG.Exec(ctx, "INSERT INTO "+env.Tables.Products()+
		" (product_id, product_name, category, base_price) VALUES ('PROD-900', 'Desk Lamp', 'Home & Kitchen', 12.66)")
	require.NoError(t, err)
	res, err := p.Replay(ctx, pipeline.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 2, Promoted: 1, StillRejected: 1}, res)
	out := readOutcome(t, ctx, env)
	require.Equal(t, map[string]string{"X": "C-2"}, out.Orders)
	require.Equal(t, []string{"X unknown_product"}, out.Letters)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())

	// Replayed again with the id now taken, a valid copy would be a
	// duplicate; this one is still invalid and stays a letter.
	res, err = p.Replay(ctx, pipeline.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 1, StillRejected: 1}, res)
}
