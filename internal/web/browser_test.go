package web_test

import (
	"context"
	"fmt"
	"html"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/web"
	"github.com/redpg/redpg/internal/window"
)

// chromium finds a headless-capable Chromium. CI installs the Debian
// packages chromium and chromium-driver (scripts/services.sh); there a
// missing browser fails the test, elsewhere it skips saying what to
// install. REDPG_CHROMIUM overrides the search.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REDPG_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found: the browser test needs the Debian package chromium (scripts/services.sh installs it)")
	}
	t.Skip("no Chromium found; install it (apt-get install chromium chromium-driver, or `make services`) to run the browser test")
	return ""
}

// headless runs Chromium on url with extra flags and returns its stdout.
// The virtual time budget lets the page's timers and fetches run for that
// long (in page time) before Chromium acts, without the test sleeping.
func headless(t *testing.T, ctx context.Context, bin, url string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-extensions", "--disable-background-networking", "--user-data-dir=" + dir,
		"--virtual-time-budget=20000"}, extra...)
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "chromium failed: %s", stderr.String())
	return string(out)
}

// node is one element of the dumped DOM: its tag and attributes.
type node struct {
	tag   string
	attrs map[string]string
}

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*/?>`)
	attrRE = regexp.MustCompile(`([^\s=>]+)(?:="([^"]*)")?`)
)

// nodes lists the elements of a serialised DOM. Chromium writes every
// attribute value double-quoted and escaped, which is all this needs.
func nodes(dom string) []node {
	var out []node
	for _, m := range tagRE.FindAllStringSubmatch(dom, -1) {
		n := node{tag: strings.ToLower(m[1]), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			n.attrs[a[1]] = html.UnescapeString(a[2])
		}
		out = append(out, n)
	}
	return out
}

// with returns the nodes having attribute key (and value, if given).
func with(ns []node, key string, value ...string) []node {
	var out []node
	for _, n := range ns {
		v, ok := n.attrs[key]
		if ok && (len(value) == 0 || v == value[0]) {
			out = append(out, n)
		}
	}
	return out
}

func byID(t *testing.T, ns []node, id string) node {
	t.Helper()
	found := with(ns, "id", id)
	require.Len(t, found, 1, "element #%s", id)
	return found[0]
}

// TestDashboardInBrowser runs workers over generated orders, serves the
// dashboard on a real port, lets headless Chromium load it and run its
// JavaScript, and checks that the figures the charts show are the ones a
// direct query on PostgreSQL gives: not just that the page loads.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	f := newFixture(t, func(c *web.Config) { c.Refresh = 2 * time.Second })
	ctx := ctxFor(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- web.Serve(srvCtx, ln, f.h) }()
	t.Cleanup(func() {
		stopSrv()
		if err := <-served; err != nil {
			t.Logf("server: %v", err)
		}
	})

	// Orders flow through a real pipeline: workers run throughout, and
	// the producer pushes while they work.
	workCtx, stopWork := context.WithCancel(ctx)
	worked := make(chan error, 1)
	go func() {
		_, err := f.p.Run(workCtx, pipeline.RunOptions{Workers: 2})
		worked <- err
	}()
	t.Cleanup(func() {
		stopWork()
		if err := <-worked; err != nil {
			t.Logf("workers: %v", err)
		}
	})
	_, err = f.p.InitCache(ctx)
	require.NoError(t, err)
	gen, err := f.p.Generate(ctx, 4000, generate.Config{Seed: 7, Duplicates: 0.08, Invalid: 0.04, Burst: true}, nil)
	require.NoError(t, err)
	drained := func(promoted, rejected int64) func() bool {
		return func() bool {
			s, err := f.p.Stats(ctx)
			return err == nil && s.QueueDepth == 0 && s.Processing == 0 && s.ProductionRows == promoted && s.RejectedRows == rejected
		}
	}
	require.Eventually(t, drained(int64(gen.Unique), int64(gen.Invalid)), time.Minute, 50*time.Millisecond)
	// A hostile payload, last, so it is the newest dead letter shown.
	hostile := `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`
	require.NoError(t, f.p.Push(ctx, [][]byte{[]byte(hostile)}, nil))
	require.Eventually(t, drained(int64(gen.Unique), int64(gen.Invalid)+1), time.Minute, 50*time.Millisecond)
	require.NoError(t, f.p.RefreshViews(ctx))

	url := "http://" + ln.Addr().String() + "/"
	dom := headless(t, ctx, bin, url, "--dump-dom")
	if shot := os.Getenv("REDPG_DASHBOARD_SCREENSHOT"); shot != "" {
		headless(t, ctx, bin, url, "--screenshot="+shot, "--window-size=1280,1900", "--hide-scrollbars")
	}
	ns := nodes(dom)
	body := with(ns, "data-ready", "1")
	require.Len(t, body, 1, "the page fetched and drew every API response:\n%.3000s", dom)
	require.Contains(t, dom, "<title>redpg dashboard</title>", "no payload script ran")
	require.Empty(t, with(ns, "onerror"), "payload markup must never become elements")
	require.Contains(t, dom, html.EscapeString(`<img src=x onerror=`), "the payload is shown as text")

	q := func(sql string, args ...any) int64 {
		var n int64
		require.NoError(t, f.env.PG.QueryRow(ctx, sql, args...).Scan(&n), sql)
		return n
	}
	tb := f.env.Tables
	kpi := func(name string) string { return byID(t, ns, "kpi-"+name).attrs["data-value"] }
	require.Equal(t, strconv.FormatInt(q("SELECT count(*) FROM "+tb.Orders()), 10), kpi("production_rows"))
	require.Equal(t, strconv.FormatInt(q("SELECT count(*) FROM "+tb.Rejected()), 10), kpi("rejected_rows"))
	require.Equal(t, strconv.FormatInt(q("SELECT coalesce(sum(duplicates), 0) FROM "+tb.Batches()), 10), kpi("duplicates_total"))
	require.Equal(t, strconv.Itoa(gen.Total+1), kpi("produced_total"))
	require.Equal(t, "0", kpi("queue_depth"))
	require.Equal(t, "0", byID(t, ns, "queue-latest").attrs["data-value"])

	// Staging vs production.
	require.Equal(t, "0", with(ns, "data-table", "staging")[0].attrs["data-count"])
	require.Equal(t, kpi("production_rows"), with(ns, "data-table", "production")[0].attrs["data-count"])

	// Live windows: each bar's figures equal a direct query on orders
	// over the [from, to) interval the bar reports.
	var figures []window.Figure
	for _, span := range []string{"1m", "5m", "1h"} {
		got := with(byIDChildren(t, dom, "chart-windows"), "data-window", span)
		require.Len(t, got, 1, "window %s", span)
		a := got[0].attrs
		var fig window.Figure
		fig.Span = span
		fig.From, err = time.Parse(time.RFC3339, a["data-from"])
		require.NoError(t, err)
		fig.To, err = time.Parse(time.RFC3339, a["data-to"])
		require.NoError(t, err)
		fig.Orders, err = strconv.ParseInt(a["data-orders"], 10, 64)
		require.NoError(t, err)
		fig.RevenueUSDCents, err = strconv.ParseInt(a["data-revenue-cents"], 10, 64)
		require.NoError(t, err)
		figures = append(figures, fig)
	}
	requireWindowsMatchOrders(t, ctx, f.env, figures)
	require.Equal(t, int64(gen.Unique), figures[2].Orders, "burst orders all carry the generation instant, within the hour")

	// Dead letters and duplicates by reason.
	rows, err := f.env.PG.Query(ctx, "SELECT reason, count(*) FROM "+tb.Rejected()+" GROUP BY reason")
	require.NoError(t, err)
	want := map[string]string{}
	for rows.Next() {
		var reason string
		var n int64
		require.NoError(t, rows.Scan(&reason, &n))
		want[reason] = strconv.FormatInt(n, 10)
	}
	require.NoError(t, rows.Err())
	got := map[string]string{}
	for _, n := range with(byIDChildren(t, dom, "chart-reasons"), "data-reason") {
		got[n.attrs["data-reason"]] = n.attrs["data-count"]
	}
	require.Equal(t, want, got, "dead letters by reason")
	require.NotEmpty(t, with(ns, "data-kind", "duplicates"))
	require.Equal(t, kpi("duplicates_total"), with(ns, "data-kind", "duplicates")[0].attrs["data-count"])

	// Revenue by shipping zone: every row, exactly.
	requireRows(t, ctx, f, "SELECT shipping_zone || '|' || country, count(*)::text || '|' || sum(total_amount_usd)::text FROM "+tb.Orders()+" GROUP BY 1",
		with(byIDChildren(t, dom, "chart-zones"), "data-zone"), func(n node) (string, string) {
			return n.attrs["data-zone"] + "|" + n.attrs["data-country"], n.attrs["data-orders"] + "|" + n.attrs["data-revenue"]
		})
	// Top products today: the ten best by revenue, exactly.
	requireRows(t, ctx, f, "SELECT product_id, count(*)::text || '|' || sum(total_amount_usd)::text FROM "+tb.Orders()+
		" WHERE order_timestamp >= date_trunc('day', now()) GROUP BY 1 ORDER BY sum(total_amount_usd) DESC, product_id LIMIT 10",
		with(byIDChildren(t, dom, "chart-top-products"), "data-product-id"), func(n node) (string, string) {
			return n.attrs["data-product-id"], n.attrs["data-orders"] + "|" + n.attrs["data-revenue"]
		})
	// Revenue per hour by category: every bar segment.
	requireRows(t, ctx, f, "SELECT to_char(date_trunc('hour', order_timestamp) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24') || '|' || category, "+
		"count(*)::text || '|' || sum(total_amount_usd)::text FROM "+tb.Orders()+" GROUP BY 1",
		with(ns, "data-category"), func(n node) (string, string) {
			hour, err := time.Parse(time.RFC3339, n.attrs["data-hour"])
			require.NoError(t, err)
			return hour.UTC().Format("2006-01-02T15") + "|" + n.attrs["data-category"], n.attrs["data-orders"] + "|" + n.attrs["data-revenue"]
		})

	// Workers with their heartbeat: both hold a live lease, and show the
	// host and version they registered.
	host, err := os.Hostname()
	require.NoError(t, err)
	workers := with(byIDChildren(t, dom, "workers"), "data-worker")
	require.Len(t, workers, 2)
	for _, w := range workers {
		left, err := strconv.ParseFloat(w.attrs["data-lease-seconds"], 64)
		require.NoError(t, err)
		require.Positive(t, left, "worker %s's lease is alive", w.attrs["data-worker"])
		require.Equal(t, host, w.attrs["data-host"])
		require.Equal(t, workerVersion, w.attrs["data-version"])
		_, err = time.Parse(time.RFC3339, w.attrs["data-lease-until"])
		require.NoError(t, err)
	}
	// The newest dead letter is the hostile one.
	letters := with(ns, "data-id")
	require.NotEmpty(t, letters)
	require.Equal(t, strconv.FormatInt(q("SELECT max(id) FROM "+tb.Rejected()), 10), letters[0].attrs["data-id"])
	require.Contains(t, byID(t, ns, "version").tag, "span")
	require.Contains(t, dom, `id="version">test-version<`)
}

// byIDChildren returns the nodes inside the element with the given id.
func byIDChildren(t *testing.T, dom, id string) []node {
	t.Helper()
	start := strings.Index(dom, `id="`+id+`"`)
	require.GreaterOrEqual(t, start, 0, "element #%s", id)
	rest := dom[start:]
	end := strings.Index(rest, "</section>")
	require.Positive(t, end)
	return nodes("<x " + rest[:end])
}

// requireRows checks that the chart's nodes show exactly the rows sql
// returns, as key → value strings.
func requireRows(t *testing.T, ctx context.Context, f *fixture, sql string, chart []node, kv func(node) (string, string)) {
	t.Helper()
	rows, err := f.env.PG.Query(ctx, sql)
	require.NoError(t, err)
	want := map[string]string{}
	for rows.Next() {
		var k, v string
		require.NoError(t, rows.Scan(&k, &v))
		want[k] = v
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, want, sql)
	got := map[string]string{}
	for _, n := range chart {
		k, v := kv(n)
		got[k] = v
	}
	require.Equal(t, want, got, fmt.Sprintf("chart versus %s", sql))
}
