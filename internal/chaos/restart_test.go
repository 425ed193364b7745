//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// ordersCount counts rows in orders, or returns -1 when PostgreSQL cannot
// answer right now.
func ordersCount(env *testenv.Env) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	if err := env.PG.QueryRow(ctx, "SELECT count(*) FROM "+env.Tables.Orders()).Scan(&n); err != nil {
		return -1
	}
	return n
}

// postgresVersion is the version of the local cluster "main", from
// /etc/postgresql (scripts/services.sh does the same).
func postgresVersion(t testing.TB) string {
	t.Helper()
	entries, err := os.ReadDir("/etc/postgresql")
	require.NoError(t, err, "no local PostgreSQL cluster to restart")
	var versions []string
	for _, e := range entries {
		if _, err := os.Stat("/etc/postgresql/" + e.Name() + "/main"); err == nil {
			versions = append(versions, e.Name())
		}
	}
	require.NotEmpty(t, versions, "no cluster 'main' under /etc/postgresql")
	sort.Strings(versions)
	return versions[len(versions)-1]
}

// postgresAnswers reports whether a fresh connection to the test database
// can run a query.
func postgresAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.DatabaseURL())
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err == nil
}

// ensurePostgres makes sure the shared cluster is up again, starting it if
// a restart left it down, and waits until it answers.
func ensurePostgres(t testing.TB, version string) {
	t.Helper()
	answers := func(d time.Duration) bool {
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if postgresAnswers() {
				return true
			}
		}
		return false
	}
	if answers(20 * time.Second) {
		return
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start").CombinedOutput()
	t.Logf("PostgreSQL was still down; pg_ctlcluster start: %v %s", err, out)
	if !answers(60 * time.Second) {
		t.Errorf("PostgreSQL %s main does not answer after the restart test", version)
	}
}

// TestPostgresRestart restarts the shared PostgreSQL cluster with
// `-m immediate` (a crash, as far as the data is concerned: no checkpoint,
// UNLOGGED staging emptied by recovery) while two `redpg process` runs with
// two workers each work through 50,000 orders, one connected directly and
// one through a private PgBouncer. The workers must back off, reconnect and
// finish: orders holds exactly the unique valid orders, every invalid one
// is dead-lettered (none as infrastructure_failure) and reconcile exits 0.
func TestPostgresRestart(t *testing.T) {
	version := postgresVersion(t)
	// Whatever happens below, leave PostgreSQL running for whoever is next
	// (and for the cleanup of the test's own schema, which runs before).
	t.Cleanup(func() { ensurePostgres(t, version) })
	env := testenv.New(t)
	t.Cleanup(func() { ensurePostgres(t, version) })
	pgb := startPgBouncer(t)
	p := newPipeline(t, env, nil, pipeline.Config{})
	gen := generateOrders(t, p, 50000, 0.05, 0.01, 0)
	want := expectedIDs(t, gen.msgs, snapshot(t, p))
	require.Len(t, want, gen.counts.Unique)

	environ := procEnv(env, env.RedisURL)
	args := []string{"process", "--workers", "2", "--until-empty", "--lease", "2s", "--batch-size", "2000", "--log-level", "info"}
	direct := startRedpg(t, environ, args...)
	pooled := startRedpg(t, procEnv(env, env.RedisURL, "PGBOUNCER_URL="+pgb.URL()), args...)
	testenv.WaitFor(t, time.Minute, "the first orders to be promoted", func() bool {
		return ordersCount(env) >= 5000 || direct.exited() || pooled.exited()
	})
	require.False(t, direct.exited() || pooled.exited(), "the workers finished before PostgreSQL could be restarted:\n%s%s",
		direct.stderr.String(), pooled.stderr.String())
	before := ordersCount(env)

	start := time.Now()
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "immediate").CombinedOutput()
	require.NoError(t, err, "pg_ctlcluster restart: %s", out)
	ensurePostgres(t, version)
	env.PG.Reset() // the test's own connections died with the server
	testenv.WaitFor(t, 30*time.Second, "the test's pool to reconnect", func() bool { return ordersCount(env) >= 0 })
	t.Logf("PostgreSQL restarted in %s with %d of %d unique orders promoted", time.Since(start).Round(time.Millisecond), before, gen.counts.Unique)

	for name, pr := range map[string]*proc{"direct": direct, "through PgBouncer": pooled} {
		require.Equal(t, 0, pr.wait(t, 3*time.Minute), "redpg process (%s) did not survive the restart:\n%s", name, tail(pr.stderr.String(), 3000))
		logs := pr.stderr.String()
		require.NotContains(t, logs, "panic")
		t.Logf("%s: exited %s after the restart began; %d failed batch attempts retried", name, time.Since(start).Round(time.Millisecond),
			strings.Count(logs, "batch not committed; retrying")+strings.Count(logs, "batch failed"))
	}
	require.Contains(t, pooled.stderr.String(), "via PgBouncer 127.0.0.1:")

	requireExactlyOnce(t, env, want)
	require.Equal(t, int64(gen.counts.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = 'infrastructure_failure'"),
		"an outage must never dead-letter a valid order")
	requireDrained(t, env, nil)
	stdout, stderr, code := runRedpg(t, environ, "reconcile")
	require.Equal(t, 0, code, "reconcile:\n%s%s", stdout, stderr)
}

// TestRedisRestart SIGKILLs a private, persistence-free redis-server under a
// running `redpg process` and starts it again 3 s later. Everything it
// held — queue, leases, counters, lookup snapshot — is gone, which is the
// documented price of running Redis without AOF. What must hold: the
// process neither crashes nor spins (its CPU time over the outage stays
// low), orders committed before the restart are all still in PostgreSQL,
// workers resume once Redis is back (orders pushed afterwards are all
// promoted exactly once), and the loss is not silent: reconcile reports it.
func TestRedisRestart(t *testing.T) {
	env := testenv.New(t)
	rs := startRedis(t, "")
	rdb := rs.client()
	p := newPipeline(t, env, rdb, pipeline.Config{})
	first := generateOrders(t, p, 40000, 0.05, 0.01, 0)
	firstWant := expectedIDs(t, first.msgs, snapshot(t, p))

	environ := procEnv(env, rs.URL())
	worker := startRedpg(t, environ, "process", "--workers", "2", "--lease", "2s", "--batch-size", "2000", "--log-level", "info")
	testenv.WaitFor(t, time.Minute, "the first orders to be promoted", func() bool { return ordersCount(env) >= 5000 || worker.exited() })
	require.False(t, worker.exited(), "redpg process ended early:\n%s", worker.stderr.String())

	rs.kill()
	killed := time.Now()
	// Let whatever the workers had in hand settle, then measure what the
	// process burns while Redis is away: a retry loop without backoff would
	// use a whole core. The outage lasts over 3 s because go-redis itself
	// rides out shorter ones silently (5 dial attempts 100 ms apart, for
	// each of 3 tries of a command): a worker caught between commands would
	// never see a 1.5 s outage, and the log would rightly say nothing.
	time.Sleep(300 * time.Millisecond)
	ticks0, wall0 := worker.cpuTicks(t), time.Now()
	time.Sleep(2700 * time.Millisecond)
	ticks1, wall1 := worker.cpuTicks(t), time.Now()
	before := orderIDs(t, env) // committed before or during the outage
	rs.restart()
	outage := time.Since(killed)
	cpu := float64(ticks1-ticks0) / 100 // clock ticks are 1/100 s on Linux
	share := cpu / wall1.Sub(wall0).Seconds()
	t.Logf("Redis down for %s; redpg used %.2fs CPU over %.2fs of it (%.0f%% of a core); %d orders were durable",
		outage.Round(time.Millisecond), cpu, wall1.Sub(wall0).Seconds(), share*100, len(before))
	require.False(t, worker.exited(), "redpg process died with Redis:\n%s", tail(worker.stderr.String(), 3000))
	require.Less(t, share, 0.3, "redpg spins while Redis is down")

	// Redis is back, empty. New orders must flow again.
	second := generateOrders(t, p, 20000, 0.05, 0.01, 0)
	secondWant := expectedIDs(t, second.msgs, snapshot(t, p))
	ids := make([]string, 0, len(secondWant))
	for id := range secondWant {
		ids = append(ids, id)
	}
	testenv.WaitFor(t, 2*time.Minute, "orders pushed after the restart to be promoted", func() bool {
		n := int64(-1)
		_ = env.PG.QueryRow(context.Background(), "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE order_id = ANY($1)", ids).Scan(&n)
		return n == int64(len(ids)) || worker.exited()
	})
	testenv.WaitFor(t, time.Minute, "the queue to drain", func() bool {
		s, err := p.Queue().Snapshot(context.Background())
		return err == nil && s.Depth == 0 && s.InFlight() == 0
	})
	require.NoError(t, worker.cmd.Process.Signal(os.Interrupt))
	require.Equal(t, 0, worker.wait(t, time.Minute), "redpg process did not stop cleanly:\n%s", tail(worker.stderr.String(), 3000))
	logs := worker.stderr.String()
	require.NotContains(t, logs, "panic")
	require.Contains(t, logs, "connection refused", "the outage must be visible in the log")

	got := orderIDs(t, env)
	var vanished, notOnce, unexpected []string
	for id := range before {
		if got[id] != 1 {
			vanished = append(vanished, id)
		}
	}
	for id := range secondWant {
		if got[id] != 1 {
			notOnce = append(notOnce, id)
		}
	}
	for id := range got {
		if !firstWant[id] && !secondWant[id] {
			unexpected = append(unexpected, id)
		}
	}
	require.Empty(t, vanished, "orders durable before the restart disappeared")
	require.Empty(t, notOnce, "orders pushed after the restart not promoted exactly once")
	require.Empty(t, unexpected, "orders promoted that were never valid")
	lost := 0
	for id := range firstWant {
		if got[id] == 0 {
			lost++
		}
	}
	var ledgerPromoted int64
	require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT coalesce(sum(promoted), 0) FROM "+env.Tables.Batches()).Scan(&ledgerPromoted))
	require.Equal(t, int64(len(got)), ledgerPromoted, "the ledger must agree with orders")
	requireDrained(t, env, rdb)
	t.Logf("%d of %d unique orders queued before the crash were lost with Redis's memory (no AOF); all %d pushed after it were promoted",
		lost, len(firstWant), len(secondWant))

	// The produced counter was lost too, so the books cannot balance, and
	// reconcile must say so rather than report OK.
	stdout, stderr, code := runRedpg(t, environ, "reconcile")
	require.Equal(t, 3, code, "reconcile must flag the loss:\n%s%s", stdout, stderr)
	require.Contains(t, stdout, "PROBLEM")
}

// TestPgBouncerRestart runs `redpg process` with its workers connected
// through a private PgBouncer (transaction pooling) and kills and restarts
// PgBouncer twice mid-run. Every order must be promoted exactly once and
// reconcile must exit 0.
func TestPgBouncerRestart(t *testing.T) {
	env := testenv.New(t)
	pgb := startPgBouncer(t)
	p := newPipeline(t, env, nil, pipeline.Config{})
	gen := generateOrders(t, p, 50000, 0.05, 0.01, 0)
	want := expectedIDs(t, gen.msgs, snapshot(t, p))
	require.Len(t, want, gen.counts.Unique)

	environ := procEnv(env, env.RedisURL, "PGBOUNCER_URL="+pgb.URL())
	worker := startRedpg(t, environ, "process", "--workers", "2", "--until-empty", "--lease", "2s", "--batch-size", "2000", "--log-level", "info")
	for i, at := range []int64{4000, 12000} {
		testenv.WaitFor(t, time.Minute, fmt.Sprintf("%d orders to be promoted", at), func() bool { return ordersCount(env) >= at || worker.exited() })
		require.False(t, worker.exited(), "the workers finished before PgBouncer restart %d:\n%s", i+1, worker.stderr.String())
		pgb.restart(700 * time.Millisecond)
		t.Logf("PgBouncer restart %d with %d orders promoted", i+1, ordersCount(env))
	}
	require.Equal(t, 0, worker.wait(t, 3*time.Minute), "redpg process did not survive PgBouncer restarts:\n%s", tail(worker.stderr.String(), 3000))
	logs := worker.stderr.String()
	require.Contains(t, logs, "via PgBouncer 127.0.0.1:", "the workers must have gone through PgBouncer")
	require.NotContains(t, logs, "panic")
	t.Logf("worker log: %d batch retries", strings.Count(logs, "batch not committed; retrying")+strings.Count(logs, "batch failed"))

	requireExactlyOnce(t, env, want)
	require.Equal(t, int64(gen.counts.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	requireDrained(t, env, nil)
	stdout, stderr, code := runRedpg(t, environ, "reconcile")
	require.Equal(t, 0, code, "reconcile:\n%s%s", stdout, stderr)
}
