package dlq

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/redpg/redpg/internal/schema"
)

// Sampled is a dead letter with the head of its payload.
type Sampled struct {
	Letter
	// PayloadSize is the full payload's length in bytes; Payload holds at
	// most the first maxPayload of them.
	PayloadSize int
}

// Sample returns up to f.Limit letters (reason f.Reason, if set) with ids
// above afterID, oldest first, each with at most maxPayload bytes of its
// payload: a page that stays small however large the letters are.
func Sample(ctx context.Context, pg *pgxpool.Pool, t schema.Tables, f Filter, afterID int64, maxPayload int) ([]Sampled, error) {
	return sample(ctx, pg, t, f, "id > $4 ORDER BY id", afterID, maxPayload)
}

// Latest is Sample for the newest letters, newest first.
func Latest(ctx context.Context, pg *pgxpool.Pool, t schema.Tables, f Filter, maxPayload int) ([]Sampled, error) {
	return sample(ctx, pg, t, f, "id > $4 ORDER BY id DESC", 0, maxPayload)
}

func sample(ctx context.Context, pg *pgxpool.Pool, t schema.Tables, f Filter, where string, afterID int64, maxPayload int) ([]Sampled, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := pg.Query(ctx, "SELECT id, coalesce(order_id, ''), reason, coalesce(detail, ''), coalesce(batch_id, ''), rejected_at, "+
		"substring(raw_payload from 1 for $3), coalesce(length(raw_payload), 0) FROM "+t.Rejected()+
		" WHERE ($1 = '' OR reason = $1) AND "+where+" LIMIT $2", f.Reason, f.Limit, maxPayload, afterID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sampled, error) {
		var s Sampled
		err := r.Scan(&s.ID, &s.OrderID, &s.Reason, &s.Detail, &s.BatchID, &s.RejectedAt, &s.Payload, &s.PayloadSize)
		return s, err
	})
}
