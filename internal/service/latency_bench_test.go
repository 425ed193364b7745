package service_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/generate"
	"github.com/redpg/redpg/internal/pipeline"
	"github.com/redpg/redpg/internal/service"
	"github.com/redpg/redpg/internal/testenv"
)

// BenchmarkEndToEndLatency measures, under light load, how long an order
// takes from its LPUSH to its row in orders and to being counted in
// sales_hourly, with `redpg serve`'s default refresh interval. It pushes
// b.N single orders, 20 a second, to a service running in-process with one
// worker: batches then commit in push order, so the views count order i
// exactly when they count i+1 orders. Run it with a fixed count:
//
//	go test -run '^$' -bench EndToEndLatency -benchtime 200x ./internal/service/
func BenchmarkEndToEndLatency(b *testing.B) {
	env := testenv.New(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := pipeline.New(pipeline.Config{Keys: env.Keys, Tables: env.Tables}, env.PG, nil, env.RDB)
	require.NoError(b, err)
	svc, err := service.New(service.Config{Workers: 1}, p, env.PG, env.RDB)
	require.NoError(b, err)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Log(err)
		}
	}()
	for !svc.Leader() {
		time.Sleep(10 * time.Millisecond)
	}
	cat, err := p.Catalog(ctx)
	require.NoError(b, err)
	g, err := generate.New(cat, generate.Config{})
	require.NoError(b, err)
	msgs := g.Batch(b.N)
	ids := make([]string, b.N)
	for i, m := range msgs {
		var id string
		_, err := fmt.Sscanf(string(m), `{"order_id":%q`, &id)
		require.NoError(b, err)
		ids[i] = id
	}

	pushed := make([]time.Time, b.N)
	toOrders := make([]time.Duration, b.N)
	toViews := make([]time.Duration, b.N)
	var mu sync.Mutex
	sent := 0
	var watchers sync.WaitGroup
	watchers.Add(2)
	// Row in orders: poll for the ids pushed and not yet seen.
	go func() {
		defer watchers.Done()
		seen := 0
		for seen < b.N && ctx.Err() == nil {
			mu.Lock()
			n := sent
			mu.Unlock()
			for seen < n {
				var ok bool
				_ = env.PG.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+env.Tables.Orders()+" WHERE order_id = $1)", ids[seen]).Scan(&ok)
				if !ok {
					break
				}
				mu.Lock()
				toOrders[seen] = time.Since(pushed[seen])
				mu.Unlock()
				seen++
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// Counted in sales_hourly: the view's total reaches i+1.
	go func() {
		defer watchers.Done()
		counted := 0
		for counted < b.N && ctx.Err() == nil {
			var total int64
			_ = env.PG.QueryRow(ctx, "SELECT coalesce(sum(order_count), 0)::bigint FROM "+env.Tables.View("sales_hourly")).Scan(&total)
			mu.Lock()
			for int64(counted) < total && counted < sent {
				toViews[counted] = time.Since(pushed[counted])
				counted++
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()

	b.ResetTimer()
	tick := time.NewTicker(50 * time.Millisecond)
	for i := range b.N {
		<-tick.C
		mu.Lock()
		pushed[i] = time.Now()
		sent = i + 1
		mu.Unlock()
		require.NoError(b, p.Push(ctx, msgs[i:i+1], nil))
	}
	tick.Stop()
	watchers.Wait()
	b.StopTimer()

	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(q*float64(len(s))))].Milliseconds())
	}
	b.ReportMetric(pct(toOrders, 0.50), "p50-orders-ms")
	b.ReportMetric(pct(toOrders, 0.99), "p99-orders-ms")
	b.ReportMetric(pct(toViews, 0.50), "p50-views-ms")
	b.ReportMetric(pct(toViews, 0.99), "p99-views-ms")
	b.ReportMetric(0, "ns/op")
}
