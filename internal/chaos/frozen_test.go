//go:build chaos

package chaos

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// openTransaction returns the PostgreSQL backend pid of a transaction that
// is writing into env's orders table (so it holds order ids that other
// batches' inserts must wait for) and is still open, or 0.
func openTransaction(t testing.TB, env *testenv.Env) int {
	t.Helper()
	var pid int
	err := env.PG.QueryRow(context.Background(), `SELECT a.pid FROM pg_stat_activity a
		WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL
		  AND a.state IN ('active', 'idle in transaction')
		  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation = $1::regclass AND l.mode = 'RowExclusiveLock')
		ORDER BY a.xact_start LIMIT 1`, env.Tables.Orders()).Scan(&pid)
	if err != nil {
		return 0
	}
	return pid
}

// backendAlive reports whether the PostgreSQL backend pid still exists.
func backendAlive(t testing.TB, env *testenv.Env, pid int) bool {
	t.Helper()
	return env.Count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) > 0
}

// TestFrozenWorkerProcess SIGSTOPs a real `redpg process`, going through
// its own PgBouncer in transaction pooling, while it holds an open
// transaction that has written rows, and leaves it frozen. Another process
// must still finish every order: the frozen transaction's locks (its
// order ids, its ledger row) are released by the timeouts the frozen
// process set in that very transaction with SET LOCAL (idle in
// transaction, or a statement cut short), its lease runs out, and the
// reaper fences and requeues its batch without waiting for it. Then the
// frozen process is woken, must not double anything, and is stopped.
func TestFrozenWorkerProcess(t *testing.T) {
	env := testenv.New(t)
	bouncer := startPgBouncer(t)
	p := newPipeline(t, env, nil, pipeline.Config{})
	gen := generateOrders(t, p, 30000, 0.05, 0.01, 91)
	want := expectedIDs(t, gen.msgs, snapshot(t, p))
	require.Len(t, want, gen.counts.Unique, "the test's own oracle disagrees with the generator")

	timeouts := []string{"REDPG_LOCK_TIMEOUT=1", "REDPG_STATEMENT_TIMEOUT=5", "REDPG_IDLE_IN_TRANSACTION_TIMEOUT=3"}
	frozenEnv := procEnv(env, env.RedisURL, append([]string{"PGBOUNCER_URL=" + bouncer.URL()}, timeouts...)...)
	frozen := startRedpg(t, frozenEnv, "process", "--workers", "1", "--lease", "2s", "--batch-size", "2000", "--log-level", "info")
	defer func() { _ = frozen.cmd.Process.Signal(syscall.SIGCONT) }()

	// Freeze it inside a transaction: find one of the schema's that has
	// written rows, stop the process, and check the transaction is still
	// open (it may have committed in between; then try again).
	var backend int
	deadline := time.Now().Add(time.Minute)
	for backend == 0 {
		require.False(t, frozen.exited(), "redpg process exited:\n%s", frozen.stderr.String())
		require.True(t, time.Now().Before(deadline), "never caught the process inside a transaction")
		pid := openTransaction(t, env)
		if pid == 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGSTOP))
		time.Sleep(200 * time.Millisecond)
		if openTransaction(t, env) == pid {
			backend = pid
			break
		}
		require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGCONT))
	}
	held := heldBatches(t, env, frozen.pid())
	require.Len(t, held, 1, "the frozen worker holds a batch")
	t.Logf("froze redpg pid %d inside transaction of backend %d, batch %s", frozen.pid(), backend, held[0])

	// The other workers: plain processes, direct to PostgreSQL.
	environ := procEnv(env, env.RedisURL, timeouts...)
	out, errOut, code := runRedpg(t, environ, "process", "--workers", "2", "--until-empty", "--lease", "2s", "--batch-size", "2000", "--log-level", "info")
	require.Equal(t, 0, code, "process:\n%s%s", out, tail(errOut, 3000))
	require.False(t, frozen.exited(), "the frozen process is still there, stopped")
	testenv.WaitFor(t, 30*time.Second, "PostgreSQL to end the frozen transaction", func() bool { return !backendAlive(t, env, backend) })

	requireExactlyOnce(t, env, want)
	requireDrained(t, env, nil)
	require.Equal(t, int64(gen.counts.Invalid), env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()))
	var status string
	require.NoError(t, env.PG.QueryRow(context.Background(), "SELECT status FROM "+env.Tables.Batches()+" WHERE batch_id = $1", held[0]).Scan(&status))
	require.Equal(t, "abandoned", status, "the frozen worker's batch was fenced and requeued")
	out, errOut, code = runRedpg(t, environ, "reconcile")
	require.Equal(t, 0, code, "reconcile:\n%s%s", out, errOut)

	// Wake it: it finds its session gone and its batch decided, and
	// neither doubles nor loses anything. Then stop it.
	require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGCONT))
	testenv.WaitFor(t, time.Minute, "the woken process to give up its batch", func() bool {
		return len(heldBatches(t, env, frozen.pid())) == 0
	})
	require.NoError(t, frozen.cmd.Process.Signal(syscall.SIGINT))
	frozen.wait(t, time.Minute)
	requireExactlyOnce(t, env, want)
	requireDrained(t, env, nil)
	out, errOut, code = runRedpg(t, environ, "reconcile")
	require.Equal(t, 0, code, "reconcile after the frozen process woke:\n%s%s\nits log:\n%s", out, errOut, tail(frozen.stderr.String(), 3000))
}
