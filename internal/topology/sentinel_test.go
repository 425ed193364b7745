//go:build topology

package topology

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/testenv"
)

// TestSentinelFailoverMidRun runs the pipeline on a master watched by
// three Sentinels and SIGKILLs the master while workers run: the Sentinels
// promote the replica, go-redis's failover client follows them, and the run
// finishes on the promoted replica. The killed server then comes back empty
// (no persistence), the Sentinels make it the new master's replica, and
// producers confirming each chunk with WAIT queue more orders, which are
// processed too. PostgreSQL must end with every order exactly once, and
// reconcile must balance or report what the dead master took with it.
func TestSentinelFailoverMidRun(t *testing.T) {
	t.Parallel()
	s := startSentinels(t)
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rdb := open(t, s.url(), redisconn.Sentinel)
	p := slowPipeline(t, env, rdb)

	const n = 8000
	first, err := p.Generate(ctx, n, generate.Config{Duplicates: 0.05, Invalid: 0.02}, nil)
	require.NoError(t, err)

	done := runUntilEmpty(t, ctx, p, 2)
	testenv.WaitFor(t, time.Minute, "a third of the orders committed", func() bool { return committed(t, env) >= n/3 })
	old := s.master
	at := committed(t, env)
	old.kill()
	killed := time.Now()
	testenv.WaitFor(t, 30*time.Second, "the Sentinels to promote the replica", func() bool { return s.masterPort() == s.replica.port })
	t.Logf("SIGKILL master %s at %d committed; Sentinels promoted %s after %s", old.addr(), at, s.replica.addr(),
		time.Since(killed).Round(100*time.Millisecond))
	select {
	case res := <-done:
		require.NoError(t, res.err)
		t.Logf("run finished %s after the SIGKILL", time.Since(killed).Round(100*time.Millisecond))
	case <-ctx.Done():
		t.Fatalf("the run did not finish after the failover (%d committed)", committed(t, env))
	}

	// The old master returns empty and is turned into a replica; WAIT 1
	// can be satisfied again, so producers resume.
	old.start()
	testenv.WaitFor(t, 30*time.Second, "the old master to follow the new one", func() bool {
		return old.info("replication", "role") == "slave" && old.info("replication", "master_link_status") == "up"
	})
	second, err := p.Generate(ctx, n/2, generate.Config{Duplicates: 0.05}, nil)
	require.NoError(t, err)
	res := <-runUntilEmpty(t, ctx, p, 2)
	require.NoError(t, res.err)

	gen := generate.Counts{Total: first.Total + second.Total, Unique: first.Unique + second.Unique,
		Duplicates: first.Duplicates + second.Duplicates, Invalid: first.Invalid + second.Invalid}
	requireEveryOrder(t, env, gen)
	if !requireHonestReconcile(t, ctx, p, env, gen) {
		t.Log("reconcile reported the account writes the SIGKILLed master had not replicated (see docs/SCALING.md)")
	}
}
