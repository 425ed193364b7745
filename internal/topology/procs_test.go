//go:build topology

package topology

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/testenv"
)

// TestMain removes the binary built for the tests once they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBinaries()
	os.Exit(code)
}

// procEnv is the environment of a redpg subprocess for one tenant: its
// schema and key prefix, and nothing from the developer's shell.
func procEnv(env *testenv.Env, redisURL string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		"DATABASE_URL=" + env.DatabaseURL,
		"REDIS_URL=" + redisURL,
		"POSTGRES_SCHEMA=" + env.Schema,
		"REDPG_KEY_PREFIX=" + env.Prefix,
	}
}

// proc is a redpg subprocess, in its own process group.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRedpg starts `redpg --env-file /nonexistent args...`; the test's end
// kills its process group if it is still running.
func startRedpg(t testing.TB, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(testenv.RedpgBinary(t), append([]string{"--env-file", "/nonexistent"}, args...)...)
	p.cmd.Env = environ
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// wait waits up to d for the process to end and returns its exit code.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Fatalf("redpg %s did not finish within %s; stderr:\n%s", strings.Join(p.cmd.Args[1:], " "), d, tail(p.stderr.String(), 3000))
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// runRedpg runs a short redpg command to completion.
func runRedpg(t testing.TB, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startRedpg(t, environ, args...)
	code = p.wait(t, time.Minute)
	return p.stdout.String(), p.stderr.String(), code
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
