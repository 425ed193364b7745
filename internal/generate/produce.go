package generate

import (
	"context"
	"fmt"
)

// PushFunc enqueues one chunk of messages. Produce calls it from its own
// caller's goroutine, one chunk at a time and in order. It may keep the
// messages but not the slice holding them: Produce refills that slice with
// a later chunk once push has returned.
type PushFunc func(ctx context.Context, msgs [][]byte) error

// chunkReady is a generated chunk on its way to push, with the
// generator's counts as of its last message.
type chunkReady struct {
	msgs   [][]byte
	counts Counts
}

// Produce generates n messages with g and hands them to push in chunks of
// chunk messages (the last one shorter if need be): the same chunks in the
// same order as a loop that calls g.Batch(min(chunk, left)) and then push.
// It generates the next chunk while push sends the current one, so that a
// producer pays for the slower of generating and its round trip to Redis
// rather than for both. At most two chunks are generated ahead of push,
// so when push waits (a full queue) generation soon waits too.
//
// Produce returns once all n messages are pushed, when push fails (with
// its error) or when ctx ends (with ctx.Err()). It returns only after its
// generating goroutine has stopped, so g may be used again afterwards; it
// may then have generated up to two chunks that were never pushed. The
// counts returned are g's as of the last chunk handed to push, as
// g.Counts() would be after the sequential loop.
func Produce(ctx context.Context, g *Generator, n, chunk int, push PushFunc) (Counts, error) {
	counts := g.Counts()
	if chunk < 1 {
		return counts, fmt.Errorf("generate: chunk size %d must be positive", chunk)
	}
	if n <= 0 {
		return counts, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan chunkReady, 1)
	// Every chunk slice ever in flight fits: one being pushed, one ready,
	// one being generated.
	free := make(chan [][]byte, 3)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for left := n; left > 0 && ctx.Err() == nil; {
			k := min(chunk, left)
			var buf [][]byte
			select {
			case buf = <-free:
			default:
				buf = make([][]byte, 0, k)
			}
			c := chunkReady{msgs: g.AppendBatch(buf, k)}
			c.counts = g.Counts()
			left -= k
			select {
			case ready <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	for pushed := 0; pushed < n; {
		if err := ctx.Err(); err != nil {
			return counts, err
		}
		var c chunkReady
		select {
		case c = <-ready:
		case <-ctx.Done():
			return counts, ctx.Err()
		}
		counts = c.counts
		if err := push(ctx, c.msgs); err != nil {
			return counts, err
		}
		pushed += len(c.msgs)
		clear(c.msgs) // a recycled slice must not keep pushed messages alive
		select {
		case free <- c.msgs[:0]:
		default:
		}
	}
	return counts, nil
}
