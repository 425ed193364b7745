package leader_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/leader"
	"github.com/redpg/redpg/internal/testenv"
)

func connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, testenv.DatabaseURL())
}

// TestOneLeaderAndTakeOver runs three candidates; exactly one leads at a
// time, and when the leader's session dies another takes over.
func TestOneLeaderAndTakeOver(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := leader.Config{Name: "test:" + testenv.ID(), Poll: 50 * time.Millisecond}

	var leading atomic.Int32
	var overlap atomic.Bool
	elected := make(chan int, 16)
	kill := make([]chan struct{}, 3)
	var wg sync.WaitGroup
	for i := range kill {
		kill[i] = make(chan struct{}, 1)
		wg.Add(1)
		// A killed candidate stops campaigning, as a dead process would.
		cctx, stop := context.WithCancel(ctx)
		go func() {
			defer wg.Done()
			defer stop()
			_ = leader.Run(cctx, cfg, connect, func(ctx context.Context, conn *pgx.Conn) error {
				if leading.Add(1) > 1 {
					overlap.Store(true)
				}
				defer leading.Add(-1)
				elected <- i
				select {
				case <-ctx.Done():
					return nil
				case <-kill[i]:
					// Die as a crashed process would: the server ends the
					// session, and only that frees the lock.
					_ = conn.PgConn().Conn().Close()
					stop()
					return context.Canceled
				}
			})
		}()
	}
	first := <-elected
	kill[first] <- struct{}{}
	var second int
	select {
	case second = <-elected:
	case <-ctx.Done():
		t.Fatal("nobody took over after the leader died")
	}
	require.NotEqual(t, first, second)
	select {
	case extra := <-elected:
		t.Fatalf("candidate %d was elected while %d leads", extra, second)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	wg.Wait()
	require.False(t, overlap.Load(), "two candidates led at the same time")
}

func TestLockIDsDiffer(t *testing.T) {
	t.Parallel()
	require.NotEqual(t, leader.LockID("serve:a"), leader.LockID("serve:b"))
	require.Equal(t, leader.LockID("serve:a"), leader.LockID("serve:a"))
}
