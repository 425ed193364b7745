package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/bench"
	"github.com/redpg/redpg/internal/cli"
	"github.com/redpg/redpg/internal/testenv"
)

// TestBenchmarkSmoke runs `redpg benchmark --json` on a small load, with a
// preloaded table and the dashboard workload, and checks that every stage
// and baseline has a positive figure and ratio, that every order was
// accounted for, and that the benchmark's schema and keys are gone
// afterwards. It makes no claim about speed.
func TestBenchmarkSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline on 20,000 orders")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Execute(ctx, []string{"benchmark", "--total", "20000", "--batch-size", "2000", "--workers", "2",
		"--preload", "10000", "--mixed", "--latency-duration", "1s", "--json",
		"--database-url", testenv.DatabaseURL(), "--redis-url", testenv.RedisURL(), "--env-file", "/nonexistent"},
		&stdout, &stderr)
	require.Zero(t, code, "stderr:\n%s", stderr.String())

	var res bench.Result
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
	require.Equal(t, 20000, res.Total)
	require.Equal(t, 2000, res.BatchSize)
	for _, name := range []string{bench.BaselineLPush, bench.BaselineRPop, bench.BaselineCopy, bench.BaselineCopySingle} {
		require.Positive(t, res.Baselines[name].OrdersPerSec, "baseline %s", name)
	}
	for _, name := range bench.StageOrder {
		s, ok := res.Stages[name]
		require.True(t, ok, "stage %s is missing", name)
		require.Positive(t, s.OrdersPerSec, "stage %s", name)
		require.Positive(t, s.Ratio, "stage %s ratio", name)
		require.NotEmpty(t, s.Baseline, "stage %s baseline", name)
	}
	require.Positive(t, res.EndToEndVsSingleStream)
	require.Equal(t, bench.Counts{Received: 20000, Promoted: 20000}, res.Counts)
	require.Equal(t, uint64(20000), res.Latency.Count)
	require.Positive(t, res.Latency.P99)
	require.NotNil(t, res.Paced)
	require.Positive(t, res.Paced.Latency.Count)
	require.NotNil(t, res.Mixed)
	require.Positive(t, res.Mixed.Busy.Count)
	require.Positive(t, res.Mixed.Idle.Count)
	require.Positive(t, res.PeakRSSMB)
	require.NotEmpty(t, res.Targets)
	require.False(t, res.Kept)

	// Nothing is left behind.
	pg := testenv.Pool(t, testenv.DatabaseURL(), 1)
	var schemas int
	require.NoError(t, pg.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", res.Schema).Scan(&schemas))
	require.Zero(t, schemas, "schema %s was not dropped", res.Schema)
	opt, err := redis.ParseURL(testenv.RedisURL())
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	// Its queues start with the prefix; the rest of its deployments' keys
	// are in their namespaces, redpg:{<prefix>...}:.
	for _, pattern := range []string{res.KeyPrefix + "*", "redpg:{" + res.KeyPrefix + "*"} {
		var left []string
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			left = append(left, iter.Val())
		}
		require.NoError(t, iter.Err())
		require.Empty(t, left, "keys matching %s were not removed", pattern)
	}
}

// TestBenchmarkCancelledCleansUp interrupts a benchmark early and checks
// that it still removes its schema.
func TestBenchmarkCancelledCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	code := cli.Execute(ctx, []string{"benchmark", "--total", "2000000", "--json",
		"--database-url", testenv.DatabaseURL(), "--redis-url", testenv.RedisURL(), "--env-file", "/nonexistent"},
		&stdout, &stderr)
	require.NotZero(t, code)
	var res bench.Result
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	require.NotEmpty(t, res.Schema)
	pg := testenv.Pool(t, testenv.DatabaseURL(), 1)
	var schemas int
	require.NoError(t, pg.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", res.Schema).Scan(&schemas))
	require.Zero(t, schemas, "schema %s was not dropped", res.Schema)
}
