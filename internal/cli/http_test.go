package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/cli"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/web"
	"github.com/redpg/redpg/internal/window"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// syncBuffer collects what a command running in a goroutine writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// background runs redpg against env in a goroutine until ctx ends and
// returns its outputs and a channel with its exit code.
func background(ctx context.Context, env *testenv.Env, args ...string) (stdout, stderr *syncBuffer, done chan int) {
	stdout, stderr, done = &syncBuffer{}, &syncBuffer{}, make(chan int, 1)
	global := []string{"--database-url", testenv.DatabaseURL(), "--redis-url", testenv.RedisURL(),
		"--schema", env.Schema, "--key-prefix", env.Prefix}
	if !strings.Contains(strings.Join(args, " "), "--env-file") {
		global = append(global, "--env-file", "/nonexistent")
	}
	go func() { done <- cli.Execute(ctx, append(args, global...), stdout, stderr) }()
	return stdout, stderr, done
}

// getter performs GETs on addr, with a bearer token when given one.
func getter(t *testing.T, ctx context.Context, addr string) func(path, token string) (int, string) {
	return func(path, token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
}

func requireExit(t *testing.T, done chan int, want int, stderr *syncBuffer) {
	t.Helper()
	select {
	case c := <-done:
		require.Equal(t, want, c, "stderr:\n%s", stderr)
	case <-time.After(time.Minute):
		t.Fatalf("redpg did not stop; stderr:\n%s", stderr)
	}
}

// TestServeServesHTTP runs `redpg serve` with orders flowing and checks
// every kind of endpoint as a client would: health, readiness, the stats
// with live windows equal to a direct query, and Prometheus metrics that
// parse and count the workers' promotions.
func TestServeServesHTTP(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	requireOK(t, runIn(t, env, "generate", "--count", "500", "--seed", "4", "--burst"))

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	stdout, stderr, done := background(sctx, env, "serve", "--http-addr", addr, "--http-token", "tok", "-w", "2",
		"--refresh-interval", "200ms", "--log-format", "json", "--log-level", "info")
	get := getter(t, ctx, addr)
	require.Eventually(t, func() bool { code, _ := get("/healthz", ""); return code == http.StatusOK }, time.Minute, 50*time.Millisecond,
		"serve never answered; stderr:\n%s", stderr)
	code, body := get("/readyz", "")
	require.Equal(t, http.StatusOK, code, body)
	var rd web.Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &rd))
	require.True(t, rd.Ready, body)
	code, _ = get("/api/stats", "")
	require.Equal(t, http.StatusUnauthorized, code, "the token guards the API")

	// More orders while serve runs.
	requireOK(t, runIn(t, env, "generate", "--count", "700", "--seed", "5"))
	var st web.Stats
	require.Eventually(t, func() bool {
		code, body := get("/api/stats", "tok")
		st = web.Stats{}
		return code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && st.ProductionRows == 1200 && st.QueueDepth == 0
	}, time.Minute, 100*time.Millisecond)
	require.Len(t, st.Windows, len(window.Spans))
	require.GreaterOrEqual(t, st.Windows[0].Orders, int64(500), "the burst's 500 orders carry the last minute's time")
	for _, f := range st.Windows {
		var n, cents int64
		require.NoError(t, env.PG.QueryRow(ctx, "SELECT count(*), coalesce(sum(total_amount_usd * 100), 0)::bigint FROM "+
			env.Tables.Orders()+" WHERE order_timestamp >= $1 AND order_timestamp < $2", f.From, f.To).Scan(&n, &cents))
		require.Equal(t, n, f.Orders, "orders in the last %s", f.Span)
		require.Equal(t, cents, f.RevenueUSDCents, "revenue in the last %s", f.Span)
	}
	require.Len(t, st.WorkerList, 2, "the workers table lists serve's two workers")
	for _, w := range st.WorkerList {
		require.NotEmpty(t, w.Host)
		require.NotEmpty(t, w.Version)
	}

	code, body = get("/metrics", "tok")
	require.Equal(t, http.StatusOK, code)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err, "/metrics parses as the Prometheus text format")
	counter := func(name string) float64 {
		f, ok := fams[name]
		require.True(t, ok, "metric %s", name)
		require.Equal(t, dto.MetricType_COUNTER, f.GetType())
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	require.Equal(t, 1200.0, counter("redpg_orders_promoted_total"), "serve's workers report to its /metrics")
	require.Positive(t, counter("redpg_batches_committed_total"))
	require.Equal(t, 0.0, fams["redpg_queue_depth"].GetMetric()[0].GetGauge().GetValue())
	require.Equal(t, 2.0, fams["redpg_workers_alive"].GetMetric()[0].GetGauge().GetValue())

	stop()
	requireExit(t, done, 0, stderr)
	require.Contains(t, stderr.String(), "dashboard on http://"+addr+"/ (token required)")
	require.NotContains(t, stderr.String()+stdout.String(), "tok)", "the token itself is never printed")
	var logged bool
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &v), "--log-format json writes JSON lines: %s", line)
			logged = logged || v["msg"] == "serving HTTP" && v["addr"] == addr
		}
	}
	require.True(t, logged, "the JSON log has the listening line:\n%s", stderr)
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the HTTP server stopped with serve")
}

// TestServeHTTPOff checks that --http-addr off wins over REDPG_HTTP_ADDR:
// serve works and nothing listens.
func TestServeHTTPOff(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	addr := freeAddr(t)
	envFile := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(envFile, []byte("REDPG_HTTP_ADDR="+addr+"\n"), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	requireOK(t, runIn(t, env, "generate", "--count", "200", "--seed", "6"))
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	_, stderr, done := background(sctx, env, "serve", "--http-addr", "off", "-w", "1", "--env-file", envFile)
	require.Eventually(t, func() bool {
		return env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()) == 200
	}, time.Minute, 100*time.Millisecond, "serve never promoted; stderr:\n%s", stderr)
	_, err := net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "nothing listens with HTTP off")
	stop()
	requireExit(t, done, 0, stderr)
	require.NotContains(t, stderr.String(), "dashboard on")
}

// TestServeRefusesATakenPort fails before any worker starts.
func TestServeRefusesATakenPort(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	r := runIn(t, env, "serve", "--http-addr", ln.Addr().String())
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "pick another with --http-addr or REDPG_HTTP_ADDR (off turns HTTP off)")
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Batches()))
}

// TestDashboardCommandIsReadOnly serves the dashboard without workers:
// the queue stays as it is, and the token guards all but the probes.
func TestDashboardCommandIsReadOnly(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	requireOK(t, runIn(t, env, "generate", "--count", "300", "--seed", "4"))
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	_, stderr, done := background(sctx, env, "dashboard", "--http-addr", addr, "--http-token", "tok")
	get := getter(t, ctx, addr)
	require.Eventually(t, func() bool { code, _ := get("/healthz", ""); return code == http.StatusOK }, time.Minute, 50*time.Millisecond,
		"the dashboard never answered; stderr:\n%s", stderr)
	code, _ := get("/api/stats", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := get("/api/stats", "tok")
	require.Equal(t, http.StatusOK, code, body)
	var st web.Stats
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Equal(t, int64(300), st.QueueDepth, "no worker took anything")
	require.Empty(t, st.WorkerList)
	code, body = get("/metrics", "tok")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "redpg_queue_depth 300")
	stop()
	requireExit(t, done, 0, stderr)
	require.Contains(t, stderr.String(), "dashboard on http://"+addr+"/ (token required)")
}

func TestDashboardRefusesABadAddress(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	r := runIn(t, env, "dashboard", "--http-addr", "nonsense")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "REDPG_HTTP_ADDR")
	r = runIn(t, env, "dashboard", "--http-addr", "off")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "dashboard only serves HTTP")
}

// TestDemoServeShowsOrdersArrive runs `demo --serve` with a paced
// generation and watches /api/stats as a person would watch the
// dashboard: the orders arrive in steps while it runs, and it keeps
// serving after the last one.
func TestDemoServeShowsOrdersArrive(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stdout, stderr, done := background(ctx, env, "demo", "--serve", "--count", "2000", "--duplicates", "0", "--seed", "8",
		"--pace", "4s", "--linger", "2s", "--http-addr", addr, "-w", "2")
	get := getter(t, ctx, addr)
	seen := map[int64]bool{}
	var code int
	for {
		select {
		case code = <-done:
		case <-time.After(50 * time.Millisecond):
			if c, body := get("/api/stats", ""); c == http.StatusOK {
				var st web.Stats
				require.NoError(t, json.Unmarshal([]byte(body), &st))
				seen[st.ProductionRows] = true
			}
			continue
		}
		break
	}
	require.Zero(t, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stderr.String(), "dashboard on http://"+addr+"/")
	require.Contains(t, stdout.String(), "keep serving the dashboard for 2s")
	require.Contains(t, stdout.String(), "OK:")
	require.True(t, seen[2000], "the dashboard showed every order: %v", seen)
	var between int
	for n := range seen {
		if n > 0 && n < 2000 {
			between++
		}
	}
	require.Positive(t, between, "the dashboard saw orders arrive, not only the end: %v", seen)
}
