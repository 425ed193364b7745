package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// capBytes is the cap these tests configure, well below the default so the
// messages over it stay small.
const capBytes = 64 << 10

// bigMessage returns a valid order message of about size bytes: its
// padding is a field the decoder ignores.
func bigMessage(t *testing.T, id string, size int) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"order_id": id, "customer_id": "CUST-1", "product_id": "PROD-001", "quantity": 1,
		"unit_price": "10.00", "currency": "USD", "zip_code": "10001",
		"order_timestamp": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "padding": string(bytes.Repeat([]byte("p"), size))})
	require.NoError(t, err)
	return b
}

// requireBoundedLetter checks that the letter with this reason stands for
// a message of size bytes: it keeps its first bytes and says its size.
func requireBoundedLetter(t *testing.T, env *testenv.Env, reason string, msg []byte) {
	t.Helper()
	var detail string
	var raw []byte
	require.NoError(t, env.PG.QueryRow(testCtx(t), "SELECT detail, raw_payload FROM "+env.Tables.Rejected()+" WHERE reason = $1",
		reason).Scan(&detail, &raw))
	require.Contains(t, detail, fmt.Sprintf("%d bytes, limit %d", len(msg), capBytes))
	require.Equal(t, order.OversizedMark(len(msg), msg), raw, "the letter keeps the size and the first %d bytes", order.KeptPrefixBytes)
	require.Less(t, len(raw), order.KeptPrefixBytes+64)
}

// TestOversizedMessageIsDeadLetteredBounded: a worker dead-letters a
// message over the cap as payload_too_large with its size and first bytes,
// and the batch's other orders are promoted.
func TestOversizedMessageIsDeadLetteredBounded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 10, Message: order.Options{MaxBytes: capBytes}}, nil)
	big := bigMessage(t, "ORD-BIG", 3*capBytes)
	atCap := bigMessage(t, "ORD-AT-CAP", capBytes)
	atCap = bigMessage(t, "ORD-AT-CAP", 2*capBytes-len(atCap)) // exactly capBytes
	require.Len(t, atCap, capBytes)
	require.NoError(t, p.Push(ctx, [][]byte{big, atCap, message(t, "ORD-SMALL", "PROD-001", "10001")}, nil))
	_, err := p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)

	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE order_id IN ('ORD-AT-CAP', 'ORD-SMALL')"))
	require.Equal(t, int64(1), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	requireBoundedLetter(t, env, order.ReasonTooLarge, big)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())

	// Replaying the letter rejects it again for the same reason and size.
	res, err := p.Replay(ctx, pipeline.ReplayOptions{Reason: order.ReasonTooLarge})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 1, StillRejected: 1}, res)
	requireBoundedLetter(t, env, order.ReasonTooLarge, big)
}

// TestReplayBoundsAnOldOversizedLetter: a letter stored whole before the
// cap existed is read back only as its size and first bytes, and stored
// again bounded.
func TestReplayBoundsAnOldOversizedLetter(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 10, Message: order.Options{MaxBytes: capBytes}}, nil)
	big := bigMessage(t, "ORD-OLD-BIG", 5*capBytes)
	_, err := env.PG.Exec(ctx, "INSERT INTO "+env.Tables.Rejected()+" (order_id, reason, detail, raw_payload) VALUES ('ORD-OLD-BIG', $1, 'old', $2)",
		order.ReasonInfrastructure, big)
	require.NoError(t, err)
	res, err := p.Replay(ctx, pipeline.ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, pipeline.ReplayResult{Replayed: 1, StillRejected: 1}, res)
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	requireBoundedLetter(t, env, order.ReasonTooLarge, big)
}

// TestQuarantinedOversizedMessageIsBounded: a message quarantined as
// poison is stored bounded too, its size in the detail.
func TestQuarantinedOversizedMessageIsBounded(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	p := newPipeline(t, env, pipeline.Config{BatchSize: 10, MaxDeliveries: 1, Message: order.Options{MaxBytes: capBytes}}, nil)
	big := bigMessage(t, "ORD-BIG-POISON", 2*capBytes)
	require.NoError(t, p.Push(ctx, [][]byte{big}, nil))
	b, err := p.Queue().Claim(ctx, "dead-1", "b-dead-1", 10, -time.Second)
	require.NoError(t, err)
	require.NotNil(t, b)
	_, err = p.Reap(ctx)
	require.NoError(t, err)
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	requireBoundedLetter(t, env, order.ReasonPoison, big)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
}

// TestNaiveTimestampsFollowTheConfiguredZone: a timestamp without a zone
// is read in Config.Message.NaiveZone, not as UTC.
func TestNaiveTimestampsFollowTheConfiguredZone(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	newYork, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	p := newPipeline(t, env, pipeline.Config{Message: order.Options{NaiveZone: newYork}}, nil)
	at := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	msg := fmt.Sprintf(`{"order_id": "ORD-NY", "customer_id": 42, "product_id": "PROD-001", "quantity": 1, "unit_price": 1299.99, `+
		`"currency": "USD", "zip_code": "10001", "order_timestamp": %q, "raw_data": {"user_agent": "ua", "ip_address": "192.0.2.1", "session_id": "s"}}`,
		at.In(newYork).Format("2006-01-02T15:04:05.000000"))
	require.NoError(t, p.Push(ctx, [][]byte{[]byte(msg)}, nil))
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)
	var stored time.Time
	var customer, ip string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT order_timestamp, customer_id, raw_data->>'ip' FROM "+env.Tables.Orders()+
		" WHERE order_id = 'ORD-NY'").Scan(&stored, &customer, &ip))
	require.True(t, at.Equal(stored), "stored %s, want %s", stored.UTC(), at.UTC())
	require.Equal(t, "42", customer)
	require.Equal(t, "192.0.2.1", ip)
}
