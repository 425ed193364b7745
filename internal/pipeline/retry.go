package pipeline

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// transient reports whether err is the infrastructure's fault (a lost or
// refused connection, a server restarting, a deadlock) rather than the
// batch's. Transient failures are retried without limit, with backoff;
// other failures count towards Config.MaxAttempts.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"),         // admin shutdown, crash shutdown, cannot connect now
			pgErr.Code == "40001", pgErr.Code == "40P01", // serialization failure, deadlock
			pgErr.Code == "53300", pgErr.Code == "53400", // too many connections
			pgErr.Code == "55P03", // lock_timeout: another transaction, maybe a frozen worker's, holds the lock
			pgErr.Code == "25P03": // idle_in_transaction_session_timeout ended our own session
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"conn closed", "connection refused", "connection reset", "broken pipe", "LOADING", "server closed", "bad connection", "no connection", "pool timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// backoff is an exponential delay with jitter, capped at max.
type backoff struct {
	base, max time.Duration
	n         int
}

func (b *backoff) next() time.Duration {
	d := b.base << min(b.n, 16)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx is done, reporting false in the latter case.
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
