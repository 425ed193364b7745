// Package ledger records the fate of every batch in pipeline_batches. The
// table's primary key on batch_id is what makes delivery exactly-once in
// effect: a worker's promoting transaction and a reaper's decision to
// abandon a dead worker's batch both insert the batch's row, so exactly one
// of them wins, and a batch redelivered after its commit is recognised and
// acknowledged instead of being promoted again.
package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/redpg/redpg/internal/schema"
)

// Status of a decided batch.
const (
	// Committed batches were promoted; their messages may leave Redis.
	Committed = "committed"
	// Abandoned batches were fenced by a reaper and requeued.
	Abandoned = "abandoned"
	// Replay rows record dead letters replayed by `redpg dlq replay`.
	Replay = "replay"
	// Adopted is the row migration 005 writes for the orders and staged
	// rows a database of the Python reference held when redpg adopted it.
	Adopted = "adopted"
)

// Counts is what happened to a batch's messages.
type Counts struct {
	Received   int64 // messages taken from the queue
	Promoted   int64 // inserted into orders
	Duplicates int64 // already seen (window or primary key)
	Rejected   int64 // written to orders_rejected
}

// Claim places a batch in the Redis account's history: the account's epoch
// and its claimed count right after the batch was claimed (queue.Batch).
// The zero Claim is for rows that were not claimed from Redis (replays).
type Claim struct {
	Epoch string
	Mark  int64
}

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Received + o.Received, c.Promoted + o.Promoted, c.Duplicates + o.Duplicates, c.Rejected + o.Rejected}
}

// Record inserts the batch's row inside the promoting transaction. It
// reports false when the batch was already decided (committed earlier, or
// abandoned by a reaper): the caller must then roll back.
//
// claim places the batch in the Redis account's history; reconciliation
// uses it to tell which committed batches a reading of the account covers.
func Record(ctx context.Context, tx pgx.Tx, t schema.Tables, batchID, status, worker string, claim Claim, c Counts) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, "INSERT INTO "+t.Batches()+
		" (batch_id, status, worker, received, promoted, duplicates, rejected, claim_epoch, claim_mark)"+
		" VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), nullif($9, 0))"+
		" ON CONFLICT (batch_id) DO NOTHING RETURNING 1",
		batchID, status, worker, c.Received, c.Promoted, c.Duplicates, c.Rejected, claim.Epoch, claim.Mark).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record batch %s: %w", batchID, err)
	}
	return true, nil
}

// Fence decides a dead worker's batch: it inserts the batch as abandoned
// unless it is already decided, and returns the batch's status afterwards.
// Abandoned means the caller must requeue the messages; committed means they
// are durable and must be released.
func Fence(ctx context.Context, db DB, t schema.Tables, batchID, worker string) (string, error) {
	_, err := db.Exec(ctx, "INSERT INTO "+t.Batches()+" (batch_id, status, worker) VALUES ($1, $2, $3) ON CONFLICT (batch_id) DO NOTHING",
		batchID, Abandoned, worker)
	if err != nil {
		return "", fmt.Errorf("fence batch %s: %w", batchID, err)
	}
	return Status(ctx, db, t, batchID)
}

// Status returns a batch's status, or "" when it is undecided.
func Status(ctx context.Context, db DB, t schema.Tables, batchID string) (string, error) {
	var status string
	err := db.QueryRow(ctx, "SELECT status FROM "+t.Batches()+" WHERE batch_id = $1", batchID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read batch %s: %w", batchID, err)
	}
	return status, nil
}

// Totals sums the counts of every decided batch.
func Totals(ctx context.Context, db DB, t schema.Tables) (Counts, error) {
	var c Counts
	err := db.QueryRow(ctx, "SELECT coalesce(sum(received),0), coalesce(sum(promoted),0), coalesce(sum(duplicates),0), coalesce(sum(rejected),0) FROM "+t.Batches()).
		Scan(&c.Received, &c.Promoted, &c.Duplicates, &c.Rejected)
	return c, err
}

// DB is the part of pgx shared by pools, connections and transactions.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
