package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/queue"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/web"
	"github.com/redpg/redpg/internal/window"
)

// workerVersion is what the fixture's workers register, as a build would.
const workerVersion = "worker-test-version"

type fixture struct {
	env *testenv.Env
	p   *pipeline.Pipeline
	h   http.Handler
}

// newFixture serves a pipeline on a private schema and key prefix.
func newFixture(t *testing.T, mod func(*web.Config)) *fixture {
	t.Helper()
	env := testenv.New(t)
	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables, IdleWait: 50 * time.Millisecond, Version: workerVersion}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	cfg := web.Config{Pipeline: p, PG: env.PG, RDB: env.RDB, Version: "test-version", StatsTTL: time.Nanosecond}
	if mod != nil {
		mod(&cfg)
	}
	h, err := web.New(cfg)
	require.NoError(t, err)
	return &fixture{env: env, p: p, h: h}
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// get performs a request and returns the recorder.
func (f *fixture) do(t *testing.T, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	require.Contains(t, rec.Header().Get("Content-Type"), "application/json")
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v), rec.Body.String())
	return v
}

// run generates n orders and processes them until the queue is empty.
func (f *fixture) run(t *testing.T, ctx context.Context, n int, gc generate.Config) generate.Counts {
	t.Helper()
	_, err := f.p.InitCache(ctx)
	require.NoError(t, err)
	counts, err := f.p.Generate(ctx, n, gc, nil)
	require.NoError(t, err)
	_, err = f.p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)
	return counts
}

var endpoints = []string{"/", "/assets/app.js", "/assets/style.css", "/api/stats", "/api/views", "/api/dlq", "/metrics", "/healthz", "/readyz"}

func TestEveryEndpointAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, path := range endpoints {
		rec := f.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", path, rec.Body.String())
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"), path)
		require.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'", path)
	}
	require.Equal(t, http.StatusNotFound, f.do(t, http.MethodGet, "/nope", nil).Code)
}

func TestTokenGuardsAllButHealth(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	f := newFixture(t, func(c *web.Config) { c.Token = token })
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	basic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+token))}}
	wrong := http.Header{"Authorization": {"Bearer not-it"}}
	wrongBasic := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(token+":"))}}
	for _, path := range endpoints {
		open := path == "/healthz" || path == "/readyz"
		for name, h := range map[string]http.Header{"none": nil, "wrong": wrong, "token as user name": wrongBasic} {
			rec := f.do(t, http.MethodGet, path, h)
			if open {
				require.Equal(t, http.StatusOK, rec.Code, "%s with %s", path, name)
				continue
			}
			require.Equal(t, http.StatusUnauthorized, rec.Code, "%s with %s", path, name)
			require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Basic", "browsers must be able to prompt")
			require.NotContains(t, rec.Body.String(), token)
		}
		require.Equal(t, http.StatusOK, f.do(t, http.MethodGet, path, bearer).Code, "%s with bearer", path)
		require.Equal(t, http.StatusOK, f.do(t, http.MethodGet, path, basic).Code, "%s with basic", path)
	}
}

func TestNothingChangesState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, path := range endpoints {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			rec := f.do(t, m, path, nil)
			require.Equal(t, http.StatusMethodNotAllowed, rec.Code, "%s %s", m, path)
			require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
		}
	}
}

func TestDashboardFetchesNothingFromOutside(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, path := range []string{"/", "/assets/app.js", "/assets/style.css"} {
		body := f.do(t, http.MethodGet, path, nil).Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if path == "/assets/app.js" && bad == "http://" {
				// the SVG namespace URI is an identifier, not a fetch
				body = strings.ReplaceAll(body, `"http://www.w3.org/2000/svg"`, "")
			}
			require.NotContains(t, body, bad, "%s must not reference %s", path, bad)
		}
	}
	page := f.do(t, http.MethodGet, "/", nil)
	require.Contains(t, page.Header().Get("Content-Type"), "text/html")
	require.Contains(t, page.Body.String(), "test-version")
	require.Contains(t, page.Body.String(), `src="/assets/app.js"`)
	js := f.do(t, http.MethodGet, "/assets/app.js", nil)
	require.Contains(t, js.Header().Get("Content-Type"), "javascript")
	require.NotContains(t, js.Body.String(), "innerHTML", "server data must never be parsed as HTML")
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := ctxFor(t)
	ok := decode[web.Readiness](t, f.do(t, http.MethodGet, "/readyz", nil))
	require.Equal(t, web.Readiness{Ready: true, Redis: "ok", PostgreSQL: "ok", Migrations: "ok"}, ok)

	migs, err := schema.Migrations()
	require.NoError(t, err)
	_, err = f.env.PG.Exec(ctx, "DELETE FROM "+pgx.Identifier{f.env.Schema, "redpg_migrations"}.Sanitize()+" WHERE version = $1", migs[len(migs)-1].Version)
	require.NoError(t, err)
	rec := f.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	rd := decode[web.Readiness](t, rec)
	require.False(t, rd.Ready)
	require.Contains(t, rd.Migrations, "1 pending")
	require.Equal(t, "ok", rd.Redis)
}

func TestReadyzWithRedisDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	dead := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	f := newFixture(t, func(c *web.Config) { c.RDB = dead })
	rec := f.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	rd := decode[web.Readiness](t, rec)
	require.Equal(t, "unreachable", rd.Redis)
	require.Equal(t, "ok", rd.PostgreSQL)
	require.Equal(t, http.StatusOK, f.do(t, http.MethodGet, "/healthz", nil).Code, "the process is still up")
}

// requireWindowsMatchOrders checks each live window figure against a
// direct query on orders over the same [from, to) interval it reports.
func requireWindowsMatchOrders(t *testing.T, ctx context.Context, env *testenv.Env, figures []window.Figure) {
	t.Helper()
	require.Len(t, figures, len(window.Spans))
	for i, f := range figures {
		// The hour is read over whole minutes, so it may start up to a
		// minute later than an hour before To.
		require.LessOrEqual(t, f.To.Sub(f.From), window.Spans[i], "window %s covers at most its span", f.Span)
		require.Greater(t, f.To.Sub(f.From), window.Spans[i]-time.Minute, "window %s covers nearly its span", f.Span)
		var n, cents int64
		require.NoError(t, env.PG.QueryRow(ctx, "SELECT count(*), coalesce(sum(total_amount_usd * 100), 0)::bigint FROM "+
			env.Tables.Orders()+" WHERE order_timestamp >= $1 AND order_timestamp < $2", f.From, f.To).Scan(&n, &cents))
		require.Equal(t, n, f.Orders, "orders in the last %s [%s, %s)", f.Span, f.From, f.To)
		require.Equal(t, cents, f.RevenueUSDCents, "revenue in the last %s [%s, %s)", f.Span, f.From, f.To)
	}
}

// TestStatsHaveEveryStatsJSONField checks that /api/stats is a superset
// of `redpg stats --json`, with the same values, and that its windows are
// the ones the workers keep, equal to a direct query on orders.
func TestStatsHaveEveryStatsJSONField(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := ctxFor(t)
	gen := f.run(t, ctx, 3000, generate.Config{Seed: 3, Duplicates: 0.1, Invalid: 0.05, Burst: true})
	require.NoError(t, f.p.RefreshViews(ctx))

	want, err := f.p.Stats(ctx)
	require.NoError(t, err)
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	var wantFields map[string]any
	require.NoError(t, json.Unmarshal(wantJSON, &wantFields))
	require.Contains(t, wantFields, "windows")
	require.Contains(t, wantFields, "workers_alive")

	rec := f.do(t, http.MethodGet, "/api/stats", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	for k, v := range wantFields {
		require.Contains(t, got, k)
		// The windows end at the second of the reading; checked below.
		if k != "taken_at" && k != "windows" {
			require.Equal(t, v, got[k], k)
		}
	}
	require.NotContains(t, got, "worker_leases", "workers come from workers_alive alone")
	st := decode[web.Stats](t, rec)
	require.Equal(t, "test-version", st.Version)
	require.Equal(t, int64(gen.Unique), st.ProductionRows)
	require.Positive(t, st.BatchesLastMinute)
	requireWindowsMatchOrders(t, ctx, f.env, st.Windows)
	spans := make([]string, len(st.Windows))
	for i, w := range st.Windows {
		spans[i] = w.Span
		require.Equal(t, want.Windows[i].Span, w.Span)
	}
	require.Equal(t, []string{"1m", "5m", "1h"}, spans)
	require.Equal(t, int64(gen.Unique), st.Windows[2].Orders, "burst orders are all in the last hour")

	views := decode[web.Views](t, f.do(t, http.MethodGet, "/api/views", nil))
	var zoneOrders int64
	for _, z := range views.ShippingZones {
		zoneOrders += z.Orders
	}
	require.Equal(t, int64(gen.Unique), zoneOrders)
	require.NotEmpty(t, views.SalesHourly)
	require.NotEmpty(t, views.TopProducts)
	require.LessOrEqual(t, len(views.TopProducts), 10)
	for i := 1; i < len(views.TopProducts); i++ {
		a, err := strconv.ParseFloat(views.TopProducts[i-1].RevenueUSD, 64)
		require.NoError(t, err)
		b, err := strconv.ParseFloat(views.TopProducts[i].RevenueUSD, 64)
		require.NoError(t, err)
		require.GreaterOrEqual(t, a, b, "top products by revenue, as numbers")
	}
	for i := 1; i < len(views.ShippingZones); i++ {
		a, _ := strconv.ParseFloat(views.ShippingZones[i-1].RevenueUSD, 64)
		b, _ := strconv.ParseFloat(views.ShippingZones[i].RevenueUSD, 64)
		require.GreaterOrEqual(t, a, b, "zones by revenue, as numbers")
	}
}

// TestStatsWindowsAreTheWorkersWindows records orders in the live windows
// (Redis) that are not in PostgreSQL: /api/stats must report them, as it
// reads the windows the workers keep, not orders.
func TestStatsWindowsAreTheWorkersWindows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := ctxFor(t)
	now := time.Now()
	require.NoError(t, f.p.Windows().Record(ctx, []window.Order{
		{ID: "o-1", Time: now.Add(-10 * time.Second), USDCents: 1234},
		{ID: "o-2", Time: now.Add(-3 * time.Minute), USDCents: 100},
		{ID: "o-3", Time: now.Add(-30 * time.Minute), USDCents: 1},
	}))
	st := decode[web.Stats](t, f.do(t, http.MethodGet, "/api/stats", nil))
	require.Len(t, st.Windows, 3)
	got := map[string][2]int64{}
	for _, w := range st.Windows {
		got[w.Span] = [2]int64{w.Orders, w.RevenueUSDCents}
	}
	require.Equal(t, map[string][2]int64{"1m": {1, 1234}, "5m": {2, 1334}, "1h": {3, 1335}}, got)
}

// TestStatsListWorkersWithTheirRegistration checks the workers table's
// source: each worker holding a lease, with the host and version it
// registered and its lease deadline.
func TestStatsListWorkersWithTheirRegistration(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := ctxFor(t)
	q := f.p.Queue()
	require.NoError(t, q.Register(ctx, queue.WorkerInfo{Host: "host-a", PID: 7, Version: "v9"}, "w-1"))
	require.NoError(t, q.Heartbeat(ctx, time.Hour, "w-1"))
	st := decode[web.Stats](t, f.do(t, http.MethodGet, "/api/stats", nil))
	require.Equal(t, int64(1), st.Workers)
	require.Len(t, st.WorkerList, 1)
	w := st.WorkerList[0]
	require.Equal(t, "w-1", w.ID)
	require.Equal(t, "host-a", w.Host)
	require.Equal(t, 7, w.PID)
	require.Equal(t, "v9", w.Version)
	require.WithinDuration(t, time.Now().Add(time.Hour), w.LeaseUntil, time.Minute)
}

// TestDeadLettersAreEscaped sends hostile payloads through the pipeline
// and checks that /api/dlq returns them as inert text.
func TestDeadLettersAreEscaped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := ctxFor(t)
	_, err := f.p.InitCache(ctx)
	require.NoError(t, err)
	hostile := [][]byte{
		[]byte(`<script>alert("x")</script>`),
		[]byte("{\"order_id\": \"<img src=x onerror=alert(1)>\"\xff\xfe"),
		[]byte("</pre><b>bold</b>\x00\x1b[31m"),
	}
	require.NoError(t, f.p.Push(ctx, hostile, nil))
	_, err = f.p.Run(ctx, pipeline.RunOptions{Workers: 1, UntilEmpty: true})
	require.NoError(t, err)

	rec := f.do(t, http.MethodGet, "/api/dlq?limit=2", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	raw := rec.Body.String()
	for _, bad := range []string{"<script", "<img", "</pre>", "<b>"} {
		require.NotContains(t, raw, bad, "markup must be escaped in the JSON")
	}
	require.Contains(t, raw, `\u003cscript\u003e`)
	page := decode[web.DeadLetters](t, rec)
	var total int64
	for _, n := range page.ByReason {
		total += n
	}
	require.Equal(t, int64(3), total)
	require.Len(t, page.Letters, 2)
	require.NotZero(t, page.NextAfter)
	rest := decode[web.DeadLetters](t, f.do(t, http.MethodGet, "/api/dlq?limit=2&after="+itoa(page.NextAfter), nil))
	require.Len(t, rest.Letters, 1)
	require.Zero(t, rest.NextAfter)

	payloads := map[string]bool{}
	for _, l := range append(page.Letters, rest.Letters...) {
		payloads[l.Payload] = true
	}
	for _, h := range hostile {
		require.True(t, payloads[web.Printable(h)], "payload %q is served as %q", h, web.Printable(h))
	}
	require.True(t, payloads["{\"order_id\": \"<img src=x onerror=alert(1)>\"\\xff\\xfe"], "invalid UTF-8 is written as \\xNN")

	newest := decode[web.DeadLetters](t, f.do(t, http.MethodGet, "/api/dlq?newest=1&limit=1", nil))
	require.Len(t, newest.Letters, 1)
	require.Equal(t, rest.Letters[0].ID, newest.Letters[0].ID)

	for _, q := range []string{"limit=0", "limit=abc", "limit=100000", "after=-1", "after=x"} {
		require.Equal(t, http.StatusBadRequest, f.do(t, http.MethodGet, "/api/dlq?"+q, nil).Code, q)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain {\"a\": 1}":  "plain {\"a\": 1}",
		"line\nnext\ttab":   "line\nnext\ttab",
		"bad \xff byte":     `bad \xff byte`,
		"nul\x00esc\x1b":    `nul\x00esc\x1b`,
		`back\slash`:        `back\\slash`,
		"del\x7f c1\u0085":  `del\x7f c1\xc2\x85`,
		"ünïcødé ✓ 日本":      "ünïcødé ✓ 日本",
		"<script>&amp;</b>": "<script>&amp;</b>",
	} {
		require.Equal(t, want, web.Printable([]byte(in)), "%q", in)
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "{}", "\xff\xfe", "a\\x00", "\x00\n\t\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := web.Printable(b)
		require.True(t, utf8Valid(out), "output must be valid UTF-8: %q", out)
		for _, r := range out {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
				t.Fatalf("control character %U left in %q", r, out)
			}
		}
		if utf8Valid(string(b)) && !strings.ContainsFunc(string(b), func(r rune) bool {
			return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\\'
		}) {
			require.Equal(t, string(b), out, "printable text passes through unchanged")
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestServeShutsDownWithTheContext(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- web.Serve(ctx, ln, f.h) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, "ok\n", string(body))
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
}
