package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/cli"
	"github.com/redpg/redpg/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestDashboardCommandServesWithToken(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	requireOK(t, runIn(t, env, "generate", "--count", "500", "--seed", "4"))

	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, []string{"dashboard", "--http-addr", addr, "--http-token", "tok", "-w", "2", "--log-format", "json", "--log-level", "info",
			"--database-url", testenv.DatabaseURL(), "--redis-url", testenv.RedisURL(),
			"--schema", env.Schema, "--key-prefix", env.Prefix, "--env-file", "/nonexistent"}, &stdout, &stderr)
	}()
	get := func(path string, token string) (int, string) {
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
	require.Eventually(t, func() bool { code, _ := get("/healthz", ""); return code == http.StatusOK }, time.Minute, 50*time.Millisecond,
		"the dashboard never answered; stderr:\n%s", &stderr)
	code, _ := get("/api/stats", "")
	require.Equal(t, http.StatusUnauthorized, code)

	// The workers drain the queue, and /metrics counts their batches.
	require.Eventually(t, func() bool {
		code, body := get("/api/stats", "tok")
		var s struct {
			Production int64 `json:"production_rows"`
			Queue      int64 `json:"queue_depth"`
		}
		return code == http.StatusOK && json.Unmarshal([]byte(body), &s) == nil && s.Production == 500 && s.Queue == 0
	}, time.Minute, 100*time.Millisecond)
	code, body := get("/metrics", "tok")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "redpg_orders_promoted_total 500")
	require.Contains(t, body, "redpg_queue_depth 0")

	cancel()
	select {
	case c := <-done:
		require.Zero(t, c, "stderr:\n%s", &stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("dashboard did not stop on cancellation")
	}
	require.Contains(t, stderr.String(), "dashboard on http://"+addr+"/ (token required)")
	require.NotContains(t, stderr.String()+stdout.String(), "tok)", "the token itself is never printed")
	var logged bool
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &v), "--log-format json writes JSON lines: %s", line)
			logged = logged || v["msg"] == "serving HTTP" && v["addr"] == addr && v["token"] == true
		}
	}
	require.True(t, logged, "the JSON log has the listening line:\n%s", &stderr)
}

func TestDashboardRefusesABadAddress(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	r := runIn(t, env, "dashboard", "--http-addr", "nonsense")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "REDPG_HTTP_ADDR")
}

func TestLogFormatMustBeKnown(t *testing.T) {
	t.Parallel()
	r := run(t, "stats", "--log-format", "xml", "--env-file", "/nonexistent")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--log-format")
}
