package keys

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// globMatch matches s against a Redis SCAN/KEYS pattern: '*' is any run of
// bytes (including none, and including '/' and ':'), '?' one byte, [abc],
// [a-z] and [^abc] classes, and '\' escapes the next byte.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	case '[':
		if s == "" {
			return false
		}
		p := pattern[1:]
		negate := strings.HasPrefix(p, "^")
		if negate {
			p = p[1:]
		}
		matched := false
		for {
			if p == "" {
				return false // unterminated class matches nothing here
			}
			if p[0] == ']' {
				p = p[1:]
				break
			}
			if p[0] == '\\' && len(p) > 1 {
				matched = matched || p[1] == s[0]
				p = p[2:]
				continue
			}
			if len(p) > 2 && p[1] == '-' && p[2] != ']' {
				matched = matched || (p[0] <= s[0] && s[0] <= p[2])
				p = p[3:]
				continue
			}
			matched = matched || p[0] == s[0]
			p = p[1:]
		}
		return matched != negate && globMatch(p, s[1:])
	case '\\':
		if len(pattern) > 1 {
			return s != "" && s[0] == pattern[1] && globMatch(pattern[2:], s[1:])
		}
	}
	return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
}

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"orders:*", "orders:ingestion", true},
		{"orders:*", "orders:", true},
		{"orders:*", "lookups:1", false},
		{"a*c", "a/b/c", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[ab]x", "bx", true},
		{"[^ab]x", "bx", false},
		{"[a-c]x", "cx", true},
		{`\*x`, "*x", true},
		{`\*x`, "ax", false},
		{`a\\b`, `a\b`, true},
		{`\[1\]`, "[1]", true},
		{`\[1\]`, "1", false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, globMatch(tc.pattern, tc.s), "%q ~ %q", tc.pattern, tc.s)
	}
}

// allKeys is every key of s except the queue.
func allKeys(s Space) []string {
	return []string{s.Processing("w1"), s.Processing("host:123:abc"), s.Inflight("w1"),
		s.Workers(), s.WorkerInfo(), s.Dedup(), s.Produced(), s.Account(), s.Events(), s.Lock("refresh"),
		s.LookupVersion(), s.LookupRebuild(), s.Lookup(1, "products"), s.Lookup(42, "currencies"), s.Lookup(-1, "zipcodes"),
		s.Window(), s.WindowRevenue(), s.Promotions(), s.ProducersWaiting(), s.ProducerWaitMs(), s.Leader()}
}

// prefixes are valid key prefixes (config refuses braces), several of them
// glob characters and prefixes of each other.
var prefixes = []string{"", "tenant1:", "test-abc_123:", "t*", "a?b", "x[1]", "we[ir]d]", `back\slash`, "^[!]*?:",
	"orders:", "orders:eu:", "orders:eu:x:", "tenant1:sub:"}

// referenceKeys are what the Python reference writes besides the queue.
var referenceKeys = []string{"orders:dedup", "orders:processing", "orders:processing:counter", "orders:ingestion:counter",
	"lookups", "backpressure:ingestion", "pipeline:events"}

func TestEveryKeySharesTheQueuesClusterSlot(t *testing.T) {
	t.Parallel()
	for _, p := range prefixes {
		s := Space{Prefix: p}
		want := slot(s.Queue())
		for _, k := range allKeys(s) {
			require.True(t, strings.HasPrefix(k, s.Namespace()), "%q", k)
			require.Equal(t, want, slot(k), "%q and the queue %q must share a slot", k, s.Queue())
			require.True(t, globMatch(s.Pattern(), k), "%q ~ %q", s.Pattern(), k)
		}
		require.False(t, globMatch(s.Pattern(), s.Queue()), "the queue is cleared by name")
	}
	require.Equal(t, slot("orders:ingestion"), slot("redpg:{orders:ingestion}:account"))
	require.Equal(t, uint16(12182), slot("foo"), "the slot function agrees with Redis's CLUSTER KEYSLOT foo")
}

func TestPatternsDoNotReachOtherDeployments(t *testing.T) {
	t.Parallel()
	// A prefix that is a prefix of another's ("orders:eu:" and
	// "orders:eu:x:"), or that holds glob characters, must not reach the
	// other's keys, nor the reference's.
	for _, p := range prefixes {
		s := Space{Prefix: p}
		for _, q := range append(prefixes, "tX", "aXb", "x1", "other:") {
			if q == p {
				continue
			}
			other := Space{Prefix: q}
			for _, k := range append(allKeys(other), other.Queue()) {
				require.False(t, globMatch(s.Pattern(), k), "prefix %q pattern %q matches %q", p, s.Pattern(), k)
				require.False(t, globMatch(s.LookupsPattern(), k), "prefix %q pattern %q matches %q", p, s.LookupsPattern(), k)
			}
		}
		for _, k := range referenceKeys {
			require.False(t, globMatch(s.Pattern(), k), "%q", k)
			require.NotContains(t, allKeys(s), k)
		}
	}
}

func TestKeyNames(t *testing.T) {
	t.Parallel()
	s := Space{Prefix: "p:"}
	require.Equal(t, "p:orders:ingestion", s.Queue())
	require.Equal(t, "redpg:{p:orders:ingestion}:processing:w1", s.Processing("w1"))
	require.Equal(t, "redpg:{p:orders:ingestion}:inflight:w1", s.Inflight("w1"))
	require.Equal(t, "redpg:{p:orders:ingestion}:workers", s.Workers())
	require.Equal(t, "redpg:{p:orders:ingestion}:dedup", s.Dedup())
	require.Equal(t, "redpg:{p:orders:ingestion}:stats:produced", s.Produced())
	require.Equal(t, "redpg:{p:orders:ingestion}:events", s.Events())
	require.Equal(t, "redpg:{p:orders:ingestion}:lookups:version", s.LookupVersion())
	require.Equal(t, "redpg:{p:orders:ingestion}:lookups:7:products", s.Lookup(7, "products"))
	require.Equal(t, `redpg:{p:orders:ingestion}:*`, s.Pattern())
	require.Equal(t, `redpg:{t\*orders:ingestion}:*`, Space{Prefix: "t*"}.Pattern())
	require.Equal(t, "orders:ingestion", Space{}.Queue(), "the zero Space pushes where the reference does")
	require.Equal(t, []string{"orders:ingestion:counter", "backpressure:ingestion"}, Space{}.ReferenceCounters())

	// Every key is distinct, and per-worker keys differ by worker.
	seen := map[string]bool{}
	for _, k := range append(allKeys(s), s.Queue()) {
		require.False(t, seen[k], "%q twice", k)
		seen[k] = true
	}
	require.NotEqual(t, s.Processing("w1"), s.Processing("w2"))
}

// slot is Redis Cluster's key slot: CRC16 (XMODEM) of the key's hash tag,
// or of the whole key when it has none, modulo 16384.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
