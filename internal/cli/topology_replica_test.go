//go:build topology

package cli_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// TestTopologyReadReplica starts a primary and a streaming replica of its
// own (the shared server refuses replication connections), runs the
// pipeline with --read-database-url on the replica, and shows that stats
// reads the replica — with replay paused it still sees the old row count,
// and reports the lag — while every write goes to the primary.
func TestTopologyReadReplica(t *testing.T) {
	t.Parallel()
	primary := testenv.StartCluster(t)
	const db = "orders_pipeline"
	direct := []string{"--database-url", primary.URL(db), "--redis-url", testenv.RedisURL(), "--key-prefix", testenv.RedisPrefix(t), "--env-file", "/nonexistent"}
	requireOK(t, run(t, append([]string{"migrate"}, direct...)...)) // creates the database the replica will copy
	replica := primary.StartReplica(t)
	both := append([]string{"--read-database-url", replica.URL(db)}, direct...)
	cmd := func(args ...string) result { return run(t, append(args, both...)...) }
	stats := func() pipeline.Stats {
		t.Helper()
		r := cmd("stats", "--json")
		requireOK(t, r)
		var s pipeline.Stats
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), r.stdout)
		require.NotNil(t, s.ReadReplica, r.stdout)
		require.True(t, s.ReadReplica.Standby, "the read server is in recovery")
		return s
	}
	// caughtUp waits until the replica has replayed everything and shows
	// rows orders.
	caughtUp := func(rows int64) pipeline.Stats {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := stats()
			if s.ReadReplica.Bytes == 0 && s.ProductionRows == rows {
				require.Zero(t, s.ReadReplica.Seconds)
				return s
			}
			require.True(t, time.Now().Before(deadline), "replica never caught up: %+v, %d rows", *s.ReadReplica, s.ProductionRows)
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Every command runs with the read URL set; any write that went there
	// would fail, a hot standby being read-only.
	requireOK(t, cmd("generate", "--count", "1000", "--seed", "7"))
	requireOK(t, cmd("process", "--workers", "2", "--until-empty", "--batch-size", "200"))
	requireOK(t, cmd("promote"))
	s := caughtUp(1000)
	require.Equal(t, int64(1000), s.PromotedTotal)
	require.NotEmpty(t, s.Version)

	ctx := context.Background()
	rconn, err := pgx.Connect(ctx, replica.URL(db))
	require.NoError(t, err)
	defer rconn.Close(ctx)
	_, err = rconn.Exec(ctx, "SELECT pg_wal_replay_pause()")
	require.NoError(t, err)

	requireOK(t, cmd("generate", "--count", "500", "--seed", "8"))
	requireOK(t, cmd("process", "--workers", "2", "--until-empty", "--batch-size", "200"))
	rec := cmd("reconcile")
	requireOK(t, rec) // the primary's view: all 1500 accounted for
	s = stats()
	require.Equal(t, int64(1000), s.ProductionRows, "stats reads the paused replica, not the primary")
	require.True(t, s.ReadReplica.ReplayPaused)
	require.Positive(t, s.ReadReplica.Bytes, "lag in bytes")
	require.Positive(t, s.ReadReplica.Seconds, "lag in seconds")
	text := cmd("stats")
	requireOK(t, text)
	require.Contains(t, text.stdout, "replica lag (bytes)")
	require.Contains(t, text.stdout, "PAUSED")

	_, err = rconn.Exec(ctx, "SELECT pg_wal_replay_resume()")
	require.NoError(t, err)
	caughtUp(1500)
}
