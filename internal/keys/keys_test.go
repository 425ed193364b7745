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

// orderKeys and lookupKeys are every key of s, by the pattern meant to find it.
func orderKeys(s Space) []string {
	return []string{s.Queue(), s.Processing("w1"), s.Processing("host:123:abc"), s.Inflight("w1"),
		s.Workers(), s.Dedup(), s.Produced(), s.Events()}
}

func lookupKeys(s Space) []string {
	return []string{s.LookupVersion(), s.LookupRebuild(), s.Lookup(1, "products"), s.Lookup(42, "currencies"), s.Lookup(-1, "zipcodes")}
}

var prefixes = []string{"", "tenant1:", "test-abc_123:", "t*", "a?b", "x[1]", "we[ir]d]", `back\slash`, "{hash}:", "^[!]*?:"}

func TestKeysStartWithPrefixAndMatchTheirPattern(t *testing.T) {
	t.Parallel()
	for _, p := range prefixes {
		s := Space{Prefix: p}
		for _, k := range orderKeys(s) {
			require.True(t, strings.HasPrefix(k, p+"orders:"), "%q", k)
			require.True(t, globMatch(s.OrdersPattern(), k), "%q ~ %q", s.OrdersPattern(), k)
			require.False(t, globMatch(s.LookupsPattern(), k), "%q ~ %q", s.LookupsPattern(), k)
		}
		for _, k := range lookupKeys(s) {
			require.True(t, strings.HasPrefix(k, p+"lookups:"), "%q", k)
			require.True(t, globMatch(s.LookupsPattern(), k), "%q ~ %q", s.LookupsPattern(), k)
			require.False(t, globMatch(s.OrdersPattern(), k), "%q ~ %q", s.OrdersPattern(), k)
		}
	}
}

func TestPatternsDoNotReachOtherPrefixes(t *testing.T) {
	t.Parallel()
	// A glob character in a prefix is literal: tenant "t*" must not clear
	// tenant "tX", nor "x[1]" clear "x1".
	for _, p := range prefixes {
		s := Space{Prefix: p}
		for _, q := range append(prefixes, "tX", "aXb", "x1", "", "other:", "tenant1:sub:") {
			if q == p {
				continue
			}
			other := Space{Prefix: q}
			for _, k := range append(orderKeys(other), lookupKeys(other)...) {
				if strings.HasPrefix(k, p+"orders:") || strings.HasPrefix(k, p+"lookups:") {
					continue // genuinely inside p's namespace, e.g. p "" and q "orders:"
				}
				require.False(t, globMatch(s.OrdersPattern(), k), "prefix %q pattern %q matches %q", p, s.OrdersPattern(), k)
				require.False(t, globMatch(s.LookupsPattern(), k), "prefix %q pattern %q matches %q", p, s.LookupsPattern(), k)
			}
		}
	}
}

func TestPatternsEscapeGlobCharacters(t *testing.T) {
	t.Parallel()
	tests := []struct{ prefix, orders, lookups string }{
		{"", "orders:*", "lookups:*"},
		{"tenant1:", "tenant1:orders:*", "tenant1:lookups:*"},
		{"t*", `t\*orders:*`, `t\*lookups:*`},
		{"a?[b]", `a\?\[b\]orders:*`, `a\?\[b\]lookups:*`},
		{`a\b`, `a\\borders:*`, `a\\blookups:*`},
	}
	for _, tc := range tests {
		s := Space{Prefix: tc.prefix}
		require.Equal(t, tc.orders, s.OrdersPattern())
		require.Equal(t, tc.lookups, s.LookupsPattern())
	}
}

func TestKeyNames(t *testing.T) {
	t.Parallel()
	s := Space{Prefix: "p:"}
	require.Equal(t, "p:orders:ingestion", s.Queue())
	require.Equal(t, "p:orders:processing:w1", s.Processing("w1"))
	require.Equal(t, "p:orders:inflight:w1", s.Inflight("w1"))
	require.Equal(t, "p:orders:workers", s.Workers())
	require.Equal(t, "p:orders:dedup", s.Dedup())
	require.Equal(t, "p:orders:stats:produced", s.Produced())
	require.Equal(t, "p:orders:events", s.Events())
	require.Equal(t, "p:lookups:version", s.LookupVersion())
	require.Equal(t, "p:lookups:7:products", s.Lookup(7, "products"))
	require.Equal(t, "p:lookups:rebuild", s.LookupRebuild())
	require.Equal(t, "orders:ingestion", Space{}.Queue(), "the zero Space has no prefix")

	// Every key is distinct, and per-worker keys differ by worker.
	all := append(orderKeys(s), lookupKeys(s)...)
	seen := map[string]bool{}
	for _, k := range all {
		require.False(t, seen[k], "%q twice", k)
		seen[k] = true
	}
	require.NotEqual(t, s.Processing("w1"), s.Processing("w2"))
	require.NotEqual(t, s.Lookup(1, "products"), s.Lookup(2, "products"))
}
