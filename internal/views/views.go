// Package views refreshes the dashboard materialized views and reports
// their sizes. Refreshes are CONCURRENTLY, so dashboards keep reading the
// previous contents while a refresh runs.
package views

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/redpg/redpg/internal/schema"
)

// DB is the part of a pgx pool the views need.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Refresh refreshes every materialized view concurrently with readers.
func Refresh(ctx context.Context, db DB, t schema.Tables) error {
	for _, v := range schema.Views {
		// CONCURRENTLY needs the view populated once; PostgreSQL refuses it
		// otherwise (SQLSTATE 0A000, not 55000 as once assumed here).
		var populated bool
		if err := db.QueryRow(ctx, "SELECT relispopulated FROM pg_class WHERE oid = $1::regclass", t.View(v)).Scan(&populated); err != nil {
			return fmt.Errorf("refresh %s: %w", v, err)
		}
		refresh := "REFRESH MATERIALIZED VIEW CONCURRENTLY "
		if !populated {
			refresh = "REFRESH MATERIALIZED VIEW "
		}
		_, err := db.Exec(ctx, refresh+t.View(v))
		if err != nil {
			return fmt.Errorf("refresh %s: %w", v, err)
		}
	}
	return nil
}

// Counts returns the row count of each materialized view.
func Counts(ctx context.Context, db DB, t schema.Tables) (map[string]int64, error) {
	out := make(map[string]int64, len(schema.Views))
	for _, v := range schema.Views {
		var n int64
		if err := db.QueryRow(ctx, "SELECT count(*) FROM "+t.View(v)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", v, err)
		}
		out[v] = n
	}
	return out, nil
}
