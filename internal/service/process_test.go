package service_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
)

// serveProc is a `redpg serve` subprocess.
type serveProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

func startServe(t *testing.T, bin string, env *testenv.Env) *serveProc {
	t.Helper()
	p := &serveProc{stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--env-file", "/nonexistent", "--log-level", "info", "serve",
		"--workers", "2", "--batch-size", "200", "--lease", "3s", "--leader-poll", "200ms", "--refresh-interval", "300ms", "--shutdown-timeout", "10s",
		"--http-addr", "127.0.0.1:0") // several serve processes on one host: each its own port
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"DATABASE_URL=" + env.DatabaseURL, "REDIS_URL=" + env.RedisURL,
		"POSTGRES_SCHEMA=" + env.Schema, "REDPG_KEY_PREFIX=" + env.Prefix}
	p.cmd.Stdout = &bytes.Buffer{}
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("serve pid %d stderr:\n%s", p.cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

// leaderPid is the pid in the leader key (<host>-<pid>), 0 when none.
func leaderPid(t *testing.T, env *testenv.Env) int {
	name, err := env.RDB.Get(t.Context(), env.Keys.Leader()).Result()
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(name[strings.LastIndex(name, "-")+1:])
	return pid
}

// TestTwoServeProcessesFailOver runs two real `serve` processes on one
// schema and key prefix, SIGKILLs the one holding the leader's roles, and
// checks that the other takes them over and keeps the views fresh; then a
// SIGTERM stops the survivor cleanly with exit status 0.
func TestTwoServeProcessesFailOver(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := t.Context()
	bin := testenv.RedpgBinary(t)
	procs := map[int]*serveProc{}
	for range 2 {
		p := startServe(t, bin, env)
		procs[p.cmd.Process.Pid] = p
	}
	pipe, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables}, env.PG, nil, env.RDB)
	require.NoError(t, err)

	var first int
	testenv.WaitFor(t, 30*time.Second, "a leader", func() bool { first = leaderPid(t, env); return procs[first] != nil })
	gen1, err := pipe.Generate(ctx, 1000, generate.Config{}, nil)
	require.NoError(t, err)
	testenv.WaitFor(t, time.Minute, "the first orders in the views", func() bool { return viewsCount(t, env) == int64(gen1.Unique) })

	require.NoError(t, procs[first].cmd.Process.Signal(syscall.SIGKILL))
	<-procs[first].done
	var second int
	testenv.WaitFor(t, 30*time.Second, "the other process to take over", func() bool {
		second = leaderPid(t, env)
		return second != 0 && second != first
	})
	require.Contains(t, procs, second)

	// The survivor does all the work now, views included; the dead one's
	// claimed batch, if any, comes back when its lease expires.
	gen2, err := pipe.Generate(ctx, 1000, generate.Config{}, nil)
	require.NoError(t, err)
	total := int64(gen1.Unique + gen2.Unique)
	testenv.WaitFor(t, 2*time.Minute, "every order in orders", func() bool { return ordersCount(t, env) == total })
	testenv.WaitFor(t, time.Minute, "every order in the views", func() bool { return viewsCount(t, env) == total })

	survivor := procs[second]
	require.NoError(t, survivor.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-survivor.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within its shutdown timeout after SIGTERM")
	}
	require.NoError(t, survivor.err, "serve exits 0 after SIGTERM")
	_, err = env.RDB.Get(ctx, env.Keys.Leader()).Result()
	require.Error(t, err, "a leader that stops cleanly gives up its name")
	rec, err := pipe.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, rec.OK(), rec.String())
}
