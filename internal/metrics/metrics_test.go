package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/metrics"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/testenv"
	"github.com/redpg/redpg/internal/window"
)

// scrape fetches h's exposition in the text format and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	require.NoError(t, err, "the exposition must parse as Prometheus text format")
	return fams
}

// value returns the value of the family's metric whose labels include
// labels, failing if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "metric %s is missing", name)
	for _, m := range f.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("metric %s has no series with labels %v", name, labels)
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMetricsCountAWholeRun runs real workers over generated orders with
// duplicates and invalid ones, and checks that every counter in /metrics
// equals what the ledger and the dead-letter table recorded.
func TestMetricsCountAWholeRun(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var p *pipeline.Pipeline
	m := metrics.New(metrics.Config{Gauges: func(ctx context.Context) (metrics.Gauges, error) { return metrics.FromPipeline(p)(ctx) }})
	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables, BatchSize: 700, IdleWait: 50 * time.Millisecond,
		Timings: &pipeline.StageTimes{Observer: m}}, env.PG, nil, env.RDB)
	require.NoError(t, err)

	before := scrape(t, m.Handler())
	require.Equal(t, 1.0, value(t, before, "redpg_state_up"))
	require.Zero(t, value(t, before, "redpg_queue_depth"))

	gen, err := p.Generate(ctx, 5000, generate.Config{Seed: 5, Duplicates: 0.1, Invalid: 0.05}, nil)
	require.NoError(t, err)
	queued := scrape(t, m.Handler())
	require.Equal(t, float64(gen.Total), value(t, queued, "redpg_queue_depth"))
	require.Equal(t, float64(gen.Total), value(t, queued, "redpg_produced_total"))

	c, err := p.Run(ctx, pipeline.RunOptions{Workers: 2, UntilEmpty: true})
	require.NoError(t, err)

	fams := scrape(t, m.Handler())
	require.Equal(t, float64(gen.Total), value(t, fams, "redpg_messages_claimed_total"))
	require.Equal(t, float64(c.Received), value(t, fams, "redpg_messages_committed_total"))
	require.Equal(t, float64(gen.Unique), value(t, fams, "redpg_orders_promoted_total"))
	require.Equal(t, float64(gen.Duplicates), value(t, fams, "redpg_duplicates_total"))
	byReason, err := dlq.CountByReason(ctx, env.PG, env.Tables)
	require.NoError(t, err)
	require.NotEmpty(t, byReason)
	var letters float64
	for reason, n := range byReason {
		require.Equal(t, float64(n), value(t, fams, "redpg_dead_letters_total", "reason", reason), "dead letters %s", reason)
		letters += float64(n)
	}
	require.Equal(t, float64(gen.Invalid), letters)
	batches := value(t, fams, "redpg_batches_committed_total")
	require.GreaterOrEqual(t, batches, float64(gen.Total/700))
	for _, s := range pipeline.Steps {
		require.Equal(t, batches, value(t, fams, "redpg_batch_step_duration_seconds", "step", string(s)), "one %s observation per batch", s)
	}
	require.Positive(t, value(t, fams, "redpg_order_latency_seconds"))
	require.Contains(t, fams, "go_goroutines", "the Go runtime collector is registered")

	after := scrape(t, m.Handler())
	require.Zero(t, value(t, after, "redpg_queue_depth"))
	require.Zero(t, value(t, after, "redpg_in_flight_messages"))
	require.Zero(t, value(t, after, "redpg_workers_alive"))
	require.Equal(t, float64(gen.Unique), value(t, after, "redpg_dedup_window_ids"))
	require.Positive(t, value(t, after, "redpg_lookup_cache_entries"))
	require.Positive(t, value(t, after, "redpg_window_members", "window", "1h"), "generated orders fall within the last hour")
}

// TestMetricsReadTheLiveWindows checks that the window gauges are the
// windows the workers keep in Redis, by span.
func TestMetricsReadTheLiveWindows(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, p.Windows().Record(t.Context(), []window.Order{
		{ID: "a", Time: now.Add(-10 * time.Second), USDCents: 1},
		{ID: "b", Time: now.Add(-3 * time.Minute), USDCents: 1},
		{ID: "c", Time: now.Add(-30 * time.Minute), USDCents: 1},
	}))
	fams := scrape(t, metrics.New(metrics.Config{Gauges: metrics.FromPipeline(p)}).Handler())
	require.Equal(t, 1.0, value(t, fams, "redpg_window_members", "window", "1m"))
	require.Equal(t, 2.0, value(t, fams, "redpg_window_members", "window", "5m"))
	require.Equal(t, 3.0, value(t, fams, "redpg_window_members", "window", "1h"))
}

// TestMetricsReportUnreadableState checks that a failing Redis reading
// shows as redpg_state_up 0 instead of failing the scrape.
func TestMetricsReportUnreadableState(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{Gauges: func(context.Context) (metrics.Gauges, error) {
		return metrics.Gauges{}, context.DeadlineExceeded
	}})
	fams := scrape(t, m.Handler())
	require.Zero(t, value(t, fams, "redpg_state_up"))
	require.NotContains(t, fams, "redpg_queue_depth")
	require.Contains(t, fams, "redpg_orders_promoted_total")
}

func TestMetricsWindowsAreLabelled(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Config{Gauges: func(context.Context) (metrics.Gauges, error) {
		return metrics.Gauges{QueueDepth: 3, Windows: map[string]int64{"1m": 7, "60m": 70}}, nil
	}})
	fams := scrape(t, m.Handler())
	require.Equal(t, 3.0, value(t, fams, "redpg_queue_depth"))
	require.Equal(t, 7.0, value(t, fams, "redpg_window_members", "window", "1m"))
	require.Equal(t, 70.0, value(t, fams, "redpg_window_members", "window", "60m"))
}
