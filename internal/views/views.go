// Package views refreshes the dashboard materialized views and reports
// their sizes. Refreshes are CONCURRENTLY, so dashboards keep reading the
// previous contents while a refresh runs.
package views

import (
	"context"
	"errors"
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
		_, err := db.Exec(ctx, "REFRESH MATERIALIZED VIEW CONCURRENTLY "+t.View(v))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55000" { // never populated: CONCURRENTLY needs data once
			_, err = db.Exec(ctx, "REFRESH MATERIALIZED VIEW "+t.View(v))
		}
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
