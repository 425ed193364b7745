package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// validMessage is a correct order message with id, drawn from snap.
func validMessage(snap *lookup.Snapshot, id string) order.Message {
	return order.Message{
		OrderID:        id,
		CustomerID:     "CUST-00042",
		ProductID:      slices.Sorted(maps.Keys(snap.Products))[0],
		Quantity:       2,
		UnitPrice:      "19.99",
		Currency:       "USD",
		ZipCode:        slices.Sorted(maps.Keys(snap.Zips))[0],
		OrderTimestamp: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano),
		UserAgent:      "chaos-test",
	}
}

// messageMap is msg as a generic JSON object, for tests that break a field.
func messageMap(t testing.TB, msg order.Message) map[string]any {
	t.Helper()
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(mustJSON(t, msg), &m))
	return m
}

// poisonCase is one bad message and where it must end.
type poisonCase struct {
	name   string
	raw    []byte
	reason string
	// id is the order id the dead letter must carry; "" when the payload
	// cannot name one (the letter is then found by its exact bytes).
	id string
	// exact says the dead letter must hold exactly raw: true for messages
	// that failed to decode. Messages that decoded but failed validation
	// keep their normalised form, which must decode to the same order.
	exact bool
	// stored, when set, is what an exact letter holds instead of raw: an
	// oversized message keeps only its size and first bytes.
	stored []byte
}

func poisonCases(t *testing.T, snap *lookup.Snapshot) []poisonCase {
	valid := func(id string) order.Message { return validMessage(snap, id) }
	with := func(id string, change func(m map[string]any)) []byte {
		m := messageMap(t, valid(id))
		change(m)
		return mustJSON(t, m)
	}
	msg := func(m order.Message) []byte { return mustJSON(t, m) }

	big := []byte(`{"order_id": "BIG-1", "padding": "` + strings.Repeat("x", order.DefaultMaxBytes) + `"}`)
	badUTF8 := bytes.Replace(msg(valid("UTF8-1")), []byte("CUST-00042"), []byte("CUST-\xff\xfe42"), 1)
	require.NotEqual(t, msg(valid("UTF8-1")), badUTF8)

	zeroQty, negQty, noProduct, noCurrency, noZip, future, freePrice :=
		valid("QTY-ZERO"), valid("QTY-NEG"), valid("UNKNOWN-PRODUCT"), valid("UNKNOWN-CURRENCY"),
		valid("UNKNOWN-ZIP"), valid("FUTURE-1"), valid("PRICE-ZERO")
	zeroQty.Quantity = 0
	negQty.Quantity = -5
	noProduct.ProductID = "PROD-DOES-NOT-EXIST"
	noCurrency.Currency = "XYZ"
	noZip.ZipCode = "ZIP-NOWHERE"
	future.OrderTimestamp = time.Now().AddDate(4, 0, 0).UTC().Format(time.RFC3339)
	freePrice.UnitPrice = "0.00"
	require.NotContains(t, snap.Currencies, "XYZ")
	require.NotContains(t, snap.Zips, "ZIP-NOWHERE")

	return []poisonCase{
		{name: "truncated JSON", raw: []byte(`{"order_id": "TRUNC-1", "customer_id": `), reason: order.ReasonMalformedJSON, exact: true},
		{name: "empty payload", raw: []byte{}, reason: order.ReasonMalformedJSON, exact: true},
		{name: "not JSON at all", raw: []byte("hello, world"), reason: order.ReasonMalformedJSON, exact: true},
		{name: "JSON null", raw: []byte("null"), reason: order.ReasonMissingField, exact: true},
		{name: "customer_id is a fraction", raw: with("TYPE-1", func(m map[string]any) { m["customer_id"] = 123.45 }),
			reason: order.ReasonWrongType, id: "TYPE-1", exact: true},
		{name: "quantity is a word", raw: with("TYPE-2", func(m map[string]any) { m["quantity"] = "many" }),
			reason: order.ReasonWrongType, id: "TYPE-2", exact: true},
		{name: "product_id missing", raw: with("MISSING-1", func(m map[string]any) { delete(m, "product_id") }),
			reason: order.ReasonMissingField, id: "MISSING-1", exact: true},
		{name: "order_timestamp missing", raw: with("MISSING-2", func(m map[string]any) { delete(m, "order_timestamp") }),
			reason: order.ReasonMissingField, id: "MISSING-2", exact: true},
		{name: "payload over the cap", raw: big, reason: order.ReasonTooLarge, exact: true, stored: order.OversizedMark(len(big), big)},
		{name: "invalid UTF-8", raw: badUTF8, reason: order.ReasonInvalidUTF8, exact: true},
		{name: "unknown product", raw: msg(noProduct), reason: order.ReasonUnknownProduct, id: "UNKNOWN-PRODUCT"},
		{name: "unknown currency", raw: msg(noCurrency), reason: order.ReasonUnknownCurrency, id: "UNKNOWN-CURRENCY"},
		{name: "unknown zip", raw: msg(noZip), reason: order.ReasonUnknownZip, id: "UNKNOWN-ZIP"},
		{name: "zero quantity", raw: msg(zeroQty), reason: order.ReasonQuantityRange, id: "QTY-ZERO"},
		{name: "negative quantity", raw: msg(negQty), reason: order.ReasonQuantityRange, id: "QTY-NEG"},
		{name: "zero price", raw: msg(freePrice), reason: order.ReasonPriceNotPos, id: "PRICE-ZERO"},
		{name: "timestamp four years ahead", raw: msg(future), reason: order.ReasonFutureTimestamp, id: "FUTURE-1"},
	}
}

// deadLetter is one row of orders_rejected.
type deadLetter struct {
	orderID, reason, detail, batchID string
	raw                              []byte
}

func deadLetters(t testing.TB, env *testenv.Env) []deadLetter {
	t.Helper()
	rows, err := env.PG.Query(context.Background(), "SELECT coalesce(order_id, ''), reason, coalesce(detail, ''), coalesce(batch_id, ''), raw_payload FROM "+
		env.Tables.Rejected()+" ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var out []deadLetter
	for rows.Next() {
		var l deadLetter
		require.NoError(t, rows.Scan(&l.orderID, &l.reason, &l.detail, &l.batchID, &l.raw))
		out = append(out, l)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestPoisonInput mixes every kind of bad message into one batch with valid
// orders: each bad one must end in orders_rejected once, with the right
// reason and its payload (the exact bytes when it could not be decoded),
// the valid rest of the batch must be promoted, and the worker must finish
// the batch in one go rather than crash or retry it.
func TestPoisonInput(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	p := newPipeline(t, env, nil, pipeline.Config{BatchSize: 1000, MaxAttempts: 2})
	snap := snapshot(t, p)
	cases := poisonCases(t, snap)

	want := map[string]bool{}
	var msgs [][]byte
	for i := range 40 {
		id := fmt.Sprintf("GOOD-%03d", i)
		want[id] = true
		msgs = append(msgs, mustJSON(t, validMessage(snap, id)))
		if i < len(cases) {
			msgs = append(msgs, cases[i].raw)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, p.Push(ctx, msgs, nil))

	var batches []pipeline.BatchReport
	counts, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true,
		OnBatch: func(r pipeline.BatchReport) { batches = append(batches, r) }})
	require.NoError(t, err)
	require.NoError(t, ctx.Err(), "the worker did not drain a poisoned batch in time")
	require.Len(t, batches, 1, "the poisoned batch must be handled in one go, not retried")
	require.Equal(t, int64(len(msgs)), counts.Received)
	require.Equal(t, int64(len(want)), counts.Promoted)
	require.Equal(t, int64(len(cases)), counts.Rejected)
	require.Zero(t, counts.Duplicates)

	requireExactlyOnce(t, env, want)
	letters := deadLetters(t, env)
	require.Len(t, letters, len(cases))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var found []deadLetter
			for _, l := range letters {
				stored := c.raw
				if c.stored != nil {
					stored = c.stored
				}
				if (c.exact && bytes.Equal(l.raw, stored)) || (!c.exact && l.orderID == c.id) {
					found = append(found, l)
				}
			}
			require.Len(t, found, 1, "dead letters for %s", c.name)
			l := found[0]
			require.Equal(t, c.reason, l.reason, "detail: %s", l.detail)
			require.Equal(t, c.id, l.orderID)
			require.NotEmpty(t, l.detail)
			require.Equal(t, batches[0].BatchID, l.batchID)
			if !c.exact {
				o, err := order.Decode(l.raw)
				require.NoError(t, err, "stored payload %q must decode", l.raw)
				orig, err := order.Decode(c.raw)
				require.NoError(t, err)
				require.Equal(t, orig, o, "stored payload must be the order that was sent")
			}
		})
	}
	requireDrained(t, env, nil)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	require.Equal(t, int64(len(msgs)), r.Produced)
}

// TestPoisonBatchBoundedRetries provokes a batch that fails for a reason
// that is the database's, not the connection's: a trigger on the test
// schema's orders table raises for one order id. The batch must be tried
// exactly MaxAttempts times as a whole, then once message by message, and
// then the poison order must be dead-lettered as infrastructure_failure
// with its exact payload while every other message of the batch is
// promoted — no endless retry, no lost neighbour, no second dead letter.
func TestPoisonBatchBoundedRetries(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	const maxAttempts = 3
	p := newPipeline(t, env, nil, pipeline.Config{BatchSize: 1000, MaxAttempts: maxAttempts})
	snap := snapshot(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	s := env.Schema
	_, err := env.PG.Exec(ctx, fmt.Sprintf(`
CREATE SEQUENCE %[1]s.poison_attempts;
CREATE FUNCTION %[1]s.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('%[1]s.poison_attempts'); -- not rolled back with the failing transaction
  RAISE EXCEPTION 'chaos: order %% is poison', NEW.order_id;
END $$;
CREATE TRIGGER poison BEFORE INSERT ON %[1]s.orders
  FOR EACH ROW WHEN (NEW.order_id = 'POISON-1') EXECUTE FUNCTION %[1]s.poison();`, s))
	require.NoError(t, err)

	want := map[string]bool{}
	var msgs [][]byte
	for i := range 30 {
		id := fmt.Sprintf("NEIGHBOUR-%02d", i)
		want[id] = true
		msgs = append(msgs, mustJSON(t, validMessage(snap, id)))
	}
	poison := mustJSON(t, validMessage(snap, "POISON-1"))
	truncated := []byte(`{"order_id": "TRUNC-2", `)
	msgs = slices.Insert(msgs, 10, poison)
	msgs = slices.Insert(msgs, 20, truncated)
	require.NoError(t, p.Push(ctx, msgs, nil))

	counts, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	require.NoError(t, ctx.Err(), "the worker kept retrying the poisoned batch")

	var attempts int64
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT last_value FROM "+s+".poison_attempts").Scan(&attempts))
	require.Equal(t, int64(maxAttempts+1), attempts, "whole-batch attempts plus one message-by-message pass")

	requireExactlyOnce(t, env, want)
	letters := deadLetters(t, env)
	require.Len(t, letters, 2)
	byReason := map[string]deadLetter{}
	for _, l := range letters {
		byReason[l.reason] = l
	}
	infra := byReason[order.ReasonInfrastructure]
	require.Equal(t, "POISON-1", infra.orderID)
	require.Equal(t, poison, infra.raw, "the dead letter must hold the exact payload")
	require.Contains(t, infra.detail, "chaos: order POISON-1 is poison")
	require.Equal(t, truncated, byReason[order.ReasonMalformedJSON].raw)

	require.Equal(t, ledger.Counts{Received: int64(len(msgs)), Promoted: int64(len(want)), Rejected: 2}, counts)
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Batches()+" WHERE status = 'committed'"))
	requireDrained(t, env, nil)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
}
