// Package leader elects one process among many for the roles only one may
// play at a time, such as refreshing materialized views or republishing the
// lookup snapshot.
//
// The lock is a PostgreSQL session advisory lock held on a connection of
// its own, straight to the server (never through PgBouncer, where a session
// does not survive the transaction). When the leader dies, however it dies,
// the kernel closes its socket, the server ends the session and frees the
// lock, and the next candidate to try (every Poll) takes over: no TTL to
// wait out and no clock to trust. The same session is handed to the leader
// for LISTEN, which needs a direct session too.
package leader

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPoll is how often a candidate tries to take the lock: the longest
// a role stays vacant after its holder died.
const DefaultPoll = time.Second

// Config configures a campaign.
type Config struct {
	// Name identifies what is led; processes with the same Name on the same
	// database compete. Include the schema, so tenants elect separately.
	Name string
	// Poll is how often a candidate tries to take the lock. Defaults to
	// DefaultPoll.
	Poll time.Duration
	// Logger receives transitions. Defaults to a discarding logger.
	Logger *slog.Logger
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if c.Name == "" {
		return fmt.Errorf("leader: a Name is required")
	}
	if c.Poll < 10*time.Millisecond {
		return fmt.Errorf("leader: poll %s must be at least 10ms", c.Poll)
	}
	return nil
}

// lockNamespace keeps these locks apart from the migration locks (package
// schema), which hash schema names the same way.
const lockNamespace = 0x72656470_6c656164 // "redplead"

// LockID is the advisory lock key for name.
func LockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(lockNamespace ^ h.Sum64())
}

// Connect opens the session a campaign holds its lock on.
type Connect func(ctx context.Context) (*pgx.Conn, error)

// Lead plays the roles while this process holds the lock. conn is the
// session holding it; Lead may LISTEN on it but must not close it. Lead
// returns when ctx ends or when it finds the session broken — then the
// lock may be gone and another process may lead.
type Lead func(ctx context.Context, conn *pgx.Conn) error

// Run campaigns until ctx ends: it tries the lock every Poll and, each
// time it wins, runs lead; when lead returns, the session is closed, which
// releases the lock, and the campaign starts again on a new session.
func Run(ctx context.Context, cfg Config, connect Connect, lead Lead) error {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	id := LockID(cfg.Name)
	log := cfg.Logger.With("role", cfg.Name)
	for ctx.Err() == nil {
		conn, err := connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot open the leader election session; retrying", "err", err, "in", cfg.Poll)
			}
			sleep(ctx, cfg.Poll)
			continue
		}
		campaign(ctx, cfg, log, id, conn, lead)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		sleep(ctx, cfg.Poll)
	}
	return nil
}

// campaign tries the lock on conn until it wins and leads, the session
// breaks, or ctx ends.
func campaign(ctx context.Context, cfg Config, log *slog.Logger, id int64, conn *pgx.Conn, lead Lead) {
	for {
		var won bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&won); err != nil {
			if ctx.Err() == nil {
				log.Warn("leader election session failed; reconnecting", "err", err)
			}
			return
		}
		if won {
			log.Info("elected leader")
			err := lead(ctx, conn)
			if ctx.Err() == nil {
				log.Warn("stepped down as leader", "err", err)
			} else {
				log.Info("stepped down as leader: shutting down")
			}
			return
		}
		if !sleep(ctx, cfg.Poll) {
			return
		}
	}
}

// sleep waits d or until ctx ends, reporting whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
