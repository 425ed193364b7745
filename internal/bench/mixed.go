package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redpg/redpg/internal/views"
)

// dashboardQueries are what a dashboard asks of each materialized view.
var dashboardQueries = []string{
	"SELECT * FROM %s ORDER BY hour DESC LIMIT 24",
	"SELECT * FROM %s ORDER BY day DESC, total_revenue_usd DESC LIMIT 20",
	"SELECT * FROM %s ORDER BY total_revenue_usd DESC",
}

// dashResult is what a dashboard workload measured.
type dashResult struct {
	queries   *histogram // each dashboard query
	refreshes *histogram // each refresh of all three views
}

// dashboardRun is a dashboard workload in progress.
type dashboardRun struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	res    *dashResult
	errs   [2]error
}

// startDashboards starts, each on its own direct connection, a loop of
// dashboard queries and a concurrent refresh every RefreshEvery.
func (r *runner) startDashboards(ctx context.Context) (*dashboardRun, error) {
	qconn, err := r.cfg.PG.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rconn, err := r.cfg.PG.Acquire(ctx)
	if err != nil {
		qconn.Release()
		return nil, err
	}
	var sqls []string
	for i, v := range []string{"sales_hourly", "product_performance_daily", "shipping_zone_stats"} {
		sqls = append(sqls, fmt.Sprintf(dashboardQueries[i], r.tables.View(v)))
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &dashboardRun{cancel: cancel, res: &dashResult{queries: &histogram{}, refreshes: &histogram{}}}
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		defer qconn.Release()
		for ctx.Err() == nil {
			for _, q := range sqls {
				start := time.Now()
				rows, err := qconn.Query(ctx, q)
				if err == nil {
					for rows.Next() {
					}
					rows.Close()
					err = rows.Err()
				}
				if err != nil {
					if ctx.Err() == nil {
						d.errs[0] = fmt.Errorf("dashboard query: %w", err)
					}
					return
				}
				d.res.queries.record(time.Since(start))
			}
		}
	}()
	go func() {
		defer d.wg.Done()
		defer rconn.Release()
		tick := time.NewTicker(r.cfg.RefreshEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			if err := views.Refresh(ctx, rconn, r.tables); err != nil {
				if ctx.Err() == nil {
					d.errs[1] = err
				}
				return
			}
			d.res.refreshes.record(time.Since(start))
		}
	}()
	return d, nil
}

// stop ends the workload and returns what it measured.
func (d *dashboardRun) stop() *dashResult {
	d.cancel()
	d.wg.Wait()
	return d.res
}

// err reports a failure of the workload itself.
func (d *dashboardRun) err() error { return errors.Join(d.errs[:]...) }

// dashboards runs the dashboard workload alone for d.
func (r *runner) dashboards(ctx context.Context, d time.Duration) (*dashResult, error) {
	run, err := r.startDashboards(ctx)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	res := run.stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return res, run.err()
}
