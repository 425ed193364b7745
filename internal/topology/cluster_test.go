//go:build topology

package topology

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/lookup"
	"github.com/redpg/redpg/internal/redisconn"
	"github.com/redpg/redpg/internal/testenv"
)

// TestClusterFailoverMidRun runs the pipeline on a three-master cluster it
// reaches through one node's address (redpg must detect the cluster), and
// while workers run fails the deployment's master over twice: a manual
// CLUSTER FAILOVER on its replica (coordinated: nothing is lost), then a
// SIGKILL of the new master (the cluster promotes its replica after the
// node timeout; writes not yet replicated are lost). The run must finish
// with every order in PostgreSQL exactly once, and reconcile must either
// balance or report what the dead master took with it.
func TestClusterFailoverMidRun(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rdb := open(t, c.seedURL(), redisconn.Cluster)
	p := slowPipeline(t, env, rdb)

	const n = 12000
	gen, err := p.Generate(ctx, n, generate.Config{Duplicates: 0.05, Invalid: 0.02}, nil)
	require.NoError(t, err)
	require.Equal(t, n, gen.Total)

	done := runUntilEmpty(t, ctx, p, 2)

	// First failover: the replica takes over in agreement with its master.
	master, replicas := c.owner(env.Keys.Queue())
	require.Len(t, replicas, 1)
	testenv.WaitFor(t, time.Minute, "a quarter of the orders committed", func() bool { return committed(t, env) >= n/4 })
	promoted := replicas[0]
	{
		r := promoted.client()
		require.NoError(t, r.Do(ctx, "CLUSTER", "FAILOVER").Err())
		_ = r.Close()
	}
	testenv.WaitFor(t, 30*time.Second, "the replica to become master", func() bool {
		return promoted.info("replication", "role") == "master"
	})
	t.Logf("CLUSTER FAILOVER: %s took over from %s at %d committed", promoted.addr(), master.addr(), committed(t, env))

	// Second failover: the new master dies without warning.
	testenv.WaitFor(t, time.Minute, "half of the orders committed", func() bool { return committed(t, env) >= n/2 })
	now, _ := c.owner(env.Keys.Queue())
	require.Equal(t, promoted.port, now.port, "the cluster must agree that the replica took over")
	at := committed(t, env)
	now.kill()
	testenv.WaitFor(t, 30*time.Second, "the old master to be promoted back", func() bool {
		return master.info("replication", "role") == "master"
	})
	t.Logf("SIGKILL %s at %d committed; %s is master again; %d committed now", now.addr(), at, master.addr(), committed(t, env))

	killed := time.Now()
	select {
	case res := <-done:
		require.NoError(t, res.err)
		t.Logf("run finished %s after the SIGKILL", time.Since(killed).Round(100*time.Millisecond))
	case <-ctx.Done():
		t.Fatalf("the run did not finish after the failovers (%d committed)", committed(t, env))
	}
	requireEveryOrder(t, env, gen)
	if !requireHonestReconcile(t, ctx, p, env, gen) {
		t.Log("reconcile reported the account writes the SIGKILLed master had not replicated (see docs/SCALING.md)")
	}
}

// TestClusterTwoTenants runs two `redpg process` processes with different
// key prefixes and schemas on one cluster, named in go-redis's cluster URL
// form: each finishes its own work and reconciles, and clearing one
// tenant's cache — a scan of every master — leaves the other's alone.
func TestClusterTwoTenants(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	rdb := open(t, c.clusterURL(), redisconn.Cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tenants := []*testenv.Env{testenv.New(t), testenv.New(t)}
	const n = 3000
	// One `redpg serve` per tenant, each with its own key prefix and schema,
	// sharing the cluster (and PostgreSQL): each elects its own leader and
	// takes only its own tenant's orders.
	procs := make([]*proc, len(tenants))
	for i, env := range tenants {
		procs[i] = startRedpg(t, procEnv(env, c.clusterURL()), "serve", "-w", "2", "--batch-size", "250", "--http-addr", "off")
	}
	for i, env := range tenants {
		out, errOut, code := runRedpg(t, procEnv(env, c.clusterURL()), "generate", "--count", fmt.Sprint(n))
		require.Zero(t, code, "generate for tenant %d:\n%s\n%s", i, out, errOut)
	}
	for i, env := range tenants {
		testenv.WaitFor(t, time.Minute, fmt.Sprintf("tenant %d's orders", i), func() bool {
			return env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()) == n
		})
	}
	for i, pr := range procs {
		require.NoError(t, pr.cmd.Process.Signal(syscall.SIGTERM))
		require.Zero(t, pr.wait(t, time.Minute), "serve for tenant %d:\n%s", i, tail(pr.stderr.String(), 3000))
	}
	for i, env := range tenants {
		out, errOut, code := runRedpg(t, procEnv(env, c.clusterURL()), "reconcile")
		require.Zero(t, code, "reconcile for tenant %d:\n%s\n%s", i, out, errOut)
		require.Equal(t, int64(n), env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()), "tenant %d", i)
	}

	// Each tenant's lookup snapshot lives in its own slot, possibly on
	// another master; clear --cache scans them all and takes only its own.
	version := func(env *testenv.Env) int64 {
		v, err := rdb.Get(ctx, env.Keys.LookupVersion()).Int64()
		require.NoError(t, err)
		return v
	}
	v0, v1 := version(tenants[0]), version(tenants[1])
	out, errOut, code := runRedpg(t, procEnv(tenants[0], c.clusterURL()), "clear", "--cache")
	require.Zero(t, code, "clear --cache:\n%s\n%s", out, errOut)
	for _, table := range lookup.AllTables {
		gone, err := rdb.Exists(ctx, tenants[0].Keys.Lookup(v0, table)).Result()
		require.NoError(t, err)
		require.Zero(t, gone, "tenant 0's %s must be cleared", table)
		kept, err := rdb.Exists(ctx, tenants[1].Keys.Lookup(v1, table)).Result()
		require.NoError(t, err)
		require.Equal(t, int64(1), kept, "tenant 1's %s must be untouched", table)
	}
}
