package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// TestMessageThatKeepsKillingWorkersIsQuarantined: a message whose batch was
// requeued MaxDeliveries times after its workers died is not requeued
// again but dead-lettered undecoded as poison_message, with its exact
// bytes, so it cannot take workers down forever; the rest still flows.
func TestMessageThatKeepsKillingWorkersIsQuarantined(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	const maxDeliveries = 3
	p := newPipeline(t, env, pipeline.Config{BatchSize: 50, MaxDeliveries: maxDeliveries}, nil)
	poison := message(t, "ORD-POISON", "PROD-001", "10001")
	require.NoError(t, p.Push(ctx, [][]byte{poison}, nil))

	for i := 1; i <= maxDeliveries; i++ {
		// A worker takes the message and dies: its lease is already over.
		b, err := p.Queue().Claim(ctx, fmt.Sprintf("dead-%d", i), fmt.Sprintf("b-dead-%d", i), 50, -time.Second)
		require.NoError(t, err)
		require.NotNil(t, b, "delivery %d", i)
		require.Equal(t, [][]byte{poison}, b.Messages)
		require.False(t, b.Quarantined)
		_, err = p.Reap(ctx)
		require.NoError(t, err)
		snap, err := p.Queue().Snapshot(ctx)
		require.NoError(t, err)
		if i < maxDeliveries {
			require.Equal(t, int64(1), snap.Depth, "requeued after death %d", i)
			require.Zero(t, snap.Quarantined)
		} else {
			require.Zero(t, snap.Depth, "not requeued a %dth time", i)
			require.Equal(t, int64(1), snap.Quarantined)
		}
	}
	s, err := p.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), s.Quarantined)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "a quarantined message is still accounted for: %v", r.Problems)

	good := [][]byte{message(t, "ORD-G1", "PROD-002", "60601"), message(t, "ORD-G2", "PROD-003", "98101")}
	require.NoError(t, p.Push(ctx, good, nil))
	_, err = p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)

	require.Equal(t, int64(2), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE order_id = 'ORD-POISON'"))
	var reason string
	var raw []byte
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT reason, raw_payload FROM "+env.Tables.Rejected()).Scan(&reason, &raw))
	require.Equal(t, order.ReasonPoison, reason)
	require.Equal(t, poison, raw, "dead-lettered byte for byte")
	r, err = p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Problems)
	require.Equal(t, int64(1), r.Rejected)
	require.Equal(t, int64(2), r.Promoted)
	s, err = p.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.Quarantined)
}
