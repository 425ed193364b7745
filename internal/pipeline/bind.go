package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/redpg/redpg/internal/queue"
)

// ErrForeignAccount means the Redis deployment keeps the account of
// another database that has a history of its own, or that workers are live
// where the account was to start over.
var ErrForeignAccount = errors.New("the Redis deployment's account cannot be bound to this database")

// Bind ties the deployment's Redis state to this database before any work
// is counted, so that figures from a Redis that outlived its database (or
// that belong to another deployment's database) are never balanced against
// this ledger. A fresh database takes over a foreign account, which starts
// over; a database with its own history refuses it with ErrForeignAccount.
// Binding is remembered for the life of the Pipeline.
func (p *Pipeline) Bind(ctx context.Context) error {
	if p.bound.Load() {
		return nil
	}
	if err := p.bind(ctx, false); err != nil {
		return err
	}
	p.bound.Store(true)
	return nil
}

// ResetAccount starts the Redis account over in a new, acknowledged epoch:
// for an operator who has dealt with what reconcile reported (a Redis that
// lost its data, a deployment moved to another database). Workers must be
// stopped first.
func (p *Pipeline) ResetAccount(ctx context.Context) error {
	return p.bind(ctx, true)
}

func (p *Pipeline) bind(ctx context.Context, reset bool) error {
	t := p.cfg.Tables
	var id string
	var fresh, hasEpochs bool
	err := p.pg.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT id::text FROM %s),
		NOT EXISTS (SELECT 1 FROM %s WHERE claim_mark IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM %s),
		EXISTS (SELECT 1 FROM %[3]s)`, t.Deployment(), t.Batches(), t.Epochs())).Scan(&id, &fresh, &hasEpochs)
	if err != nil {
		return fmt.Errorf("read the database's identity (run `redpg migrate`?): %w", err)
	}
	b, err := p.queue.Bind(ctx, id, fresh, reset)
	if err != nil {
		return err
	}
	reason, acknowledged := bindingReason(b, reset, hasEpochs)
	if b.State == "mismatch" {
		if b.Previous == id || b.Previous == "" {
			return fmt.Errorf("%w: workers hold leases in Redis keys %s*; stop them (or wait for their leases to expire) first",
				ErrForeignAccount, p.cfg.Keys.Namespace())
		}
		return fmt.Errorf("%w: %s", ErrForeignAccount, mismatchMessage(p.cfg.Keys.Namespace(), b.Previous, id))
	}
	if _, err := p.pg.Exec(ctx, "INSERT INTO "+t.Epochs()+" (epoch, reason, acknowledged) VALUES ($1, $2, $3) ON CONFLICT (epoch) DO NOTHING",
		b.Epoch, reason, acknowledged); err != nil {
		return fmt.Errorf("record the account's epoch: %w", err)
	}
	if !acknowledged {
		p.cfg.Logger.Warn("the Redis account had lost its binding to this database: Redis lost its data (restart without persistence, flush, eviction?); "+
			"`redpg reconcile` will report what may have been lost until `redpg clear --account`", "keys", p.cfg.Keys.Namespace())
	} else if b.State == "reset" && !reset && b.Previous != "" && b.Previous != id {
		p.cfg.Logger.Warn("the Redis account belonged to another database; this database is new, so the account starts over",
			"keys", p.cfg.Keys.Namespace(), "previous_database", b.Previous, "database", id)
	}
	return nil
}

// bindingReason says why the account has its epoch, and whether redpg
// started it knowingly.
func bindingReason(b queue.Binding, reset, hasEpochs bool) (string, bool) {
	switch {
	case reset:
		return "reset by an operator", true
	case b.State == "reset":
		return "new database", true
	case b.State == "adopted" && hasEpochs:
		return "Redis lost the account's binding", false
	case b.State == "adopted":
		return "adopted an account from before binding", true
	default:
		return "bound", true
	}
}

func mismatchMessage(namespace, redisDB, pgDB string) string {
	return fmt.Sprintf("Redis keys %s* keep the account of database %s, but this database is %s: "+
		"point REDIS_URL or REDPG_KEY_PREFIX at this database's deployment, or, if the Redis state is stale, "+
		"stop the workers and run `redpg clear --account` to start its account over", namespace, redisDB, pgDB)
}
