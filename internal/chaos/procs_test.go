//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/testenv"
)

// TestMain removes the binary built for the tests once they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBinaries()
	os.Exit(code)
}

// procEnv is the environment a redpg subprocess runs with: only what it
// needs, so that nothing from the developer's shell leaks in.
func procEnv(env *testenv.Env, redisURL string, extra ...string) []string {
	out := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		"DATABASE_URL=" + env.DatabaseURL,
		"REDIS_URL=" + redisURL,
		"POSTGRES_SCHEMA=" + env.Schema,
		"REDPG_KEY_PREFIX=" + env.Prefix,
	}
	return append(out, extra...)
}

// proc is a redpg subprocess the test controls.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
	done   chan struct{}
	err    error // from Wait, valid once done is closed
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutine and a reader.
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

// startRedpg starts `redpg --env-file /nonexistent args...` and makes sure it
// is killed when the test ends.
func startRedpg(t testing.TB, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(testenv.RedpgBinary(t), append([]string{"--env-file", "/nonexistent"}, args...)...)
	p.cmd.Env = environ
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// wait waits up to d for the process to end and returns its exit code.
func (p *proc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("redpg %s did not finish within %s; stderr:\n%s", strings.Join(p.cmd.Args[1:], " "), d, tail(p.stderr.String(), 3000))
	}
	return p.exitCode()
}

// exitCode is the exit status once the process ended (-1 if killed by a
// signal).
func (p *proc) exitCode() int {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// cpuTicks is the process's user + system CPU time in clock ticks, read
// from /proc/<pid>/stat.
func (p *proc) cpuTicks(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	require.NoError(t, err)
	// The command name (field 2) is in parentheses and may hold spaces;
	// fields after it are space-separated, utime and stime being 14 and 15.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	require.Greater(t, len(f), 13)
	utime, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	return utime + stime
}

// runRedpg runs a short redpg command to completion and returns its output
// and exit code.
func runRedpg(t testing.TB, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startRedpg(t, environ, args...)
	code = p.wait(t, 2*time.Minute)
	return p.stdout.String(), p.stderr.String(), code
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// redisServer is a throw-away redis-server the test owns: no RDB, no AOF,
// on its own port, so killing it disturbs nobody else.
type redisServer struct {
	t        testing.TB
	port     int
	password string
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
	log      lockedBuffer
}

// startRedis starts a private redis-server, with requirepass when password
// is not empty.
func startRedis(t testing.TB, password string) *redisServer {
	t.Helper()
	s := &redisServer{t: t, port: testenv.FreePort(t), password: password, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// URL is the redis:// URL of the server, with its password if any.
func (s *redisServer) URL() string {
	if s.password != "" {
		return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", s.password, s.port)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
}

// client returns a go-redis client for the server, closed when the test ends.
func (s *redisServer) client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), Password: s.password})
	s.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func (s *redisServer) start() {
	t := s.t
	t.Helper()
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", s.dir, "--logfile", ""}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	require.NoError(t, s.cmd.Start(), "redis-server must be installed (scripts/services.sh installs it)")
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	testenv.WaitFor(t, 20*time.Second, "redis-server to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: s.password, MaxRetries: -1})
	defer rdb.Close()
	testenv.WaitFor(t, 20*time.Second, "redis-server to answer PING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err() == nil
	})
}

// kill sends SIGKILL to the server and waits until it is gone.
func (s *redisServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// restart starts the server again on the same port (empty: nothing was
// persisted).
func (s *redisServer) restart() { s.start() }

// pgBouncer is a PgBouncer instance the test owns, in front of the test
// database, modelled on the one scripts/services.sh starts.
type pgBouncer struct {
	t    testing.TB
	port int
	dir  string
	ini  string
	cmd  *exec.Cmd
	done chan struct{}
	log  lockedBuffer
}

// startPgBouncer writes a config into a private directory owned by the
// user PgBouncer runs as (it refuses to run as root) and starts it.
func startPgBouncer(t testing.TB) *pgBouncer {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
	}
	_, err = os.Stat(bin)
	require.NoError(t, err, "pgbouncer must be installed (scripts/services.sh installs it)")
	b := &pgBouncer{t: t, port: testenv.FreePort(t)}
	b.dir, err = os.MkdirTemp("", "redpg-chaos-pgbouncer-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(b.dir) })

	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root, PgBouncer needs a user to switch to")
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	var users []string
	for _, u := range []string{"root", "postgres", currentUser()} {
		users = append(users, fmt.Sprintf("%q \"\"", u))
	}
	userlist := filepath.Join(b.dir, "userlist.txt")
	require.NoError(t, os.WriteFile(userlist, []byte(strings.Join(users, "\n")+"\n"), 0o600))
	b.ini = filepath.Join(b.dir, "pgbouncer.ini")
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 200
default_pool_size = 10
min_pool_size = 0
reserve_pool_size = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,search_path
server_login_retry = 1
logfile =
pidfile =
`, b.port, userlist)
	require.NoError(t, os.WriteFile(b.ini, []byte(ini), 0o600))
	if uid >= 0 {
		for _, f := range []string{b.dir, userlist, b.ini} {
			require.NoError(t, os.Chown(f, uid, gid))
		}
	}
	b.start(bin)
	t.Cleanup(b.kill)
	return b
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "postgres"
}

// URL is the PgBouncer URL for the test database.
func (b *pgBouncer) URL() string {
	u, err := pgx.ParseConfig(testenv.DatabaseURL())
	if err != nil {
		return ""
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s", u.User, b.port, u.Database)
}

func (b *pgBouncer) start(bin string) {
	t := b.t
	t.Helper()
	args := []string{b.ini}
	if os.Geteuid() == 0 {
		args = []string{"-u", "postgres", b.ini}
	}
	b.cmd = exec.Command(bin, args...)
	b.cmd.Stdout, b.cmd.Stderr = &b.log, &b.log
	require.NoError(t, b.cmd.Start())
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(b.cmd, b.done)
	testenv.WaitFor(t, 30*time.Second, "PgBouncer to answer SELECT 1", func() bool {
		select {
		case <-b.done:
			t.Fatalf("pgbouncer exited:\n%s", b.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, b.URL())
		if err != nil {
			return false
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol)
		return err == nil
	})
}

// kill sends SIGKILL to PgBouncer and waits until it is gone.
func (b *pgBouncer) kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
}

// restart kills PgBouncer and starts it again on the same port after pause.
func (b *pgBouncer) restart(pause time.Duration) {
	b.kill()
	time.Sleep(pause)
	b.start(b.cmd.Path)
}
