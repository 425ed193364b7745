package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/service"
	"github.com/redpg/redpg/internal/testenv"
)

// syncBuffer collects log output written from several goroutines.
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

// running is a service started in-process for one test.
type running struct {
	env  *testenv.Env
	pipe *pipeline.Pipeline
	svc  *service.Service
	logs *syncBuffer
	stop context.CancelFunc
	done chan error
}

// start runs a service on a fresh environment until the test ends.
func start(t *testing.T, cfg service.Config) *running {
	t.Helper()
	env := testenv.New(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables, BatchSize: 100, IdleWait: 100 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, Logger: log}, env.PG, nil, env.RDB)
	require.NoError(t, err)
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	if cfg.LeaderPoll == 0 {
		cfg.LeaderPoll = 100 * time.Millisecond
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 200 * time.Millisecond
	}
	cfg.Logger = log
	svc, err := service.New(cfg, p, env.PG, env.RDB)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{env: env, pipe: p, svc: svc, logs: logs, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Logf("service: %v", err)
		}
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	testenv.WaitFor(t, 30*time.Second, "the service to be elected leader", svc.Leader)
	return r
}

// viewsCount is the number of orders every view counts, or -1 while they
// disagree (a refresh in progress has done some of them).
func viewsCount(t *testing.T, env *testenv.Env) int64 {
	n := int64(-2)
	for _, v := range schema.Views {
		m := env.Count(t, "SELECT coalesce(sum(order_count), 0)::bigint FROM "+env.Tables.View(v))
		if n != -2 && m != n {
			return -1
		}
		n = m
	}
	return n
}

func ordersCount(t *testing.T, env *testenv.Env) int64 {
	return env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders())
}

func TestServeBringsOrdersIntoFreshViewsAndWindows(t *testing.T) {
	t.Parallel()
	r := start(t, service.Config{RefreshInterval: time.Second, RefreshFallback: time.Hour})
	ctx := t.Context()
	env := r.env

	gen, err := r.pipe.Generate(ctx, 2000, generate.Config{Duplicates: 0.05, Invalid: 0.02}, nil)
	require.NoError(t, err)
	// No process, no promote: the service does both.
	testenv.WaitFor(t, time.Minute, "every valid order in orders", func() bool { return ordersCount(t, env) == int64(gen.Unique) })
	testenv.WaitFor(t, time.Minute, "every order in the views", func() bool { return viewsCount(t, env) == int64(gen.Unique) })
	env.RequireViewsMatchOrders(t)
	// 20 batches promoted within a few seconds cost a handful of refreshes,
	// not one each: at most one per RefreshInterval.
	require.Less(t, r.svc.Refreshes(), int64(20))

	s, err := r.svc.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(gen.Unique), s.ProductionRows)
	require.NotEmpty(t, s.Leader, "stats name the leader")
	for _, f := range s.Windows {
		var n, cents int64
		require.NoError(t, env.PG.QueryRow(ctx, "SELECT count(*), coalesce(sum(total_amount_usd * 100), 0)::bigint FROM "+
			env.Tables.Orders()+" WHERE order_timestamp >= $1 AND order_timestamp < $2", f.From, f.To).Scan(&n, &cents))
		require.Equal(t, n, f.Orders, "orders in the last %s", f.Span)
		require.Equal(t, cents, f.RevenueUSDCents, "revenue in the last %s", f.Span)
	}
	require.Positive(t, s.Windows[2].Orders)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(b), `"windows":[{"span":"1m"`)
}

func TestRefresherRefreshesOnlyWhenSomethingChanged(t *testing.T) {
	t.Parallel()
	// A fallback tick this short would refresh constantly if it did not
	// check for a change first.
	r := start(t, service.Config{RefreshInterval: 50 * time.Millisecond, RefreshFallback: 50 * time.Millisecond})
	env := r.env
	ctx := t.Context()
	gen, err := r.pipe.Generate(ctx, 300, generate.Config{}, nil)
	require.NoError(t, err)
	testenv.WaitFor(t, time.Minute, "the orders in the views", func() bool { return viewsCount(t, env) == int64(gen.Unique) })
	time.Sleep(300 * time.Millisecond) // the refresh that got them there is done
	before := r.svc.Refreshes()
	time.Sleep(time.Second)
	require.Equal(t, before, r.svc.Refreshes(), "no refresh while nothing changes")

	// A promotion whose notice was lost: the fallback tick finds it by the
	// promotions counter.
	conn, err := env.PG.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TEMP TABLE lost ON COMMIT DROP AS SELECT * FROM %s LIMIT 3;
			UPDATE lost SET order_id = 'lost-' || order_id; INSERT INTO %[1]s SELECT * FROM lost`, env.Tables.Orders()))
		return err
	}))
	require.NoError(t, env.RDB.Incr(ctx, env.Keys.Promotions()).Err())
	testenv.WaitFor(t, 30*time.Second, "the fallback tick to refresh", func() bool { return viewsCount(t, env) == int64(gen.Unique)+3 })
}

func TestLookupChangeReachesWorkersWithoutRestart(t *testing.T) {
	t.Parallel()
	r := start(t, service.Config{})
	env := r.env
	ctx := t.Context()
	order := func(id, product string) []byte {
		return fmt.Appendf(nil, `{"order_id":%q,"customer_id":"c-1","product_id":%q,"quantity":1,"unit_price":10.00,"currency":"USD","zip_code":"10001","order_timestamp":%q}`,
			id, product, time.Now().UTC().Format(time.RFC3339))
	}
	var product string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_id FROM "+env.Tables.Products()+" ORDER BY product_id LIMIT 1").Scan(&product))

	// An order for a product the catalogue lacks becomes a dead letter.
	require.NoError(t, r.pipe.Push(ctx, [][]byte{order("o-unknown", "P-NEW")}, nil))
	testenv.WaitFor(t, 30*time.Second, "the dead letter", func() bool {
		return env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected()+" WHERE reason = 'unknown_product'") == 1
	})
	// A worker has loaded the snapshot; change the product's name.
	require.NoError(t, r.pipe.Push(ctx, [][]byte{order("o-before", product)}, nil))
	testenv.WaitFor(t, 30*time.Second, "the first order", func() bool {
		return env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE order_id = 'o-before'") == 1
	})
	version := func() int64 { v, _ := env.RDB.Get(ctx, env.Keys.LookupVersion()).Int64(); return v }
	before := version()
	_, err := env.PG.Exec(ctx, "UPDATE "+env.Tables.Products()+" SET product_name = 'Renamed by the test' WHERE product_id = $1", product)
	require.NoError(t, err)
	_, err = env.PG.Exec(ctx, "INSERT INTO "+env.Tables.Products()+" (product_id, product_name, category, base_price) VALUES ('P-NEW', 'New', 'Books', 10)")
	require.NoError(t, err)
	testenv.WaitFor(t, 30*time.Second, "a new lookup snapshot", func() bool { return version() != before })

	// The next batch uses it: the snapshot's name wins over the table's, so
	// an old snapshot would have written the old name.
	require.NoError(t, r.pipe.Push(ctx, [][]byte{order("o-after", product)}, nil))
	testenv.WaitFor(t, 30*time.Second, "the order after the change", func() bool {
		return env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()+" WHERE order_id = 'o-after'") == 1
	})
	var name string
	require.NoError(t, env.PG.QueryRow(ctx, "SELECT product_name FROM "+env.Tables.Orders()+" WHERE order_id = 'o-after'").Scan(&name))
	require.Equal(t, "Renamed by the test", name)
	testenv.WaitFor(t, 10*time.Second, "the replay hint in the log", func() bool {
		return strings.Contains(r.logs.String(), "redpg dlq replay --reason unknown_product")
	})
}

func TestShutdownFinishesBatchesInHand(t *testing.T) {
	t.Parallel()
	r := start(t, service.Config{ShutdownTimeout: 20 * time.Second})
	env := r.env
	ctx := t.Context()
	gen, err := r.pipe.Generate(ctx, 3000, generate.Config{}, nil)
	require.NoError(t, err)
	testenv.WaitFor(t, time.Minute, "some batches to commit", func() bool { return ordersCount(t, env) > 0 })
	r.stop()
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within its shutdown timeout")
	}
	s, err := r.pipe.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.Processing, "no batch is left claimed: the ones in hand were finished and acknowledged")
	require.Zero(t, s.Workers, "workers left the lease set")
	require.Equal(t, int64(gen.Total), s.QueueDepth+s.PromotedTotal+s.DuplicatesTotal+s.RejectedTotal)
	rec, err := r.pipe.Reconcile(ctx)
	require.NoError(t, err)
	require.True(t, rec.OK(), rec.String())
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	c := service.Config{}.WithDefaults()
	require.Equal(t, service.DefaultRefreshInterval, c.RefreshInterval)
	require.Equal(t, service.DefaultWorkers, c.Workers)
	require.NotEmpty(t, c.Name)
	_, err := service.New(service.Config{RefreshInterval: -time.Second}, nil, nil, nil)
	require.ErrorContains(t, err, "refresh interval")
	_, err = service.New(service.Config{HTTPHandler: http.NotFoundHandler()}, nil, nil, nil)
	require.ErrorContains(t, err, "HTTPListener and HTTPHandler")
}

// TestHTTPLivesWithTheService serves a handler beside the workers: it
// answers while the service runs, and the listener is closed when Run
// returns.
func TestHTTPLivesWithTheService(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	r := start(t, service.Config{HTTPListener: ln, HTTPHandler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("served"))
	})})
	resp, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "served", string(body))

	r.stop()
	require.NoError(t, <-r.done)
	r.done <- nil // for the cleanup
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the listener is closed when the service stops")
	require.Contains(t, r.logs.String(), "serving HTTP")
}
