package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseDotEnv(t *testing.T) {
	t.Parallel()
	got, err := ParseDotEnv([]byte(`# redpg settings

DATABASE_URL=postgres://app:pw@db/shop
export REDIS_URL=redis://cache:6379/0
  WORKER_COUNT = 8  
DOUBLE="two words"
SINGLE='say "hi"'
HASH_IN_QUOTES="a #not a comment"
INLINE=value # a comment
NO_SPACE_HASH=abc#def
QUOTED_THEN_COMMENT="quoted" # trailing comment
EMPTY=
EMPTY_QUOTES=""
EQUALS=a=b=c
	# indented comment
WINDOWS=crlf` + "\r\n" + `LAST=1`))
	require.NoError(t, err)
	require.Equal(t, map[string]string{
		"DATABASE_URL":        "postgres://app:pw@db/shop",
		"REDIS_URL":           "redis://cache:6379/0",
		"WORKER_COUNT":        "8",
		"DOUBLE":              "two words",
		"SINGLE":              `say "hi"`,
		"HASH_IN_QUOTES":      "a #not a comment",
		"INLINE":              "value",
		"NO_SPACE_HASH":       "abc#def",
		"QUOTED_THEN_COMMENT": "quoted",
		"EMPTY":               "",
		"EMPTY_QUOTES":        "",
		"EQUALS":              "a=b=c",
		"WINDOWS":             "crlf",
		"LAST":                "1",
	}, got)
}

func TestParseDotEnvEmpty(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "\n\n", "# only a comment\n", "   \t\n"} {
		got, err := ParseDotEnv([]byte(in))
		require.NoError(t, err, "%q", in)
		require.Empty(t, got, "%q", in)
	}
}

func TestParseDotEnvLaterWins(t *testing.T) {
	t.Parallel()
	got, err := ParseDotEnv([]byte("A=1\nA=2\n"))
	require.NoError(t, err)
	require.Equal(t, "2", got["A"])
}

func TestParseDotEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"no equals sign", "A=1\nJUST_A_WORD\n", ".env line 2: want KEY=VALUE"},
		{"empty key", "\n\n=value", ".env line 3: want KEY=VALUE"},
		{"space in key", "MY KEY=1", ".env line 1: want KEY=VALUE"},
		{"tab in key", "MY\tKEY=1", ".env line 1: want KEY=VALUE"},
		{"quote in key", `"KEY"=1`, ".env line 1: want KEY=VALUE"},
		{"vertical tab in key", "A\vB=1", ".env line 1: want KEY=VALUE"},
		{"carriage return in key", "A\rB=1", ".env line 1: want KEY=VALUE"},
		{"unterminated double quote", "# c\nPASSWORD=\"abc", ".env line 2: unterminated quote in PASSWORD"},
		{"unterminated single quote", "X='abc", ".env line 1: unterminated quote in X"},
		{"mismatched quotes", `X="abc'`, ".env line 1: unterminated quote in X"},
		{"text after the closing quote", `X="abc" def`, ".env line 1: text after the closing quote in X"},
		{"two quoted strings", `X='it''s'`, ".env line 1: text after the closing quote in X"},
		{"line too long", "X=" + string(make([]byte, 2<<20)), ".env:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDotEnv([]byte(tc.in))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Nil(t, got)
		})
	}
}

// TestLookup uses t.Setenv, which rules out t.Parallel.
func TestLookup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	require.NoError(t, os.WriteFile(path, []byte("REDPG_TEST_LOOKUP_BOTH=file\nREDPG_TEST_LOOKUP_FILE=file\nREDPG_TEST_LOOKUP_EMPTY=file\n"), 0o600))
	t.Setenv("REDPG_TEST_LOOKUP_BOTH", "env")
	t.Setenv("REDPG_TEST_LOOKUP_EMPTY", "") // set but empty still beats the file

	get, err := Lookup(path)
	require.NoError(t, err)
	require.Equal(t, "env", get("REDPG_TEST_LOOKUP_BOTH"))
	require.Equal(t, "file", get("REDPG_TEST_LOOKUP_FILE"))
	require.Equal(t, "", get("REDPG_TEST_LOOKUP_EMPTY"))
	require.Equal(t, "", get("REDPG_TEST_LOOKUP_NEITHER"))

	// A missing file, or none at all, is not an error: the environment alone counts.
	for _, p := range []string{filepath.Join(dir, "missing.env"), ""} {
		get, err = Lookup(p)
		require.NoError(t, err, p)
		require.Equal(t, "env", get("REDPG_TEST_LOOKUP_BOTH"))
		require.Equal(t, "", get("REDPG_TEST_LOOKUP_FILE"))
	}

	// A malformed file is an error naming the file and the line.
	bad := filepath.Join(dir, "bad.env")
	require.NoError(t, os.WriteFile(bad, []byte("A=1\nnonsense\n"), 0o600))
	_, err = Lookup(bad)
	require.ErrorContains(t, err, bad)
	require.ErrorContains(t, err, "line 2")

	// A path that cannot be read (a directory) is an error too.
	_, err = Lookup(dir)
	require.Error(t, err)
}
