package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress shows how far a long command is: a redrawn bar on a terminal, a
// line every few seconds otherwise, and always a visible notice while a
// producer waits for room in the queue.
type progress struct {
	w        io.Writer
	label    string
	tty      bool
	start    time.Time
	mu       sync.Mutex
	last     time.Time
	drawn    bool
	waitNote time.Time
}

func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, tty: isTerminal(w), start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update reports done of total (total 0: unknown) and, when waiting is
// positive, that the producer is held back by a queue that deep.
func (p *progress) update(done, total int, waiting int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if waiting > 0 {
		if now.Sub(p.waitNote) >= 2*time.Second {
			p.clearLine()
			fmt.Fprintf(p.w, "%s: queue holds %d messages (MAX_QUEUE_DEPTH reached); waiting for workers to catch up — nothing is dropped\n", p.label, waiting)
			p.waitNote = now
		}
		return
	}
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every && (total == 0 || done < total) {
		return
	}
	p.last = now
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-9)
	var line string
	if total > 0 {
		const width = 30
		filled := min(width, done*width/max(total, 1))
		line = fmt.Sprintf("%s [%s%s] %d/%d %3.0f%% %.0f/s%s", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			done, total, 100*float64(done)/float64(total), rate, eta(done, total, rate))
	} else {
		line = fmt.Sprintf("%s: %d messages, %.0f/s", p.label, done, rate)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) clearLine() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// done ends the bar's line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// eta is " ETA 12s" for the work left at rate, or "" when it is done or
// the rate is not known yet.
func eta(done, total int, rate float64) string {
	if done >= total || done <= 0 || rate <= 0 {
		return ""
	}
	left := time.Duration(float64(total-done) / rate * float64(time.Second))
	if left >= time.Minute {
		return " ETA " + left.Round(time.Second).String()
	}
	return " ETA " + left.Round(100*time.Millisecond).String()
}
