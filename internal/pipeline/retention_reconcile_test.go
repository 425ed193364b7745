package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/partition"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// Reconcile read again and again while `redpg retention` drops one month
// after another must never report a problem: the rows retention dropped are
// read in the same snapshot as orders, or a partition dropped between two
// readings would be counted twice. (An adversarial review found this with
// the retired rows read apart.)
func TestReconcileIsExactDuringRetention(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testCtx(t)
	now := time.Now().UTC()
	const months = 60
	plain := newPipeline(t, env, pipeline.Config{BatchSize: 500}, nil)
	var msgs [][]byte
	for m := 1; m <= months; m++ {
		msgs = append(msgs, messagesAt(t, fmt.Sprintf("M%02d", m), 3, now.AddDate(0, -m, -1))...)
	}
	require.NoError(t, plain.Push(ctx, msgs, nil))
	_, err := plain.Run(ctx, pipeline.RunOptions{UntilEmpty: true})
	require.NoError(t, err)
	_, err = partition.Convert(ctx, env.PG, env.Tables, now, partition.DefaultAhead)
	require.NoError(t, err)
	tables := env.Tables
	tables.Partitioned = true
	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: tables}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())

	done := make(chan struct{})
	go func() {
		defer close(done)
		// One partition at a time, as the months pass.
		for m := months; m >= 1; m-- {
			if _, err := partition.Retire(ctx, env.PG, tables, partition.Cutoff(now, m, 0), false); err != nil {
				t.Errorf("retire: %v", err)
				return
			}
		}
	}()
	var bad []string
	for {
		select {
		case <-done:
			require.Empty(t, bad, "reconcile reported problems while only retention ran")
			return
		default:
		}
		r, err := p.Reconcile(ctx)
		require.NoError(t, err)
		if !r.OK() {
			bad = append(bad, r.Problems...)
		}
	}
}
