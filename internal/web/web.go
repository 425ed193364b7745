// Package web serves redpg over HTTP: a dashboard, its JSON API, the
// Prometheus metrics and health checks. It only reads: no endpoint changes
// the pipeline's state. It listens on loopback unless told otherwise, and
// with a token set, everything but the health checks needs it.
//
// The dashboard is plain HTML, CSS and JavaScript embedded in the binary;
// it draws its charts itself and fetches nothing from the internet.
package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/redpg/redpg/internal/metrics"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/version"
)

// Defaults, quoted by the CLI's help.
const (
	// DefaultAddr is loopback: exposing the dashboard is a deliberate act.
	DefaultAddr = "127.0.0.1:8080"
	// DefaultRefresh is how often the dashboard fetches fresh figures.
	DefaultRefresh = 3 * time.Second
	// DefaultStatsTTL is how long one reading of the stats serves every
	// request, so many open dashboards cost the databases like one.
	DefaultStatsTTL = time.Second
	// DefaultRequestTimeout bounds the database work of one request.
	DefaultRequestTimeout = 10 * time.Second
)

//go:embed assets
var assets embed.FS

// Config configures the handler.
type Config struct {
	// Pipeline supplies the stats, live windows and workers. Required.
	Pipeline *pipeline.Pipeline
	// PG is a direct pool for views, dead letters and readiness. Required.
	PG *pgxpool.Pool
	// RDB is the Redis client, pinged by /readyz. Required.
	RDB redis.UniversalClient
	// Metrics serves /metrics. Defaults to a registry that only reads the
	// shared state (metrics.FromPipeline); pass the one workers report to.
	Metrics http.Handler
	// Token, when set, is required (as a bearer token, or as the password
	// of HTTP basic authentication, which browsers prompt for) by every
	// endpoint except /healthz and /readyz. Defaults to none.
	Token string
	// Version is shown on the dashboard. Defaults to version.String(), as
	// `redpg --version` and the workers' registrations say.
	Version string
	// Refresh is the dashboard's polling interval. Defaults to DefaultRefresh.
	Refresh time.Duration
	// StatsTTL is how long a stats reading is reused. Defaults to
	// DefaultStatsTTL.
	StatsTTL time.Duration
	// RequestTimeout bounds one request's queries. Defaults to
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives request failures. Defaults to discarding them.
	Logger *slog.Logger
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Metrics == nil && c.Pipeline != nil {
		c.Metrics = metrics.New(metrics.Config{Gauges: metrics.FromPipeline(c.Pipeline)}).Handler()
	}
	if c.Version == "" {
		c.Version = version.String()
	}
	if c.Refresh <= 0 {
		c.Refresh = DefaultRefresh
	}
	if c.StatsTTL <= 0 {
		c.StatsTTL = DefaultStatsTTL
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Pipeline == nil {
		errs = append(errs, errors.New("web: a pipeline is required"))
	}
	if c.PG == nil {
		errs = append(errs, errors.New("web: a PostgreSQL pool is required"))
	}
	if c.RDB == nil {
		errs = append(errs, errors.New("web: a Redis client is required"))
	}
	return errors.Join(errs...)
}

// server holds the handler's state.
type server struct {
	cfg    Config
	tables schema.Tables

	statsMu   sync.Mutex
	statsAt   time.Time
	statsBody []byte
}

// New returns the handler serving every endpoint.
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, tables: cfg.Pipeline.Config().Tables}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/stats", s.apiStats)
	mux.HandleFunc("GET /api/views", s.apiViews)
	mux.HandleFunc("GET /api/dlq", s.apiDLQ)
	mux.Handle("GET /metrics", cfg.Metrics)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	return secure(cfg.Token, mux), nil
}

// open are the paths that answer without the token: probes by
// orchestrators that hold no secrets, and which reveal nothing.
var open = map[string]bool{"/healthz": true, "/readyz": true}

// secure adds the security headers, refuses every method that could change
// state, and checks the token.
func secure(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: only GET and HEAD are served", http.StatusMethodNotAllowed)
			return
		}
		if token != "" && !open[r.URL.Path] {
			got := sha256.Sum256([]byte(presented(r)))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				h.Set("WWW-Authenticate", `Basic realm="redpg", charset="UTF-8"`)
				http.Error(w, "a token is required: Authorization: Bearer <REDPG_HTTP_TOKEN>", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// presented is the token a request carries: a bearer token, or the
// password of basic authentication (any user name), which lets a browser
// prompt for it.
func presented(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(auth, " "); ok {
		switch strings.ToLower(scheme) {
		case "bearer":
			return strings.TrimSpace(rest)
		case "basic":
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
			if err != nil {
				return ""
			}
			_, pw, _ := strings.Cut(string(raw), ":")
			return pw
		}
	}
	return ""
}
