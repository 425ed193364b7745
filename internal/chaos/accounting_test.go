//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// TestReconcileDetectsLoss processes orders cleanly, checks that
// `redpg reconcile` exits 0, then tampers behind the pipeline's back in
// three ways — an order deleted from orders, a queued message dropped from
// Redis, the produced counter bumped — and requires exit code 3 with the
// problem named each time: nothing may go missing silently.
func TestReconcileDetectsLoss(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, env *testenv.Env)
		// queued leaves some orders in the queue, so one can be dropped.
		queued  int
		problem string
	}{
		{name: "order deleted from orders", problem: "ledger says", tamper: func(t *testing.T, env *testenv.Env) {
			tag, err := env.PG.Exec(context.Background(), "DELETE FROM "+env.Tables.Orders()+
				" WHERE order_id = (SELECT min(order_id) FROM "+env.Tables.Orders()+")")
			require.NoError(t, err)
			require.Equal(t, int64(1), tag.RowsAffected())
		}},
		{name: "queued message dropped", queued: 10, problem: "1 messages counted by redpg's producers never reached a worker", tamper: func(t *testing.T, env *testenv.Env) {
			require.NoError(t, env.RDB.RPop(context.Background(), env.Keys.Queue()).Err())
		}},
		{name: "produced counter bumped", problem: "5 messages counted by redpg's producers never reached a worker", tamper: func(t *testing.T, env *testenv.Env) {
			require.NoError(t, env.RDB.IncrBy(context.Background(), env.Keys.Produced(), 5).Err())
		}},
		{name: "claimed batch lost", problem: "7 claimed messages are neither in a committed batch nor in flight", queued: 10, tamper: func(t *testing.T, env *testenv.Env) {
			ctx := context.Background()
			require.NoError(t, env.RDB.RPopCount(ctx, env.Keys.Queue(), 7).Err())
			require.NoError(t, env.RDB.HIncrBy(ctx, env.Keys.Account(), "claimed", 7).Err())
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := testenv.New(t)
			p := newPipeline(t, env, nil, pipeline.Config{BatchSize: 500})
			gen := generateOrders(t, p, 2000, 0.05, 0.01, 0)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
			require.NoError(t, err)
			if c.queued > 0 {
				generateOrders(t, p, c.queued, 0, 0, 0)
			}
			environ := procEnv(env, env.RedisURL)
			out, errOut, code := runRedpg(t, environ, "reconcile")
			require.Equal(t, 0, code, "before tampering:\n%s%s", out, errOut)
			require.Contains(t, out, "OK: arrived = promoted + duplicates + rejected + queued + in flight + discarded")
			require.Contains(t, out, fmt.Sprintf("arrived      %d", gen.counts.Total+c.queued))
			require.Contains(t, out, fmt.Sprintf("from redpg producers   %d", gen.counts.Total+c.queued))

			c.tamper(t, env)
			out, errOut, code = runRedpg(t, environ, "reconcile")
			require.Equal(t, 3, code, "after tampering:\n%s%s", out, errOut)
			require.Contains(t, out, "PROBLEM: "+c.problem)
			require.NotContains(t, out, "OK:")
			out, _, code = runRedpg(t, environ, "reconcile", "--json")
			require.Equal(t, 3, code)
			require.True(t, strings.Contains(out, `"problems":["`), "JSON must list the problem: %s", out)
		})
	}
}
