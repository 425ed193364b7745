// Package metrics exposes redpg to Prometheus. Worker activity arrives
// through pipeline.Observer, once per batch or step, and is counted in
// this process; the shared state in Redis (queue depth, in flight, window
// sizes) is read only when Prometheus scrapes, so an unscraped process
// pays nothing for it. No part of the pipeline imports this package.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redpg/redpg/internal/pipeline"
)

// DefaultScrapeTimeout bounds how long one scrape may spend reading the
// shared state.
const DefaultScrapeTimeout = 5 * time.Second

// Gauges is the shared state read at each scrape. Every process reports
// the same values for it, since it lives in Redis.
type Gauges struct {
	QueueDepth  int64
	InFlight    int64
	Quarantined int64
	Workers     int64 // workers holding a lease
	DedupWindow int64 // order ids in the de-dup window
	LookupCache int64 // entries in the current lookup snapshot
	Produced    int64 // messages ever enqueued
	// Windows holds the orders in each live time window, by its span
	// ("1m", "5m", "1h"), as `stats` reports them.
	Windows map[string]int64
}

// Config configures Metrics.
type Config struct {
	// Gauges, if set, is called at each scrape to read the shared state.
	// Defaults to nil: only this process's counters are exported.
	Gauges func(context.Context) (Gauges, error)
	// ScrapeTimeout bounds one call of Gauges. Defaults to
	// DefaultScrapeTimeout.
	ScrapeTimeout time.Duration
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.ScrapeTimeout <= 0 {
		c.ScrapeTimeout = DefaultScrapeTimeout
	}
	return c
}

// Metrics is a registry of redpg's metrics. It implements pipeline.Observer.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	claimed     prometheus.Counter
	received    prometheus.Counter
	promoted    prometheus.Counter
	duplicates  prometheus.Counter
	batches     prometheus.Counter
	deadLetters *prometheus.CounterVec
	steps       map[pipeline.Step]prometheus.Observer
	latency     prometheus.Histogram
}

var _ pipeline.Observer = (*Metrics)(nil)

// New builds the registry with redpg's metrics, Go's runtime metrics and
// the process's.
func New(cfg Config) *Metrics {
	cfg = cfg.WithDefaults()
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "redpg", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{cfg: cfg, reg: reg,
		claimed:    f("messages_claimed_total", "Messages this process's workers claimed from the queue (a redelivered batch counts again)."),
		received:   f("messages_committed_total", "Messages in batches this process's workers committed."),
		promoted:   f("orders_promoted_total", "Orders this process's workers promoted into orders."),
		duplicates: f("duplicates_total", "Messages this process's workers counted as duplicates."),
		batches:    f("batches_committed_total", "Batches this process's workers committed."),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "redpg", Name: "dead_letters_total",
			Help: "Messages this process's workers dead-lettered, by reason code."}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "redpg", Name: "order_latency_seconds",
			Help: "From an order's own order_timestamp to the commit of the batch that brought it to PostgreSQL: " +
				"includes the producer's delay, so synthetic orders with spread timestamps read as their spread.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200}}),
		steps: map[pipeline.Step]prometheus.Observer{},
	}
	stepVec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "redpg", Name: "batch_step_duration_seconds",
		Help:    "Time one batch spent in each step (claim, prepare, stage, promote, commit, ack).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{"step"})
	for _, s := range pipeline.Steps {
		m.steps[s] = stepVec.WithLabelValues(string(s)) // resolved once, not per batch
	}
	reg.MustRegister(m.deadLetters, m.latency, stepVec, sharedState{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in Prometheus's exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the underlying registry, for tests and for mounting more
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Claimed implements pipeline.Observer.
func (m *Metrics) Claimed(n int) { m.claimed.Add(float64(n)) }

// Step implements pipeline.Observer.
func (m *Metrics) Step(s pipeline.Step, d time.Duration) {
	if o, ok := m.steps[s]; ok {
		o.Observe(d.Seconds())
	}
}

// Durable implements pipeline.Observer.
func (m *Metrics) Durable(b pipeline.DurableBatch) {
	m.batches.Inc()
	m.received.Add(float64(b.Counts.Received))
	m.promoted.Add(float64(b.Counts.Promoted))
	m.duplicates.Add(float64(b.Counts.Duplicates))
	for reason, n := range b.RejectedBy {
		m.deadLetters.WithLabelValues(reason).Add(float64(n))
	}
	if b.OrderTimes == nil {
		return
	}
	for ts := range b.OrderTimes {
		m.latency.Observe(max(b.At.Sub(ts).Seconds(), 0))
	}
}

// sharedState reads Gauges at scrape time.
type sharedState struct{ m *Metrics }

var (
	descUp          = prometheus.NewDesc("redpg_state_up", "1 if the last scrape could read the shared state in Redis, else 0.", nil, nil)
	descQueueDepth  = prometheus.NewDesc("redpg_queue_depth", "Messages waiting in the ingestion list.", nil, nil)
	descInFlight    = prometheus.NewDesc("redpg_in_flight_messages", "Messages claimed by workers and not yet acknowledged.", nil, nil)
	descQuarantined = prometheus.NewDesc("redpg_quarantined_messages", "Messages waiting to be dead-lettered undecoded.", nil, nil)
	descWorkers     = prometheus.NewDesc("redpg_workers_alive", "Workers (in every process) holding a lease.", nil, nil)
	descDedup       = prometheus.NewDesc("redpg_dedup_window_ids", "Order ids in the de-dup window.", nil, nil)
	descLookup      = prometheus.NewDesc("redpg_lookup_cache_entries", "Entries in the current lookup snapshot.", nil, nil)
	descProduced    = prometheus.NewDesc("redpg_produced_total", "Messages redpg's own producers enqueued (the Redis counter); others' are counted when claimed.", nil, nil)
	descWindow      = prometheus.NewDesc("redpg_window_members", "Promoted orders whose order time falls in a live time window (last 1m, 5m, 1h).", []string{"window"}, nil)
)

func (s sharedState) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descQueueDepth, descInFlight, descQuarantined, descWorkers, descDedup, descLookup, descProduced, descWindow} {
		ch <- d
	}
}

func (s sharedState) Collect(ch chan<- prometheus.Metric) {
	read := s.m.cfg.Gauges
	if read == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.m.cfg.ScrapeTimeout)
	defer cancel()
	g, err := read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(descQueueDepth, g.QueueDepth)
	gauge(descInFlight, g.InFlight)
	gauge(descQuarantined, g.Quarantined)
	gauge(descWorkers, g.Workers)
	gauge(descDedup, g.DedupWindow)
	gauge(descLookup, g.LookupCache)
	ch <- prometheus.MustNewConstMetric(descProduced, prometheus.CounterValue, float64(g.Produced))
	for name, n := range g.Windows {
		ch <- prometheus.MustNewConstMetric(descWindow, prometheus.GaugeValue, float64(n), name)
	}
}
