package pipeline

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/redpg/redpg/internal/ledger"
	"github.com/redpg/redpg/internal/order"
	"github.com/redpg/redpg/internal/promote"
	"github.com/redpg/redpg/internal/stage"
	"github.com/redpg/redpg/internal/transform"
)

// ReplayOptions selects dead letters to replay.
type ReplayOptions struct {
	// Reason, when set, replays only letters with that reason code.
	Reason string
	// IDs, when set, replays only these letters.
	IDs []int64
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	Replayed      int64 // dead letters taken out of orders_rejected
	Promoted      int64 // of those, now in orders
	Duplicates    int64 // of those, already in orders
	StillRejected int64 // of those, rejected again (with a fresh reason)
}

// Replay runs dead letters through the pipeline again, typically after the
// cause was fixed (a product added and the cache reloaded). Each chunk is
// one transaction that promotes what is now valid, rejects again what is
// not, and deletes the replayed letters, so every order is promoted exactly
// once and no letter is lost or kept twice. Letters rejected again get new
// ids, so a replay never loops over its own output.
func (p *Pipeline) Replay(ctx context.Context, opts ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	t := p.cfg.Tables
	var maxID int64
	if err := p.pg.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM "+t.Rejected()).Scan(&maxID); err != nil {
		return res, err
	}
	for {
		n, err := p.replayChunk(ctx, opts, maxID, &res)
		if err != nil || n == 0 {
			return res, err
		}
	}
}

func (p *Pipeline) replayChunk(ctx context.Context, opts ReplayOptions, maxID int64, res *ReplayResult) (int, error) {
	t := p.cfg.Tables
	batchID := newID("replay-")
	var promoted []string
	var promotedRows []transform.Row
	var taken int
	err := pgx.BeginTxFunc(ctx, p.pg, p.tx, func(tx pgx.Tx) error {
		// A letter over the cap (stored before there was one) is read only
		// as its size and first bytes, so a chunk of them cannot hold
		// BatchSize large payloads at once.
		rows, err := tx.Query(ctx, "SELECT id, octet_length(raw_payload),"+
			" CASE WHEN octet_length(raw_payload) > $5 THEN substring(raw_payload FROM 1 FOR $6) ELSE raw_payload END FROM "+t.Rejected()+
			" WHERE id <= $1 AND ($2 = '' OR reason = $2) AND ($3::bigint[] IS NULL OR id = ANY($3))"+
			" ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED", maxID, opts.Reason, nilIfEmpty(opts.IDs), p.cfg.BatchSize,
			p.cfg.Message.MaxBytes, order.KeptPrefixBytes)
		if err != nil {
			return err
		}
		var ids []int64
		var msgs [][]byte
		var id int64
		var size int
		var raw []byte
		if _, err := pgx.ForEachRow(rows, []any{&id, &size, &raw}, func() error {
			ids = append(ids, id)
			if size > len(raw) {
				msgs = append(msgs, order.OversizedMark(size, raw))
			} else {
				msgs = append(msgs, append([]byte(nil), raw...))
			}
			return nil
		}); err != nil {
			return err
		}
		taken = len(ids)
		if taken == 0 {
			return nil
		}
		pr, err := p.prepare(ctx, msgs)
		if err != nil {
			return err
		}
		if _, err := stage.Copy(ctx, tx, t, batchID, pr.rows); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		r, err := promote.BatchSeen(ctx, tx, t, batchID, pr.rows, pr.seen)
		if err != nil {
			return err
		}
		if err := promote.Reject(ctx, tx, t, batchID, pr.rejects); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+t.Rejected()+" WHERE id = ANY($1)", ids); err != nil {
			return err
		}
		again := int64(len(pr.rejects)) + r.Rejected
		c := ledger.Counts{
			Promoted:   int64(len(r.Promoted)),
			Duplicates: r.Duplicates(),
			Rejected:   again - int64(taken), // letters left the store; some came back
		}
		if _, err := ledger.Record(ctx, tx, t, batchID, ledger.Replay, "replay", ledger.Claim{}, c); err != nil {
			return err
		}
		res.Replayed += int64(taken)
		res.Promoted += c.Promoted
		res.Duplicates += c.Duplicates
		res.StillRejected += again
		promoted, promotedRows = r.Promoted, r.Rows
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	if err := p.dedup.Mark(ctx, promoted); err != nil {
		p.cfg.Logger.Warn("could not mark replayed ids in the dedup window", "err", err)
	}
	p.recordWindows(ctx, promotedRows)
	if len(promoted) > 0 {
		p.rdb.Publish(ctx, p.cfg.Keys.Events(), EventPromoted)
	}
	return taken, nil
}

func nilIfEmpty(ids []int64) []int64 {
	if len(ids) == 0 {
		return nil
	}
	return ids
}
