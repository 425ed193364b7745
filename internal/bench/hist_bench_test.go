package bench

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHistogramPercentiles compares the histogram with exact percentiles
// of the same samples: within its 1/64 precision.
func TestHistogramPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var exact []float64
	for range 100000 {
		d := time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))
		h.record(d)
		exact = append(exact, float64(d.Microseconds())/1000)
	}
	sort.Float64s(exact)
	p := h.summary()
	require.Equal(t, uint64(len(exact)), p.Count)
	for _, c := range []struct{ got, q float64 }{{p.P50, 0.50}, {p.P90, 0.90}, {p.P99, 0.99}} {
		want := exact[int(c.q*float64(len(exact)))-1]
		require.InEpsilon(t, want, c.got, 0.02, "p%.0f", 100*c.q)
	}
	require.Equal(t, exact[len(exact)-1], p.Max)
}

// TestHistogramBuckets checks that bucketMid inverts bucketOf to within a
// bucket's width over the whole range.
func TestHistogramBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 127, 128, 129, 1000, 12345, 1 << 20, 1<<40 + 12345, 1<<63 + 1} {
		i := bucketOf(v)
		require.Less(t, i, len(histogram{}.counts), "v=%d", v)
		mid := bucketMid(i)
		require.InEpsilon(t, float64(v)+1, mid+1, 1.0/64, "v=%d", v)
	}
	var h histogram
	require.Equal(t, Percentiles{}, h.summary())
	h.recordN(5*time.Millisecond, 3)
	require.Equal(t, uint64(3), h.summary().Count)
	require.InEpsilon(t, 5.0, h.summary().P99, 0.02)
}

// TestLatencies follows orders from their push marks to their commit.
func TestLatencies(t *testing.T) {
	l := newLatencies()
	t0 := time.Unix(1000, 0)
	l.queued(100, t0)
	l.queued(200, t0.Add(time.Second))
	// Orders 1-50 (waited two seconds) and 101-200 (one second) commit
	// together two seconds in.
	var ids []string
	for i := 1; i <= 200; i++ {
		if i <= 50 || i > 100 {
			ids = append(ids, "ORD-abc123-"+pad(i))
		}
	}
	l.durable(append(ids, "not-an-order"), t0.Add(2*time.Second))
	// Order 250 commits before its push is marked.
	l.durable([]string{"ORD-abc123-00000250"}, t0.Add(3*time.Second))
	l.queued(300, t0.Add(2500*time.Millisecond))
	l.resolve()
	p := l.hist.summary()
	require.Equal(t, uint64(151), p.Count)
	require.InEpsilon(t, 1000.0, p.P50, 0.02)
	require.InEpsilon(t, 2000.0, p.P90, 0.02)
	require.InEpsilon(t, 2000.0, p.Max, 0.02)
	require.Equal(t, t0.Add(3*time.Second), l.lastDurable())
	_, ok := seqOf("ORD-x-")
	require.False(t, ok)
}

func pad(i int) string {
	s := "00000000" + itoa(i)
	return s[len(s)-8:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// BenchmarkLatenciesDurable is the cost a worker pays per committed batch
// of 5000 when the benchmark records latency.
func BenchmarkLatenciesDurable(b *testing.B) {
	l := newLatencies()
	now := time.Now()
	for i := 1; i <= 100; i++ {
		l.queued(i*5000, now)
	}
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = "ORD-abc123-" + pad(250000+i)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.durable(ids, now)
	}
	b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "orders/s")
}
