package generate

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sequentialChunks is what Produce replaces: generate a chunk, push it,
// repeat.
func sequentialChunks(g *Generator, n, chunk int) [][][]byte {
	var out [][][]byte
	for done := 0; done < n; {
		b := g.Batch(min(chunk, n-done))
		out = append(out, b)
		done += len(b)
	}
	return out
}

// produceLabelled runs Produce with a profiler label unique to the test,
// which the goroutines Produce starts inherit, so that
// requireProducerStopped can tell them apart from those of tests running
// in parallel.
func produceLabelled(t *testing.T, ctx context.Context, g *Generator, n, chunk int, push PushFunc) (Counts, error) {
	t.Helper()
	var counts Counts
	var err error
	pprof.Do(ctx, pprof.Labels("produce-test", t.Name()), func(ctx context.Context) {
		counts, err = Produce(ctx, g, n, chunk, push)
	})
	return counts, err
}

// producerRunning reports whether any goroutine started by
// produceLabelled for t is still alive.
func producerRunning(t *testing.T) bool {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&buf, 1))
	return bytes.Contains(buf.Bytes(), []byte(`"produce-test":"`+t.Name()+`"`))
}

// requireProducerStopped fails t if Produce left a goroutine behind. A
// goroutine that has just signalled it is done may still be on its way
// out, so it gets a moment to go.
func requireProducerStopped(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return !producerRunning(t) }, 5*time.Second, time.Millisecond,
		"Produce returned with its generating goroutine still running")
}

// requireSameChunks fails t unless got holds the same messages as want, in
// the same chunks and order. It reports the first difference, not a diff of
// thousands of messages.
func requireSameChunks(t *testing.T, want, got [][][]byte) {
	t.Helper()
	require.Len(t, got, len(want), "chunks")
	for i := range want {
		require.Len(t, got[i], len(want[i]), "messages in chunk %d", i)
		for j := range want[i] {
			if !bytes.Equal(want[i][j], got[i][j]) {
				require.Failf(t, "different message", "chunk %d, message %d:\nwant %s\ngot  %s", i, j, want[i][j], got[i][j])
			}
		}
	}
}

func TestProduceMatchesSequentialLoop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		n, chunk int
		cfg      Config
		slowPush bool
	}{
		{"chunks divide n", 3000, 500, Config{}, false},
		{"short last chunk", 2345, 1000, Config{Duplicates: 0.2, Invalid: 0.1}, false},
		{"one chunk bigger than n", 700, 5000, Config{Duplicates: 0.3}, false},
		{"chunks of one", 50, 1, Config{Invalid: 0.5}, false},
		{"push slower than generation", 6000, 400, Config{Duplicates: 0.1, Invalid: 0.1, Burst: true}, true},
		{"nothing to do", 0, 10, Config{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.RunID = "prod01" // fixed, or each generator picks its own
			want := sequentialChunks(newGen(t, tc.cfg), tc.n, tc.chunk)
			ref := newGen(t, tc.cfg)
			sequentialChunks(ref, tc.n, tc.chunk)

			g := newGen(t, tc.cfg)
			var got [][][]byte
			counts, err := produceLabelled(t, context.Background(), g, tc.n, tc.chunk, func(_ context.Context, msgs [][]byte) error {
				// Produce reuses the chunk slice, not the messages: keep a
				// copy of the slice only.
				got = append(got, append([][]byte(nil), msgs...))
				if tc.slowPush {
					time.Sleep(time.Millisecond)
				}
				return nil
			})
			require.NoError(t, err)
			requireProducerStopped(t)
			requireSameChunks(t, want, got)
			require.Equal(t, ref.Counts(), counts)
			require.Equal(t, ref.Counts(), g.Counts(), "nothing generated beyond n")
			require.Equal(t, ref.Next(), g.Next(), "the generator continues where the sequential one would")
		})
	}
}

func TestProduceStopsOnCancel(t *testing.T) {
	t.Parallel()
	t.Run("while push waits", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		g := newGen(t, Config{})
		pushes := 0
		counts, err := produceLabelled(t, ctx, g, 1_000_000, 100, func(ctx context.Context, msgs [][]byte) error {
			pushes++
			// A full queue: push waits until it is given up on, while the
			// generator runs ahead as far as it may.
			require.Len(t, msgs, 100)
			require.True(t, producerRunning(t), "the generator runs while push waits")
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		require.ErrorIs(t, err, context.Canceled)
		requireProducerStopped(t)
		require.Equal(t, 1, pushes)
		require.Equal(t, 100, counts.Total, "the counts cover the chunk handed to push")
		require.LessOrEqual(t, g.Counts().Total, 300, "at most two chunks generated ahead")
	})
	t.Run("before it starts", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		g := newGen(t, Config{})
		counts, err := produceLabelled(t, ctx, g, 1000, 100, func(context.Context, [][]byte) error {
			t.Error("push called after cancel")
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		requireProducerStopped(t)
		require.Zero(t, counts.Total)
	})
	t.Run("deadline between pushes", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		g := newGen(t, Config{})
		var pushed atomic.Int64
		_, err := produceLabelled(t, ctx, g, 100_000_000, 1000, func(_ context.Context, msgs [][]byte) error {
			// A push that ignores ctx: Produce must stop on its own.
			pushed.Add(int64(len(msgs)))
			return nil
		})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		requireProducerStopped(t)
		require.Less(t, pushed.Load(), int64(100_000_000))
	})
}

func TestProducePushErrorStopsGenerator(t *testing.T) {
	t.Parallel()
	boom := errors.New("redis went away")
	g := newGen(t, Config{Duplicates: 0.1})
	pushes := 0
	counts, err := produceLabelled(t, context.Background(), g, 1_000_000, 100, func(context.Context, [][]byte) error {
		if pushes++; pushes == 3 {
			return boom
		}
		return nil
	})
	require.ErrorIs(t, err, boom)
	requireProducerStopped(t)
	require.Equal(t, 3, pushes, "no push after the failed one")
	require.Equal(t, 300, counts.Total, "the counts cover the chunks handed to push, the failed one included")
	require.LessOrEqual(t, g.Counts().Total, 500, "the generator stopped at most two chunks ahead")
}

func TestProduceRejectsChunkSize(t *testing.T) {
	t.Parallel()
	_, err := Produce(context.Background(), newGen(t, Config{}), 10, 0, func(context.Context, [][]byte) error { return nil })
	require.ErrorContains(t, err, "chunk size 0")
}
