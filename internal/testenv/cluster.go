package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Cluster is a PostgreSQL server a test started for itself, in a temporary
// directory on a free port, for topologies the shared server cannot take
// part in (it refuses replication connections, and its configuration is
// not ours to change). It is stopped and removed when the test ends.
type Cluster struct {
	Dir  string // data directory
	Port int
	bin  string
	run  *user.User // OS user the server runs as (postgres when we are root)
}

// URL is a URL for database db on the cluster, as role root (initdb's
// superuser here), trusted.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://root@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// PostgresBin finds the server binaries for test clusters:
// REDPG_TEST_PG_BIN when set (to run the topology tests on another major
// version), else the newest under Debian's /usr/lib/postgresql/<version>/bin.
func PostgresBin(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("REDPG_TEST_PG_BIN"); dir != "" {
		return dir
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	if len(dirs) == 0 {
		t.Fatal("no PostgreSQL server binaries under /usr/lib/postgresql (scripts/services.sh installs them)")
	}
	return filepath.Dir(dirs[0])
}

func versionOf(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// FreePort returns a TCP port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serverUser is the OS user to run servers as: PostgreSQL refuses to run
// as root, so a root test runs them as postgres.
func serverUser(t testing.TB) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root needs the postgres OS user (the Debian postgresql package creates it): %v", err)
	}
	return u
}

// OwnedTempDir makes a temporary directory owned by u, removed when t ends.
// t.TempDir is not used: its parent is private to the test's user.
func OwnedTempDir(t testing.TB, u *user.User, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runAs runs a command as u and fails t with its output if it fails.
func runAs(t testing.TB, u *user.User, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = os.TempDir()
	if os.Geteuid() == 0 && u.Username != "root" {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// clusterSettings keep a test server small and fast: it is thrown away, so
// durability is off, and it allows streaming replication.
var clusterSettings = []string{
	"listen_addresses = '127.0.0.1'",
	"max_connections = 40",
	"shared_buffers = 32MB",
	"fsync = off",
	"synchronous_commit = off",
	"full_page_writes = off",
	"wal_level = replica",
	"max_wal_senders = 4",
	"hot_standby = on",
	"log_min_messages = warning",
}

// StartCluster initialises and starts a primary of its own, with trust
// authentication for role root, replication included.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := &Cluster{bin: PostgresBin(t), run: serverUser(t), Port: FreePort(t)}
	c.Dir = OwnedTempDir(t, c.run, "redpg-pg-primary-")
	data := filepath.Join(c.Dir, "data")
	runAs(t, c.run, filepath.Join(c.bin, "initdb"), "-D", data, "-U", "root", "--auth=trust", "-E", "UTF8", "--no-sync")
	c.appendConf(t, data)
	c.start(t, data)
	return c
}

// StartReplica takes a base backup of c (pg_basebackup -R, streaming) and
// starts it as a hot standby on its own port.
func (c *Cluster) StartReplica(t testing.TB) *Cluster {
	t.Helper()
	r := &Cluster{bin: c.bin, run: c.run, Port: FreePort(t)}
	r.Dir = OwnedTempDir(t, r.run, "redpg-pg-replica-")
	data := filepath.Join(r.Dir, "data")
	runAs(t, r.run, filepath.Join(c.bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "root",
		"-D", data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
	r.start(t, data)
	return r
}

func (c *Cluster) appendConf(t testing.TB, data string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "\n# redpg test cluster\n%s\nunix_socket_directories = '%s'\n", strings.Join(clusterSettings, "\n"), c.Dir); err != nil {
		t.Fatal(err)
	}
}

// start runs the server on c.Port and waits until it accepts queries; it
// is stopped (immediate mode: it is thrown away) when t ends.
func (c *Cluster) start(t testing.TB, data string) {
	t.Helper()
	ctl := filepath.Join(c.bin, "pg_ctl")
	opts := fmt.Sprintf("-p %d -k %s", c.Port, c.Dir)
	runAs(t, c.run, ctl, "-D", data, "-l", filepath.Join(c.Dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
	t.Cleanup(func() {
		cmd := exec.Command(ctl, "-D", data, "-m", "immediate", "-w", "stop")
		if os.Geteuid() == 0 && c.run.Username != "root" {
			uid, _ := strconv.Atoi(c.run.Uid)
			gid, _ := strconv.Atoi(c.run.Gid)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("stop the test cluster in %s: %v\n%s", data, err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			_ = conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
			t.Fatalf("test cluster on port %d does not answer: %v\n%s", c.Port, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RedisPrefix returns a private key prefix on the test Redis whose keys are
// deleted when t ends, for tests that need no schema of testenv.New.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	prefix := "test:" + ID() + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		opt, err := redis.ParseURL(RedisURL())
		if err != nil {
			return
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}
