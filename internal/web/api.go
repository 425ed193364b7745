package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/redpg/redpg/internal/dlq"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
)

// Stats is /api/stats: every field of `redpg stats --json` (the live
// windows and the workers holding a lease among them), plus what the
// dashboard shows beside them.
type Stats struct {
	pipeline.Stats
	// BatchesLastMinute counts batches committed in the last minute, in
	// every process.
	BatchesLastMinute int64 `json:"batches_last_minute"`
	// Version is the serving binary's version.
	Version string `json:"version"`
}

func (s *server) apiStats(w http.ResponseWriter, r *http.Request) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.statsBody == nil || time.Since(s.statsAt) >= s.cfg.StatsTTL {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		st, err := s.readStats(ctx)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		body, err := json.Marshal(st)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.statsBody, s.statsAt = body, time.Now()
	}
	writeJSONBytes(w, http.StatusOK, s.statsBody)
}

func (s *server) readStats(ctx context.Context) (Stats, error) {
	var st Stats
	var err error
	if st.Stats, err = s.cfg.Pipeline.Stats(ctx); err != nil {
		return st, err
	}
	err = s.cfg.PG.QueryRow(ctx, "SELECT count(*) FROM "+s.tables.Batches()+
		" WHERE status = 'committed' AND decided_at > now() - interval '1 minute'").Scan(&st.BatchesLastMinute)
	if err != nil {
		return st, fmt.Errorf("batch rate: %w", err)
	}
	st.Version = s.cfg.Version
	return st, nil
}

// Views is /api/views: what the materialized views hold for the charts.
// Money is decimal text, exact to the cent.
type Views struct {
	SalesHourly   []SalesHour   `json:"sales_hourly"`
	TopProducts   []ProductDay  `json:"top_products_today"`
	ShippingZones []ZoneRevenue `json:"shipping_zones"`
}

// SalesHour is one row of sales_hourly.
type SalesHour struct {
	Hour       time.Time `json:"hour"`
	Category   string    `json:"category"`
	Orders     int64     `json:"order_count"`
	RevenueUSD string    `json:"total_revenue_usd"`
}

// ProductDay is one row of product_performance_daily.
type ProductDay struct {
	ProductID   string `json:"product_id"`
	ProductName string `json:"product_name"`
	Category    string `json:"category"`
	Orders      int64  `json:"order_count"`
	Units       int64  `json:"units_sold"`
	RevenueUSD  string `json:"total_revenue_usd"`
}

// ZoneRevenue is one row of shipping_zone_stats.
type ZoneRevenue struct {
	Zone       string `json:"shipping_zone"`
	Country    string `json:"country"`
	Orders     int64  `json:"order_count"`
	RevenueUSD string `json:"total_revenue_usd"`
}

// Chart sizes: enough to read, bounded so a page stays small.
const (
	salesHours  = 24
	topProducts = 10
	maxZones    = 50
)

func (s *server) apiViews(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	v, err := readViews(ctx, s.cfg.PG, s.tables)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// readViews reads the three views. "Today" and the hours are the
// database's own clock and time zone, as the views were built with. Money
// is selected as text, so ORDER BY names the view's numeric column (v.)
// rather than the text output column of the same name.
func readViews(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, t schema.Tables) (Views, error) {
	var v Views
	rows, err := db.Query(ctx, "SELECT hour, category, order_count, total_revenue_usd::text FROM "+t.View("sales_hourly")+
		" WHERE hour > now() - make_interval(hours => $1) ORDER BY hour, category", salesHours)
	if err == nil {
		v.SalesHourly, err = pgx.CollectRows(rows, pgx.RowToStructByPos[SalesHour])
	}
	if err != nil {
		return v, fmt.Errorf("read sales_hourly: %w", err)
	}
	rows, err = db.Query(ctx, "SELECT product_id, product_name, category, order_count, units_sold, total_revenue_usd::text FROM "+
		t.View("product_performance_daily")+" v WHERE day = date_trunc('day', now()) ORDER BY v.total_revenue_usd DESC, product_id LIMIT $1", topProducts)
	if err == nil {
		v.TopProducts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ProductDay])
	}
	if err != nil {
		return v, fmt.Errorf("read product_performance_daily: %w", err)
	}
	rows, err = db.Query(ctx, "SELECT shipping_zone, country, order_count, total_revenue_usd::text FROM "+
		t.View("shipping_zone_stats")+" v ORDER BY v.total_revenue_usd DESC, shipping_zone, country LIMIT $1", maxZones)
	if err == nil {
		v.ShippingZones, err = pgx.CollectRows(rows, pgx.RowToStructByPos[ZoneRevenue])
	}
	if err != nil {
		return v, fmt.Errorf("read shipping_zone_stats: %w", err)
	}
	return v, nil
}

// DeadLetters is /api/dlq.
type DeadLetters struct {
	ByReason map[string]int64 `json:"by_reason"`
	Letters  []DeadLetter     `json:"letters"`
	// NextAfter is the after= value for the next page; 0 when this page
	// is the last.
	// Always 0 with newest=1, which returns the newest letters first.
	NextAfter int64 `json:"next_after"`
}

// DeadLetter is one sample. Payload is text with every byte that is not
// printable UTF-8 written as \xNN, cut at maxPayload bytes: data to be
// shown as text, never markup.
type DeadLetter struct {
	ID               int64     `json:"id"`
	OrderID          string    `json:"order_id"`
	Reason           string    `json:"reason"`
	Detail           string    `json:"detail"`
	BatchID          string    `json:"batch_id"`
	RejectedAt       time.Time `json:"rejected_at"`
	Payload          string    `json:"payload"`
	PayloadBytes     int       `json:"payload_bytes"`
	PayloadTruncated bool      `json:"payload_truncated"`
}

// Page sizes of /api/dlq.
const (
	defaultDLQLimit = 20
	maxDLQLimit     = 200
	maxPayload      = 2048
)

func (s *server) apiDLQ(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, after := defaultDLQLimit, int64(0)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDLQLimit {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("limit must be 1 to %d", maxDLQLimit)})
			return
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "after must be a dead letter id"})
			return
		}
		after = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	counts, err := dlq.CountByReason(ctx, s.cfg.PG, s.tables)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := dlq.Filter{Reason: q.Get("reason"), Limit: limit + 1}
	var sample []dlq.Sampled
	if q.Get("newest") != "" {
		f.Limit = limit
		sample, err = dlq.Latest(ctx, s.cfg.PG, s.tables, f, maxPayload)
	} else {
		sample, err = dlq.Sample(ctx, s.cfg.PG, s.tables, f, after, maxPayload)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := DeadLetters{ByReason: counts, Letters: []DeadLetter{}}
	if len(sample) > limit {
		sample = sample[:limit]
		out.NextAfter = sample[limit-1].ID
	}
	for _, l := range sample {
		out.Letters = append(out.Letters, DeadLetter{ID: l.ID, OrderID: l.OrderID, Reason: l.Reason, Detail: l.Detail,
			BatchID: l.BatchID, RejectedAt: l.RejectedAt, Payload: Printable(l.Payload),
			PayloadBytes: l.PayloadSize, PayloadTruncated: l.PayloadSize > len(l.Payload)})
	}
	writeJSON(w, http.StatusOK, out)
}

// Printable renders bytes as text: printable UTF-8 and newlines and tabs
// as they are, a backslash as \\, and every other byte as \xNN, so that
// any payload, however hostile or binary, reads unambiguously.
func Printable(b []byte) string {
	var out bytes.Buffer
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&out, `\x%02x`, b[0])
		case r == '\\':
			out.WriteString(`\\`)
		case r == '\n' || r == '\t' || (r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0)):
			out.Write(b[:n])
		default:
			for _, c := range b[:n] {
				fmt.Fprintf(&out, `\x%02x`, c)
			}
		}
		b = b[n:]
	}
	return out.String()
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Readiness is /readyz: one entry per check, "ok" or what is wrong.
type Readiness struct {
	Ready      bool   `json:"ready"`
	Redis      string `json:"redis"`
	PostgreSQL string `json:"postgresql"`
	Migrations string `json:"migrations"`
}

// readyTimeout bounds the readiness checks, which probes call often.
const readyTimeout = 3 * time.Second

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	rd := Readiness{Redis: "ok", PostgreSQL: "ok", Migrations: "ok"}
	if err := s.cfg.RDB.Ping(ctx).Err(); err != nil {
		rd.Redis = "unreachable"
		s.cfg.Logger.Warn("readyz: Redis", "err", err)
	}
	if err := s.cfg.PG.Ping(ctx); err != nil {
		rd.PostgreSQL, rd.Migrations = "unreachable", "unknown"
		s.cfg.Logger.Warn("readyz: PostgreSQL", "err", err)
	} else if pending, err := schema.Pending(ctx, s.cfg.PG, s.tables.Schema); err != nil {
		rd.Migrations = "unknown"
		s.cfg.Logger.Warn("readyz: migrations", "err", err)
	} else if len(pending) > 0 {
		rd.Migrations = fmt.Sprintf("%d pending (run `redpg migrate`)", len(pending))
	}
	rd.Ready = rd.Redis == "ok" && rd.PostgreSQL == "ok" && rd.Migrations == "ok"
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// index serves the dashboard page with its settings filled in.
func (s *server) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := indexTemplate.Execute(w, map[string]any{"Version": s.cfg.Version, "RefreshMS": s.cfg.Refresh.Milliseconds()})
	if err != nil {
		s.cfg.Logger.Warn("render dashboard", "err", err)
	}
}

var indexTemplate = template.Must(template.ParseFS(assets, "assets/index.html"))

// fail answers 503 with a short message; the details go to the log,
// since errors may name servers and users.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.cfg.Logger.Warn("request failed", "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot read the pipeline's state; see the server's log"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v) // escapes <, > and & as \u003c, \u003e, \u0026
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	writeJSONBytes(w, code, body)
}

func writeJSONBytes(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
