package chaos

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// newPipeline assembles a pipeline over env's schema and key prefix, talking
// to rdb (env.RDB when nil). Fields of cfg that name the key space and the
// tables are filled from env.
func newPipeline(t testing.TB, env *testenv.Env, rdb redis.UniversalClient, cfg pipeline.Config) *pipeline.Pipeline {
	t.Helper()
	if rdb == nil {
		rdb = env.RDB
	}
	cfg.Keys, cfg.Tables = env.Keys, env.Tables
	p, err := pipeline.New(cfg, env.PG, nil, rdb)
	require.NoError(t, err)
	return p
}

// orderIDs reads every order id in the orders table.
func orderIDs(t testing.TB, env *testenv.Env) map[string]int {
	t.Helper()
	rows, err := env.PG.Query(context.Background(), "SELECT order_id FROM "+env.Tables.Orders())
	require.NoError(t, err)
	defer rows.Close()
	ids := map[string]int{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		ids[id]++
	}
	require.NoError(t, rows.Err())
	return ids
}

// requireExactlyOnce asserts that orders holds exactly the ids in want, each
// once.
func requireExactlyOnce(t testing.TB, env *testenv.Env, want map[string]bool) {
	t.Helper()
	var total, distinct int64
	require.NoError(t, env.PG.QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT order_id) FROM "+env.Tables.Orders()).Scan(&total, &distinct))
	require.Equal(t, int64(len(want)), total, "rows in orders")
	require.Equal(t, total, distinct, "an order id appears twice in orders")
	got := orderIDs(t, env)
	var missing, extra []string
	for id := range want {
		if got[id] != 1 {
			missing = append(missing, id)
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	require.Empty(t, missing, "orders expected but not promoted exactly once")
	require.Empty(t, extra, "orders promoted that should not have been")
}

// requireDrained asserts that nothing is left behind in Redis or staging:
// no queued message, no processing list, no staged row.
func requireDrained(t testing.TB, env *testenv.Env, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	if rdb == nil {
		rdb = env.RDB
	}
	depth, err := rdb.LLen(ctx, env.Keys.Queue()).Result()
	require.NoError(t, err)
	require.Zero(t, depth, "messages left in the ingestion queue")
	iter := rdb.Scan(ctx, 0, env.Keys.Processing("*"), 1000).Iterator()
	for iter.Next(ctx) {
		n, err := rdb.LLen(ctx, iter.Val()).Result()
		require.NoError(t, err)
		require.Zero(t, n, "processing list %s is not empty", iter.Val())
	}
	require.NoError(t, iter.Err())
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Staging()), "rows left in staging")
}

// snapshot returns p's lookup snapshot.
func snapshot(t testing.TB, p *pipeline.Pipeline) *lookup.Snapshot {
	t.Helper()
	snap, err := p.Lookups().Current(context.Background())
	require.NoError(t, err)
	return snap
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
