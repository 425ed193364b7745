package bench

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a reported percentile is within 1/64 (1.6%) of the true value.
const subBits = 6

// histogram is a fixed-size log-linear latency histogram in microseconds:
// constant memory however many samples it holds. It is safe for concurrent
// use.
type histogram struct {
	mu     sync.Mutex
	counts [(64-subBits+1)<<subBits + 1<<subBits]uint64
	n      uint64
	max    uint64
}

func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	k := bits.Len64(v) - 1 // v is in [2^k, 2^(k+1))
	shift := k - subBits
	return (k-subBits+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketMid is the middle of bucket i, in microseconds.
func bucketMid(i int) float64 {
	if i < 2<<subBits {
		return float64(i)
	}
	k := i>>subBits + subBits - 1
	m := uint64(i&(1<<subBits-1) + 1<<subBits)
	lo := m << (k - subBits)
	width := uint64(1) << (k - subBits)
	return float64(lo) + float64(width-1)/2
}

// record adds one sample.
func (h *histogram) record(d time.Duration) {
	h.recordN(d, 1)
}

// recordN adds n samples of the same value.
func (h *histogram) recordN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	v := uint64(max(d.Microseconds(), 0))
	h.mu.Lock()
	h.counts[bucketOf(v)] += n
	h.n += n
	h.max = max(h.max, v)
	h.mu.Unlock()
}

// Percentiles summarises a latency distribution in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`  // samples
	P50   float64 `json:"p50_ms"` // median
	P90   float64 `json:"p90_ms"` // 90th percentile
	P99   float64 `json:"p99_ms"` // 99th percentile
	Max   float64 `json:"max_ms"` // largest sample
}

// summary returns the distribution's percentiles.
func (h *histogram) summary() Percentiles {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := Percentiles{Count: h.n, Max: float64(h.max) / 1000}
	if h.n == 0 {
		return p
	}
	q := func(f float64) float64 {
		want := max(uint64(math.Ceil(f*float64(h.n))), 1)
		var seen uint64
		for i, c := range h.counts {
			seen += c
			if seen >= want {
				return min(bucketMid(i), float64(h.max)) / 1000
			}
		}
		return float64(h.max) / 1000
	}
	p.P50, p.P90, p.P99 = q(0.50), q(0.90), q(0.99)
	return p
}
