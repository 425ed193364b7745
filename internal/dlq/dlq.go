// Package dlq reads the dead-letter store, orders_rejected: every order the
// pipeline could not promote, with its reason and the payload it arrived
// with. Replaying dead letters lives in package pipeline, which owns
// promotion.
package dlq

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/redpg/redpg/internal/schema"
)

// Letter is one dead letter.
type Letter struct {
	ID         int64     `json:"id"`
	OrderID    string    `json:"order_id,omitempty"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail"`
	Payload    []byte    `json:"-"`
	BatchID    string    `json:"batch_id,omitempty"`
	RejectedAt time.Time `json:"rejected_at"`
}

// Filter selects dead letters.
type Filter struct {
	// Reason, when set, keeps only letters with that reason code.
	Reason string
	// Limit caps how many are returned. Defaults to 50.
	Limit int
}

// List returns dead letters matching f, oldest first, without payloads.
func List(ctx context.Context, pg *pgxpool.Pool, t schema.Tables, f Filter) ([]Letter, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := pg.Query(ctx, "SELECT id, coalesce(order_id, ''), reason, coalesce(detail, ''), coalesce(batch_id, ''), rejected_at FROM "+
		t.Rejected()+" WHERE ($1 = '' OR reason = $1) ORDER BY id LIMIT $2", f.Reason, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Letter, error) {
		var l Letter
		err := r.Scan(&l.ID, &l.OrderID, &l.Reason, &l.Detail, &l.BatchID, &l.RejectedAt)
		return l, err
	})
}

// Show returns one dead letter with its payload.
func Show(ctx context.Context, pg *pgxpool.Pool, t schema.Tables, id int64) (Letter, error) {
	l := Letter{ID: id}
	err := pg.QueryRow(ctx, "SELECT coalesce(order_id, ''), reason, coalesce(detail, ''), raw_payload, coalesce(batch_id, ''), rejected_at FROM "+
		t.Rejected()+" WHERE id = $1", id).Scan(&l.OrderID, &l.Reason, &l.Detail, &l.Payload, &l.BatchID, &l.RejectedAt)
	if err == pgx.ErrNoRows {
		return l, fmt.Errorf("no dead letter with id %d (see `redpg dlq list`)", id)
	}
	return l, err
}

// CountByReason returns how many dead letters each reason has.
func CountByReason(ctx context.Context, pg *pgxpool.Pool, t schema.Tables) (map[string]int64, error) {
	rows, err := pg.Query(ctx, "SELECT reason, count(*) FROM "+t.Rejected()+" GROUP BY reason")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var reason string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&reason, &n}, func() error { out[reason] = n; return nil })
	return out, err
}
