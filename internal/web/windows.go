package web

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/redpg/redpg/internal/schema"
)

// Window is the orders promoted with an order_timestamp in the last
// Seconds, and their revenue in USD (decimal text, exact).
type Window struct {
	Name       string `json:"name"`
	Seconds    int64  `json:"seconds"`
	Orders     int64  `json:"orders"`
	RevenueUSD string `json:"revenue_usd"`
}

// WindowSource reports the live windows. `redpg serve` supplies one kept
// in Redis sorted sets; SQLWindows is the stand-in that asks PostgreSQL.
type WindowSource interface {
	Windows(ctx context.Context) ([]Window, error)
}

// DefaultWindows are the live windows the dashboard shows.
var DefaultWindows = []time.Duration{time.Minute, 5 * time.Minute, time.Hour}

// SQLWindows computes the windows with one query over orders, using its
// index on order_timestamp.
type SQLWindows struct {
	PG     *pgxpool.Pool
	Tables schema.Tables
	// Lengths are the windows. Defaults to DefaultWindows.
	Lengths []time.Duration
}

// Windows implements WindowSource.
func (s SQLWindows) Windows(ctx context.Context) ([]Window, error) {
	lengths := s.Lengths
	if len(lengths) == 0 {
		lengths = DefaultWindows
	}
	longest := lengths[0]
	secs := make([]int64, len(lengths))
	for i, l := range lengths {
		secs[i] = int64(l / time.Second)
		longest = max(longest, l)
	}
	rows, err := s.PG.Query(ctx, `SELECT w.s, count(o.order_id), coalesce(sum(o.total_amount_usd), 0)::text
		FROM unnest($1::bigint[]) AS w(s)
		LEFT JOIN (SELECT order_id, total_amount_usd, order_timestamp FROM `+s.Tables.Orders()+`
		           WHERE order_timestamp > now() - make_interval(secs => $2)) o
		  ON o.order_timestamp > now() - make_interval(secs => w.s)
		GROUP BY w.s`, secs, float64(longest/time.Second))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	bySecs := map[int64]Window{}
	for rows.Next() {
		var w Window
		if err := rows.Scan(&w.Seconds, &w.Orders, &w.RevenueUSD); err != nil {
			return nil, err
		}
		bySecs[w.Seconds] = w
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Window, len(lengths))
	for i, l := range lengths {
		w := bySecs[secs[i]]
		w.Seconds, w.Name = secs[i], windowName(l)
		if w.RevenueUSD == "" {
			w.RevenueUSD = "0"
		}
		out[i] = w
	}
	return out, nil
}

// windowName writes a length as the dashboard labels it: 1m, 5m, 60m.
func windowName(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}
