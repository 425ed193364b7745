package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/redpg/redpg/internal/pipeline"
)

// printRates adds the per-second rates since the previous reading, which
// `stats --watch` shows under the counters.
func printRates(w io.Writer, prev *pipeline.Stats, cur pipeline.Stats) {
	fmt.Fprintln(w, "Rates (per second, since the last refresh)")
	if prev == nil {
		fmt.Fprintln(w, "  (from the next refresh on)")
		return
	}
	secs := cur.TakenAt.Sub(prev.TakenAt).Seconds()
	if secs <= 0 {
		return
	}
	rate := func(k string, now, before int64) { fmt.Fprintf(w, "  %-26s %12.1f\n", k, float64(now-before)/secs) }
	rate("produced", cur.Produced, prev.Produced)
	rate("promoted", cur.PromotedTotal, prev.PromotedTotal)
	rate("duplicates", cur.DuplicatesTotal, prev.DuplicatesTotal)
	rate("rejected", cur.RejectedTotal, prev.RejectedTotal)
	rate("batches", cur.Batches, prev.Batches)
	rate("queue depth change", cur.QueueDepth, prev.QueueDepth)
}

// redraw writes a screenful. On a terminal it goes to the top left and
// overwrites the previous one line by line, clearing each line's rest and
// whatever is below, so the picture updates in place without flicker;
// elsewhere each reading is simply appended.
func redraw(w io.Writer, inPlace bool, text string) {
	if !inPlace {
		fmt.Fprint(w, text)
		return
	}
	var b strings.Builder
	b.WriteString("\033[H")
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\033[K")
		if strings.HasSuffix(line, "\n") {
			b.WriteString("\n")
		}
	}
	b.WriteString("\033[J")
	fmt.Fprint(w, b.String())
}
