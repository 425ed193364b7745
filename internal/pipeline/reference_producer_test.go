package pipeline_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// pyOrder is an order as the Python reference's generator builds it.
type pyOrder struct {
	id, customer, product string
	customerInt           bool // customer_id written as a JSON integer
	quantity              int
	price                 float64
	currency, zip, ts     string
}

// dumps writes o the way Python's json.dumps does: ", " and ": "
// separators, floats in their shortest repr with a ".0" kept, raw_data
// nested.
func (o pyOrder) dumps() string {
	price := strconv.FormatFloat(o.price, 'f', -1, 64)
	if !strings.Contains(price, ".") {
		price += ".0"
	}
	customer := strconv.Quote(o.customer)
	if o.customerInt {
		customer = o.customer
	}
	return fmt.Sprintf(`{"order_id": %q, "customer_id": %s, "product_id": %q, "quantity": %d, "unit_price": %s, `+
		`"currency": %q, "zip_code": %q, "order_timestamp": %q, "raw_data": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)", `+
		`"ip_address": "192.0.2.7", "session_id": "5d1b5c3e-8f0e-4c9b-9a3e-2f7d7a0c1e11"}}`,
		o.id, customer, o.product, o.quantity, price, o.currency, o.zip, o.ts)
}

// The Python reference's producers feed redpg unchanged: they de-duplicate
// in their own hash at orders:dedup (HSETNX + EXPIRE), LPUSH with
// push_batch and count the queue depth in orders:ingestion:counter and
// backpressure:ingestion. Every message ends promoted, a duplicate or a
// dead letter with its reason; the reference's keys keep their types; its
// depth counters come back to zero as redpg consumes; reconcile balances,
// reporting the reference's messages as from another producer.
func TestReferenceProducersFeedRedpg(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 4}, nil)
	refDedup := env.Prefix + "orders:dedup" // the reference's hash, at its name under the test's prefix
	counters := env.Keys.ReferenceCounters()
	t.Cleanup(func() { env.RDB.Del(context.Background(), append(counters, refDedup)...) })

	now := time.Now()
	naive := now.Add(-time.Minute).UTC().Format("2006-01-02T15:04:05.000000") // isoformat, naive (UTC here)
	withZ := now.Add(-2 * time.Minute).In(time.FixedZone("", 5*3600+1800)).Format("2006-01-02T15:04:05-0700")
	utcName := now.Add(-3*time.Minute).UTC().Format("2006-01-02 15:04:05") + " UTC"
	base := pyOrder{customer: "CUST-7F3A9B2C1D0E", product: "PROD-001", quantity: 2, price: 1299.99, currency: "USD", zip: "10001", ts: naive}
	type want struct {
		order pyOrder
		fate  string // "promoted", "duplicate" or a reject reason
	}
	mk := func(n int, change func(*pyOrder)) pyOrder {
		o := base
		o.id = fmt.Sprintf("ORD-%012X", 0xA0000+n)
		if change != nil {
			change(&o)
		}
		return o
	}
	batches := [][]want{{
		{mk(1, nil), "promoted"},
		{mk(2, func(o *pyOrder) { o.zip, o.currency, o.price = "M5H2N2", "CAD", 29.7 }), "promoted"}, // Toronto: unknown before
		{mk(3, func(o *pyOrder) { o.zip, o.currency = "V6B1A1", "CAD" }), "promoted"},
		{mk(4, func(o *pyOrder) { o.currency, o.price, o.quantity = "JPY", 1300.0, 1 }), "promoted"},
		{mk(5, func(o *pyOrder) { o.customer, o.customerInt = "4242", true }), "promoted"},
		{mk(6, func(o *pyOrder) { o.ts = withZ }), "promoted"},
		{mk(7, func(o *pyOrder) { o.ts = utcName }), "promoted"},
		{mk(8, func(o *pyOrder) { o.product = "PROD-999" }), order.ReasonUnknownProduct},
		{mk(9, func(o *pyOrder) { o.zip = "99999" }), order.ReasonUnknownZip},
	}, {
		// A second producer run after the reference's hash expired re-sends
		// order 1; redpg counts it as a duplicate.
		{mk(1, nil), "duplicate"},
		{mk(10, func(o *pyOrder) { o.zip = "02101" }), "promoted"}, // Boston, as the reference seeds it
	}}

	var total int
	for i, batch := range batches {
		if i == 1 {
			require.NoError(t, env.RDB.Del(ctx, refDedup).Err(), "the reference's window expired")
		}
		// DeduplicationWindow.mark_batch, then RedisQueue.push_batch and the
		// backpressure increment, as pipeline.py's ingest_orders does.
		var fresh []any
		for _, w := range batch {
			isNew, err := env.RDB.HSetNX(ctx, refDedup, w.order.id, now.Unix()).Result()
			require.NoError(t, err)
			if isNew {
				fresh = append(fresh, w.order.dumps())
			}
		}
		require.NoError(t, env.RDB.Expire(ctx, refDedup, time.Hour).Err())
		pipe := env.RDB.TxPipeline()
		pipe.LPush(ctx, env.Keys.Queue(), fresh...)
		pipe.IncrBy(ctx, counters[0], int64(len(fresh)))
		_, err := pipe.Exec(ctx)
		require.NoError(t, err)
		require.NoError(t, env.RDB.IncrBy(ctx, counters[1], int64(len(fresh))).Err())
		total += len(fresh)
	}

	_, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)

	for _, batch := range batches {
		for _, w := range batch {
			switch w.fate {
			case "promoted", "duplicate":
				require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE order_id = $1", w.order.id), w.order.id)
			default:
				require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE order_id = $1 AND reason = $2",
					w.order.id, w.fate), "%s should be dead-lettered as %s", w.order.id, w.fate)
			}
		}
	}
	// Currency by division: 1300 JPY at 149.5 per USD.
	var usd string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT total_amount_usd::text FROM "+env.Tables.Orders()+" WHERE order_id = $1", mk(4, nil).id).Scan(&usd))
	require.Equal(t, "8.70", usd)
	require.Equal(t, int64(4242), env.Count(t, "SELECT customer_id::bigint FROM "+env.Tables.Orders()+" WHERE order_id = $1", mk(5, nil).id))

	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "%s", r)
	require.Equal(t, int64(total), r.Arrived)
	require.Equal(t, int64(total), r.OtherProducers, "every message came from the reference's producer")
	require.Equal(t, int64(1), r.Duplicates)
	require.Equal(t, int64(2), r.Rejected)

	for _, c := range counters {
		n, err := env.RDB.Get(ctx, c).Int64()
		require.NoError(t, err)
		require.Zero(t, n, "%s: the reference's depth counter follows what redpg consumed", c)
	}
	typ, err := env.RDB.Type(ctx, refDedup).Result()
	require.NoError(t, err)
	require.Equal(t, "hash", typ, "the reference's de-dup hash is left as it is")
}
