//go:build topology

package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/keys"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

// PgBouncer settings of the 800-client test: the seed's "800 worker
// connections became 25 database connections".
const (
	bouncerClients  = 800
	bouncerPoolSize = 25
)

// TestTopologyPgBouncer800Clients runs 800 workers, each with its own
// client connection, through a PgBouncer of its own in transaction mode
// with default_pool_size 25, in front of the shared PostgreSQL. It samples
// pg_stat_activity throughout and requires that PostgreSQL never saw more
// than 25 connections to the test's database, and that reconcile accounts
// for every order.
func TestTopologyPgBouncer800Clients(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db := "redpg_bouncer_" + testenv.ID()
	dbURL := withDatabase(t, testenv.DatabaseURL(), db)

	// A database of its own, so that every connection to it is the
	// bouncer's; migrated directly (migrations take a session lock).
	admin := testenv.Pool(t, withDatabase(t, testenv.DatabaseURL(), "postgres"), 2)
	_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Logf("drop database %s: %v", db, err)
		}
	})
	direct := testenv.Pool(t, dbURL, 1)
	_, err = schema.Migrate(ctx, direct, schema.DefaultSchema)
	require.NoError(t, err)
	direct.Close()

	port := startPgBouncer(t, db)
	bouncerURL := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", osUserName(), port, db)
	pg := bouncerPool(t, bouncerURL, 4)
	wpg := bouncerPool(t, bouncerURL, bouncerClients)
	opt, err := redis.ParseURL(testenv.RedisURL())
	require.NoError(t, err)
	opt.PoolSize = bouncerClients + 100
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	k := keys.Space{Prefix: testenv.RedisPrefix(t)}
	p, err := pipeline.New(pipeline.Config{Keys: k, Tables: schema.Tables{Schema: schema.DefaultSchema}, BatchSize: 10,
		IdleWait: 100 * time.Millisecond}, pg, wpg, rdb)
	require.NoError(t, err)

	// Every worker's own client connection, opened before the run.
	conns := make([]*pgxpool.Conn, bouncerClients)
	var wg sync.WaitGroup
	errs := make([]error, bouncerClients)
	for i := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); conns[i], errs[i] = wpg.Acquire(ctx) }()
	}
	wg.Wait()
	for i := range conns {
		require.NoError(t, errs[i])
	}
	clients := bouncerCount(t, ctx, port, "SHOW CLIENTS")
	require.GreaterOrEqual(t, clients, bouncerClients, "PgBouncer holds a client connection per worker")
	for _, c := range conns {
		c.Release()
	}

	const n = 24000 // 30 batches of 10 per worker
	gen, err := p.Generate(ctx, n, generate.Config{Duplicates: 0.05, Seed: 800}, nil)
	require.NoError(t, err)

	var maxServer, samples atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var c int64
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db).Scan(&c); err == nil {
				samples.Add(1)
				if c > maxServer.Load() {
					maxServer.Store(c)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	counts, err := p.Run(ctx, pipeline.RunOptions{Workers: bouncerClients, UntilEmpty: true})
	close(stop)
	<-sampled
	require.NoError(t, err)
	t.Logf("%d clients, %d samples of pg_stat_activity, at most %d server connections; %+v", clients, samples.Load(), maxServer.Load(), counts)

	require.Positive(t, samples.Load())
	require.Positive(t, maxServer.Load(), "the sampler saw the bouncer's connections")
	require.LessOrEqual(t, maxServer.Load(), int64(bouncerPoolSize), "PostgreSQL saw more server connections than default_pool_size")
	require.Equal(t, int64(gen.Unique), counts.Promoted)
	require.Equal(t, int64(gen.Duplicates), counts.Duplicates)
	var committedWorkers int64
	require.NoError(t, pg.QueryRow(ctx, "SELECT count(DISTINCT worker) FROM public.pipeline_batches").Scan(&committedWorkers))
	t.Logf("%d distinct workers committed batches", committedWorkers)
	r, err := p.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, r.OK(), r.String())
	require.Equal(t, int64(n), r.Produced)
}

func osUserName() string {
	u := testenv.DatabaseURL()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "root"
	}
	return cfg.User
}

// withDatabase points a PostgreSQL URL at another database.
func withDatabase(t *testing.T, rawURL, db string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(rawURL)
	require.NoError(t, err)
	host := cfg.Host
	if len(host) > 0 && host[0] == '/' {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, host, cfg.Port, db)
}

// bouncerPool is a pool through PgBouncer with redpg's own settings: the
// exec query mode, which needs no named prepared statement and no session
// state, so any server connection can run any client's next transaction.
func bouncerPool(t *testing.T, url string, size int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.MaxConns = size
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// bouncerCount runs an admin console SHOW and counts its rows. The console
// speaks only the simple protocol.
func bouncerCount(t *testing.T, ctx context.Context, port int, show string) int {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s@127.0.0.1:%d/pgbouncer?sslmode=disable", osUserName(), port))
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, show)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	return n
}

// startPgBouncer runs a PgBouncer of the test's own on a free port, in
// transaction mode with default_pool_size 25, forwarding db to the shared
// PostgreSQL. It is stopped when t ends.
func startPgBouncer(t *testing.T, db string) int {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("pgbouncer is not installed (Debian package pgbouncer; scripts/services.sh installs it): %v", err)
	}
	pgCfg, err := pgx.ParseConfig(testenv.DatabaseURL())
	require.NoError(t, err)
	pgHost := pgCfg.Host
	if len(pgHost) > 0 && pgHost[0] == '/' {
		pgHost = "127.0.0.1"
	}
	port := testenv.FreePort(t)
	u := bouncerUser(t)
	dir := testenv.OwnedTempDir(t, u, "redpg-pgbouncer-")
	ini := filepath.Join(dir, "pgbouncer.ini")
	users := fmt.Sprintf("%q \"\"\n", osUserName())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(users), 0o644))
	conf := fmt.Sprintf(`[databases]
%s = host=%s port=%d dbname=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir = %s
auth_type = trust
auth_file = %s/userlist.txt
admin_users = %s
pool_mode = transaction
default_pool_size = %d
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 1000
listen_backlog = 1024
server_reset_query =
ignore_startup_parameters = extra_float_digits,search_path
logfile = %s/pgbouncer.log
log_connections = 0
log_disconnections = 0
`, db, pgHost, pgCfg.Port, db, port, dir, dir, osUserName(), bouncerPoolSize, dir)
	require.NoError(t, os.WriteFile(ini, []byte(conf), 0o644))
	args := []string{ini}
	if os.Geteuid() == 0 {
		args = []string{"-u", u.Username, ini}
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", osUserName(), port, db))
		if err == nil {
			_ = conn.Close(context.Background())
			return port
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("our PgBouncer on port %d does not answer: %v\n%s", port, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bouncerUser is who PgBouncer runs as: it refuses to run as root.
func bouncerUser(t *testing.T) *user.User {
	t.Helper()
	name := "postgres"
	if os.Geteuid() != 0 {
		name = strconv.Itoa(os.Geteuid())
		u, err := user.LookupId(name)
		require.NoError(t, err)
		return u
	}
	u, err := user.Lookup(name)
	require.NoError(t, err)
	return u
}
