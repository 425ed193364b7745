package order

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fast paths for unit_price, quantity and order_timestamp must give
// exactly what the slow paths they skip give: the same value, and never a
// verdict of their own on what they do not take.

// fuzzFastMatchesSlow fuzzes full, fast path and all, from seeds, and
// requires it to give what slow, the reference, gives for any input: the
// same value or the same error.
func fuzzFastMatchesSlow[T any](f *testing.F, seeds []string, full, slow func(json.RawMessage) (T, error)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := slow(json.RawMessage(s))
		got, gotErr := full(json.RawMessage(s))
		require.Equal(t, want, got, s)
		require.Equal(t, wantErr, gotErr, s)
	})
}

// centsSeeds are amounts at the edges of parseCentsFast.
var centsSeeds = []string{
	`24.99`, `"24.99"`, `1000`, `-5.00`, `0.5`, `"0.50"`, `-0`, `"-0.00"`, `0`, `999999999.99`, `-999999999.99`,
	`1000000000`, `007`, `"007"`, `00.5`, `0.125`, `1.005`, `1e2`, `" 5.5 "`, `5.`, `.5`, `+5`, `"5`, `5"`, `"`, `""`,
	`-`, `"-"`, `-.5`, `1.2.3`, `"1,5"`, `0x10`, `1_000`, `"\u0031"`, `1.000`,
}

// FuzzParseCentsFastMatchesSlow requires ParseCents, fast path and all, to
// give what parseCentsSlow, the reference, gives for any input: the same
// cents or the same error.
func FuzzParseCentsFastMatchesSlow(f *testing.F) {
	fuzzFastMatchesSlow(f, centsSeeds, ParseCents, parseCentsSlow)
}

// quantitySeeds are quantities at the edges of parseQuantityFast.
var quantitySeeds = []string{
	`1`, `"3"`, `-4`, `"-0"`, `0`, `007`, `"007"`, `999999999999999999`, `-999999999999999999`,
	`9999999999999999999`, `"+5"`, `" 5"`, `1.0`, `1e2`, `"5`, `""`, `-`, `"\u0035"`,
}

// FuzzParseQuantityFastMatchesSlow holds parseQuantity to parseQuantitySlow
// as FuzzParseCentsFastMatchesSlow holds ParseCents to parseCentsSlow.
func FuzzParseQuantityFastMatchesSlow(f *testing.F) {
	fuzzFastMatchesSlow(f, quantitySeeds, parseQuantity, parseQuantitySlow)
}

// timestampSeeds are timestamps at the edges of parseTimestampFast.
var timestampSeeds = []string{
	`"2024-05-01T12:30:00Z"`, `"2026-12-01T06:21:51.792051095Z"`, `"2024-05-01T12:30:00.5Z"`, `"2024-02-29T23:59:59Z"`,
	`"2023-02-29T00:00:00Z"`, `"1900-02-29T00:00:00Z"`, `"2000-02-29T00:00:00Z"`, `"2024-04-31T00:00:00Z"`,
	`"2024-00-01T00:00:00Z"`, `"2024-13-01T00:00:00Z"`, `"2024-05-00T00:00:00Z"`, `"2024-05-01T24:00:00Z"`,
	`"2024-05-01T23:60:00Z"`, `"2024-05-01T23:59:60Z"`, `"1969-12-31T23:59:59.999999999Z"`, `"0000-01-01T00:00:00Z"`,
	`"9999-12-31T23:59:59.999999999Z"`, `"2024-05-01T12:30:00.Z"`, `"2024-05-01T12:30:00.1234567891Z"`,
	`"2024-05-01T12:30:00,5Z"`, `"2024-05-01t12:30:00z"`, `"2024-05-01 12:30:00Z"`, `"2024-05-01T12:30:00+02:00"`,
	`" 2024-05-01T12:30:00Z"`, `"2024-05-01T12:30:00"`, `"1700000000"`, `1700000000.25`, `"2024-05-01T12:30:00Z`,
	`"+024-05-01T12:30:00Z"`, `"2024-05-01T12:30:0aZ"`, `"2024-05-01T12:30:00\u005a"`,
	// As Python writes them: isoformat() naive and aware, strftime's %z and %Z.
	`"2026-12-02T10:11:12.123456"`, `"2026-12-02T10:11:12.123456+05:30"`, `"2026-12-02 10:11:12+0000"`,
	`"2026-12-02T10:11:12.123456-0530"`, `"2026-12-02 10:11:12 UTC"`, `"2026-12-02 10:11:12 UTC+05:30"`,
	`"2026-12-02 10:11:12 GMT"`, `"2026-12-02 10:11:12 EST"`, `"2026-12-02 10:11:12 +05:30"`, `"2026-12-02T10:11:12+05"`,
	`"2026-12-02 10:11:12UTC"`, `"2026-12-02 10:11:12 UTCUTC"`, `"2026-12-02 10:11:12 UTC+5:30"`,
}

// FuzzParseTimestampFastMatchesSlow holds parseTimestamp to
// parseTimestampSlow as FuzzParseCentsFastMatchesSlow holds ParseCents to
// parseCentsSlow.
func FuzzParseTimestampFastMatchesSlow(f *testing.F) {
	fuzzFastMatchesSlow(f, timestampSeeds, parseTimestamp, parseTimestampSlow)
}

// fastCase is one input of a fast path: whether the fast path takes it, and
// what the whole function returns for it, value or error.
type fastCase[T any] struct {
	in   string
	fast bool
	want T      // when it decodes
	err  string // when it does not
}

// runFastCases requires, for each case, that fast takes the input or not as
// the case says, that full returns exactly what slow (the reference) does,
// and that this is the case's value or error.
func runFastCases[T any](t *testing.T, cases []fastCase[T], fast func([]byte) (T, bool), full, slow func(json.RawMessage) (T, error)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			_, took := fast([]byte(tc.in))
			require.Equal(t, tc.fast, took)
			got, err := full(json.RawMessage(tc.in))
			want, wantErr := slow(json.RawMessage(tc.in))
			require.Equal(t, want, got)
			require.Equal(t, wantErr, err)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseCentsFastPath(t *testing.T) {
	t.Parallel()
	tests := []fastCase[int64]{
		{in: `24.99`, fast: true, want: 2499},
		{in: `"249.99"`, fast: true, want: 24999},
		{in: `1000`, fast: true, want: 100000},
		{in: `-5.00`, fast: true, want: -500},
		{in: `0.5`, fast: true, want: 50},
		{in: `"0.50"`, fast: true, want: 50},
		{in: `-0`, fast: true, want: 0},
		{in: `"-0.00"`, fast: true, want: 0},
		{in: `999999999.99`, fast: true, want: 99999999999},
		{in: `-999999999.99`, fast: true, want: -99999999999},
		{in: `1000000000`, want: 100000000000},                    // ten digits: left to the range checks
		{in: `1000000000.01`, err: "1000000000.01: out of range"}, // likewise
		{in: `0.125`, want: 13},                                   // three decimals round
		{in: `1.000`, want: 100},                                  // even when they are zeros
		{in: `1e2`, want: 10000},                                  // exponents parse as floats
		{in: `" 5.5 "`, want: 550},                                // padding is trimmed
		{in: `"\u0031"`, want: 100},
		{in: `007`, err: `"007" is not a decimal number`}, // JSON has no leading zeros
		{in: `"007"`, err: `"007" is not a decimal number`},
		{in: `00.5`, err: `"00.5" is not a decimal number`},
		{in: `-007.50`, err: `"-007.50" is not a decimal number`},
		{in: `5.`, err: `"5." is not a decimal number`},
		{in: `.5`, err: `".5" is not a decimal number`},
		{in: `-.5`, err: `"-.5" is not a decimal number`},
		{in: `+5`, err: `"+5" is not a decimal number`},
		{in: `-`, err: `"-" is not a decimal number`},
		{in: `""`, err: `"" is not a decimal number`},
		{in: `"1,5"`, err: `"1,5" is not a decimal number`},
		{in: `5"`, err: `"5\"" is not a decimal number`},
		{in: `"5`, err: "unexpected end of JSON input"},
		{in: `"`, err: "unexpected end of JSON input"},
	}
	runFastCases(t, tests, parseCentsFast, ParseCents, parseCentsSlow)
}

func TestParseQuantityFastPath(t *testing.T) {
	t.Parallel()
	tests := []fastCase[int64]{
		{in: `3`, fast: true, want: 3},
		{in: `"3"`, fast: true, want: 3},
		{in: `-4`, fast: true, want: -4},
		{in: `"-0"`, fast: true, want: 0},
		{in: `"007"`, fast: true, want: 7}, // strconv.ParseInt allows leading zeros
		{in: `999999999999999999`, fast: true, want: 999999999999999999},
		{in: `9223372036854775807`, want: 9223372036854775807}, // 19 digits: left to strconv
		{in: `99999999999999999999`, want: 9223372036854775807},
		{in: `"+5"`, want: 5},
		{in: `" 5 "`, want: 5},
		{in: `1e2`, want: 100},
		{in: `2.0`, want: 2},
		{in: `1.5`, err: `"1.5" is not a whole number`},
		{in: `""`, err: `"" is not a whole number`},
		{in: `-`, err: `"-" is not a whole number`},
		{in: `"5`, err: "unexpected end of JSON input"},
	}
	runFastCases(t, tests, parseQuantityFast, parseQuantity, parseQuantitySlow)
}

func TestParseTimestampFastPath(t *testing.T) {
	t.Parallel()
	tests := []fastCase[time.Time]{
		{in: `"2024-05-01T12:30:00Z"`, fast: true, want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: `"2026-12-01T06:21:51.792051095Z"`, fast: true, want: time.Date(2026, 12, 1, 6, 21, 51, 792051095, time.UTC)},
		{in: `"2024-05-01T12:30:00.5Z"`, fast: true, want: time.Date(2024, 5, 1, 12, 30, 0, 5e8, time.UTC)},
		{in: `"2024-02-29T23:59:59Z"`, fast: true, want: time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{in: `"2000-02-29T00:00:00Z"`, fast: true, want: time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		{in: `"1970-01-01T00:00:00Z"`, fast: true, want: time.Unix(0, 0).UTC()},
		{in: `"2100-03-01T00:00:00Z"`, fast: true, want: time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: `"2024-12-31T23:59:59.000000001Z"`, fast: true, want: time.Date(2024, 12, 31, 23, 59, 59, 1, time.UTC)},
		{in: `"9999-12-31T23:59:59.999999999Z"`, fast: true, want: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{in: `"1969-12-31T23:59:59Z"`, err: "year 1969 is out of range"},
		{in: `"2024-05-01T12:30:00.1234567891Z"`, want: time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.UTC)},
		{in: `"2024-05-01T14:30:00+02:00"`, want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: `"2024-05-01 12:30:00"`, want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: `" 2024-05-01T12:30:00Z "`, want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: `"2024-05-01T12:30:00\u005a"`, want: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)},
		{in: `"1700000000"`, want: time.Unix(1700000000, 0).UTC()},
		{in: `1700000000`, want: time.Unix(1700000000, 0).UTC()},
		{in: `"2023-02-29T00:00:00Z"`, err: `"2023-02-29T00:00:00Z" is not an RFC 3339 timestamp`},
		{in: `"1900-02-29T00:00:00Z"`, err: `"1900-02-29T00:00:00Z" is not an RFC 3339 timestamp`},
		{in: `"2024-04-31T00:00:00Z"`, err: `"2024-04-31T00:00:00Z" is not an RFC 3339 timestamp`},
		{in: `"2024-13-01T00:00:00Z"`, err: `"2024-13-01T00:00:00Z" is not an RFC 3339 timestamp`},
		{in: `"2024-05-01T24:00:00Z"`, err: `"2024-05-01T24:00:00Z" is not an RFC 3339 timestamp`},
		{in: `"2024-05-01T23:59:60Z"`, err: `"2024-05-01T23:59:60Z" is not an RFC 3339 timestamp`},
		{in: `"2024-05-01T12:30:00.Z"`, err: `"2024-05-01T12:30:00.Z" is not an RFC 3339 timestamp`},
		{in: `"2024-05-01t12:30:00z"`, err: `"2024-05-01t12:30:00z" is not an RFC 3339 timestamp`},
		{in: `"0000-01-01T00:00:00Z"`, err: "year 0 is out of range"},
		{in: `"2024-05-01T12:30:00Z`, err: "unexpected end of JSON input"},
	}
	runFastCases(t, tests, parseTimestampFast, parseTimestamp, parseTimestampSlow)
}

func TestTrimSpaceMatchesStrings(t *testing.T) {
	t.Parallel()
	tests := []string{
		"", " ", "ORD-1", " ORD-1", "ORD-1 ", "\tORD-1\n", "\u00a0ORD-1", "ORD-1\u00a0", "ORD-1\u2003", "\u0085",
		"ünïcødé ✓", "a", "\x7f", "é",
	}
	for _, s := range tests {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, strings.TrimSpace(s), trimSpace(s))
		})
	}
}

func TestCurrencyCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" when refused
	}{
		{"USD", "USD"},
		{"usd", "USD"},
		{"Eur", "EUR"},
		{"US", ""},
		{"USDX", ""},
		{"US1", ""},
		{"ÉUR", ""},
		{"éur", ""},
		{"ǆab", ""}, // upper-cases to a non-ASCII letter
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, ok := currencyCode(tc.in)
			require.Equal(t, tc.want != "", ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestDecodeChecksUTF8AfterFastPath covers the fast path running before the
// UTF-8 check: what it parses must still be refused for invalid UTF-8, in
// any field, and accepted when it is valid non-ASCII.
func TestDecodeChecksUTF8AfterFastPath(t *testing.T) {
	t.Parallel()
	valid := string(with(t, map[string]any{"user_agent": "ua"}))
	tests := []struct {
		name   string
		raw    string
		reason string // "" when accepted
	}{
		{"invalid in user_agent", strings.Replace(valid, `"ua"`, "\"u\xffa\"", 1), ReasonInvalidUTF8},
		{"invalid in a long string", strings.Replace(valid, `"ua"`, `"`+strings.Repeat("u", 20)+"\xc3"+`"`, 1), ReasonInvalidUTF8},
		{"invalid in a key", strings.Replace(valid, `"user_agent"`, "\"user_\xe9agent\"", 1), ReasonInvalidUTF8},
		{"non-ASCII", strings.Replace(valid, `"ua"`, `"Mozilla/5.0 ünïcødé ✓"`, 1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var f fastWire
			require.Equal(t, tc.name != "invalid in a key", f.decode([]byte(tc.raw)))
			require.False(t, f.ascii)
			o, err := Decode([]byte(tc.raw))
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, "Mozilla/5.0 ünïcødé ✓", o.UserAgent)
				return
			}
			require.Equal(t, tc.reason, rejection(t, err).Reason)
		})
	}
}

// TestFastStrEveryOffset puts each byte str must stop at, and a non-ASCII
// one it must note, at every offset of strings around the eight-byte
// blocks it reads, with and without bytes after the string.
func TestFastStrEveryOffset(t *testing.T) {
	t.Parallel()
	for n := 0; n <= 20; n++ {
		for _, tail := range []string{"", `,"k":"v"}`} {
			plain := `"` + strings.Repeat("a", n) + `"` + tail
			p := fastParser{b: []byte(plain)}
			start, end, ok := p.str()
			require.True(t, ok, plain)
			require.Equal(t, []int{1, n + 1, n + 2}, []int{start, end, p.i}, plain)
			require.Zero(t, p.high&(lsb<<7), plain)
			for k := 0; k < n; k++ {
				for _, c := range []byte{'\\', 0, 0x1f, '\n'} {
					b := []byte(plain)
					b[1+k] = c
					p := fastParser{b: b}
					_, _, ok := p.str()
					require.False(t, ok, "%q", b)
				}
				b := []byte(plain)
				b[1+k] = '"' // ends the string early
				p := fastParser{b: b}
				start, end, ok := p.str()
				require.True(t, ok, "%q", b)
				require.Equal(t, []int{1, k + 1, k + 2}, []int{start, end, p.i}, "%q", b)
				require.Zero(t, p.high&(lsb<<7), "%q", b)

				b = []byte(plain)
				b[1+k] = 0xc3
				p = fastParser{b: b}
				_, end, ok = p.str()
				require.True(t, ok, "%q", b)
				require.Equal(t, n+1, end, "%q", b)
				require.NotZero(t, p.high&(lsb<<7), "%q", b)
			}
		}
	}
}

// TestDecodeInvalidUTF8AtEveryOffset moves one invalid byte through a
// message the fast path parses: wherever it is, in a string or not, the
// verdict is the one the UTF-8 check gave when it ran before the fast path.
func TestDecodeInvalidUTF8AtEveryOffset(t *testing.T) {
	t.Parallel()
	valid := string(with(t, map[string]any{"user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:127.0)"}))
	for i := range valid {
		b := []byte(valid)
		b[i] = 0xff
		_, err := Decode(b)
		require.Equal(t, ReasonInvalidUTF8, rejection(t, err).Reason, "byte %d of %s", i, valid)
	}
}
