package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/pipeline"
)

func TestPrintRatesPerSecond(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := pipeline.Stats{TakenAt: t0, Produced: 100, PromotedTotal: 50, Batches: 1}
	cur := pipeline.Stats{TakenAt: t0.Add(2 * time.Second), Produced: 1100, PromotedTotal: 850, Batches: 5, QueueDepth: 10}
	var b bytes.Buffer
	printRates(&b, &prev, cur)
	out := b.String()
	require.Regexp(t, `produced\s+500\.0\n`, out)
	require.Regexp(t, `promoted\s+400\.0\n`, out)
	require.Regexp(t, `batches\s+2\.0\n`, out)
	require.Regexp(t, `queue depth change\s+5\.0\n`, out)
	b.Reset()
	printRates(&b, nil, cur)
	require.Contains(t, b.String(), "next refresh")
}

func TestRedrawInPlace(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	redraw(&b, true, "a\nbb\n")
	require.Equal(t, "\033[Ha\033[K\nbb\033[K\n\033[J", b.String())
	b.Reset()
	redraw(&b, false, "a\nbb\n")
	require.Equal(t, "a\nbb\n", b.String(), "no escapes when not on a terminal")
}

func TestProgressShowsETA(t *testing.T) {
	t.Parallel()
	require.Equal(t, " ETA 5s", eta(500, 1000, 100))
	require.Equal(t, " ETA 2m30s", eta(0+1, 15001, 100))
	require.Empty(t, eta(1000, 1000, 100), "nothing left")
	require.Empty(t, eta(0, 1000, 0), "no rate yet")

	var b bytes.Buffer
	p := newProgress(&b, "generate")
	p.start = time.Now().Add(-10 * time.Second)
	p.update(100, 1000, 0)
	line := b.String()
	require.True(t, strings.HasSuffix(line, "\n"), "not a terminal: whole lines")
	require.Regexp(t, `generate \[=+ +\] 100/1000\s+10% \d+/s ETA 1m3\ds\n`, line)
}
