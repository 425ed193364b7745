package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/cli"
	"github.com/redpg/redpg/internal/schema"
	"github.com/redpg/redpg/internal/testenv"
)

// result is one redpg invocation's outcome.
type result struct {
	code           int
	stdout, stderr string
}

// run invokes redpg in-process with the given arguments.
func run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Execute(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runIn invokes redpg against env's private schema and key prefix.
func runIn(t *testing.T, env *testenv.Env, args ...string) result {
	t.Helper()
	global := []string{"--database-url", testenv.DatabaseURL(), "--redis-url", testenv.RedisURL(),
		"--schema", env.Schema, "--key-prefix", env.Prefix, "--env-file", "/nonexistent"}
	return run(t, append(args, global...)...)
}

func requireOK(t *testing.T, r result) {
	t.Helper()
	require.Zero(t, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
}

func TestGenerateProcessPromoteStatsReconcile(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)

	gen := runIn(t, env, "generate", "--count", "2000", "--duplicates", "0.05", "--seed", "99")
	requireOK(t, gen)
	m := regexp.MustCompile(`queued 2000 orders .*: (\d+) unique valid, (\d+) duplicates, 0 invalid`).FindStringSubmatch(gen.stdout)
	require.NotNil(t, m, gen.stdout)
	unique, _ := strconv.ParseInt(m[1], 10, 64)
	dups, _ := strconv.ParseInt(m[2], 10, 64)
	require.Equal(t, int64(2000), unique+dups)
	require.Positive(t, dups)

	proc := runIn(t, env, "process", "--workers", "2", "--until-empty", "--batch-size", "500")
	requireOK(t, proc)
	require.Contains(t, proc.stdout, "processed 2000 messages")
	require.Contains(t, proc.stderr, "processing with 2 workers")

	requireOK(t, runIn(t, env, "promote"))

	st := runIn(t, env, "stats", "--json")
	requireOK(t, st)
	var stats map[string]any
	require.NoError(t, json.Unmarshal([]byte(st.stdout), &stats), st.stdout)
	for _, k := range []string{"queue_depth", "processing", "dedup_window_size", "lookup_cache_size", "staging_rows",
		"production_rows", "rejected_rows", "duplicates_total", "materialized_views"} {
		require.Contains(t, stats, k)
	}
	require.EqualValues(t, 0, stats["queue_depth"])
	require.EqualValues(t, 0, stats["processing"])
	require.EqualValues(t, 0, stats["staging_rows"])
	require.EqualValues(t, unique, stats["production_rows"])
	require.EqualValues(t, unique, stats["dedup_window_size"])
	require.EqualValues(t, dups, stats["duplicates_total"])
	require.EqualValues(t, 0, stats["rejected_rows"])
	require.EqualValues(t, 32, stats["lookup_cache_size"])
	mvs, ok := stats["materialized_views"].(map[string]any)
	require.True(t, ok, "materialized_views is an object")
	require.Len(t, mvs, len(schema.Views))
	for _, v := range schema.Views {
		require.Contains(t, mvs, v)
		require.Positive(t, mvs[v])
	}
	require.Equal(t, unique, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))

	plain := runIn(t, env, "stats")
	requireOK(t, plain)
	require.Contains(t, plain.stdout, "production rows")

	rec := runIn(t, env, "reconcile")
	requireOK(t, rec)
	require.Contains(t, rec.stdout, "OK:")
	require.Contains(t, rec.stdout, "unaccounted  0")

	recJSON := runIn(t, env, "reconcile", "--json")
	requireOK(t, recJSON)
	var r map[string]any
	require.NoError(t, json.Unmarshal([]byte(recJSON.stdout), &r))
	require.EqualValues(t, 2000, r["produced"])
	require.EqualValues(t, 0, r["unaccounted"])
}

func TestReconcileExitsThreeWhenSomethingIsMissing(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	requireOK(t, runIn(t, env, "generate", "--count", "10"))
	// Lose two messages behind redpg's back.
	require.NoError(t, env.RDB.RPopCount(context.Background(), env.Keys.Queue(), 2).Err())
	rec := runIn(t, env, "reconcile")
	require.Equal(t, 3, rec.code, rec.stdout)
	require.Contains(t, rec.stdout, "PROBLEM")
}

func TestDemo(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	r := runIn(t, env, "demo", "--count", "3000", "--batch-size", "500")
	requireOK(t, r)
	require.Contains(t, r.stdout, "OK:")
	require.Contains(t, r.stdout, "[5/5] stats")
	require.Positive(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	requireOK(t, runIn(t, env, "generate", "--count", "300", "--invalid", "0.2", "--seed", "5"))
	requireOK(t, runIn(t, env, "process", "--workers", "1", "--until-empty"))
	rejected := env.Count(t, "SELECT count(*) FROM "+env.Tables.Rejected())
	require.Positive(t, rejected)

	list := runIn(t, env, "dlq", "list", "--json", "--limit", "1000")
	requireOK(t, list)
	var letters []map[string]any
	require.NoError(t, json.Unmarshal([]byte(list.stdout), &letters))
	require.Len(t, letters, int(rejected))

	id := strconv.FormatInt(int64(letters[0]["id"].(float64)), 10)
	show := runIn(t, env, "dlq", "show", id)
	requireOK(t, show)
	require.Contains(t, show.stdout, "reason:")
	require.Contains(t, show.stdout, "payload:")

	bad := runIn(t, env, "dlq", "show", "not-a-number")
	require.Equal(t, 2, bad.code)

	replay := runIn(t, env, "dlq", "replay", "--reason", "unknown_product")
	requireOK(t, replay)
	require.Contains(t, replay.stdout, "replayed")
	requireOK(t, runIn(t, env, "reconcile"))
}

func TestClearNeedsToBeToldWhat(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	r := runIn(t, env, "clear")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "say what to clear")

	requireOK(t, runIn(t, env, "generate", "--count", "100"))
	requireOK(t, runIn(t, env, "process", "--workers", "1", "--until-empty"))
	all := runIn(t, env, "clear", "--all")
	requireOK(t, all)
	require.Zero(t, env.Count(t, "SELECT count(*) FROM "+env.Tables.Orders()))
	n, err := env.RDB.Exists(context.Background(), env.Keys.Produced(), env.Keys.LookupVersion()).Result()
	require.NoError(t, err)
	require.Zero(t, n)
}

// requireOneLine checks that stderr is a single line naming where and what to start.
func requireOneLine(t *testing.T, r result, where string) {
	t.Helper()
	require.NotZero(t, r.code)
	msg := strings.TrimRight(r.stderr, "\n")
	require.NotContains(t, msg, "\n", "the error must be one line:\n%s", r.stderr)
	require.Contains(t, msg, where)
	require.Contains(t, msg, "start")
}

func TestUnreachableRedisIsOneLine(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	r := run(t, "stats", "--database-url", testenv.DatabaseURL(), "--redis-url", "redis://127.0.0.1:1/0",
		"--schema", env.Schema, "--env-file", "/nonexistent")
	requireOneLine(t, r, "127.0.0.1:1")
	require.Contains(t, r.stderr, "Redis")
}

func TestUnreachablePostgresIsOneLine(t *testing.T) {
	t.Parallel()
	r := run(t, "stats", "--database-url", "postgres://root@127.0.0.1:1/x", "--redis-url", testenv.RedisURL(), "--env-file", "/nonexistent")
	requireOneLine(t, r, "127.0.0.1:1")
	require.Contains(t, r.stderr, "PostgreSQL")
}

func TestPasswordsNeverReachStderr(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	const secret = "s3cr3t-Pa55"
	for _, args := range [][]string{
		{"stats", "--database-url", testenv.DatabaseURL(), "--redis-url", "redis://:" + secret + "@127.0.0.1:1/0", "--schema", env.Schema},
		{"stats", "--database-url", testenv.DatabaseURL(), "--redis-url", "redis://redpg-nobody:" + secret + "@127.0.0.1:6379/9", "--schema", env.Schema},
		{"stats", "--database-url", "postgres://root:" + secret + "@127.0.0.1:1/x", "--redis-url", testenv.RedisURL()},
		{"stats", "--database-url", "postgres://root:" + secret + "@127.0.0.1:5432/%zz", "--redis-url", testenv.RedisURL()},
	} {
		r := run(t, append(args, "--env-file", "/nonexistent")...)
		require.NotZero(t, r.code, "%v", args)
		require.NotEmpty(t, r.stderr)
		require.NotContains(t, r.stderr, secret, "%v leaked the password", args)
		require.NotContains(t, r.stdout, secret)
	}
}

// TestEveryCommandHasAnExample walks the command tree through --help.
func TestEveryCommandHasAnExample(t *testing.T) {
	t.Parallel()
	seen := 0
	var walk func(path []string)
	walk = func(path []string) {
		r := run(t, append(append([]string{}, path...), "--help")...)
		require.Zero(t, r.code, "%v --help: %s", path, r.stderr)
		require.Contains(t, r.stdout, "Example", "redpg %s --help", strings.Join(path, " "))
		seen++
		_, after, ok := strings.Cut(r.stdout, "Available Commands:\n")
		if !ok {
			return
		}
		block, _, _ := strings.Cut(after, "\n\n")
		for _, line := range strings.Split(block, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || fields[0] == "help" || fields[0] == "completion" {
				continue
			}
			walk(append(append([]string{}, path...), fields[0]))
		}
	}
	walk(nil)
	require.GreaterOrEqual(t, seen, 12, "the root, its commands and dlq's subcommands")
}

func TestUnknownCommandAndFlagAreUsageErrors(t *testing.T) {
	t.Parallel()
	r := run(t, "frobnicate")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "unknown command")
	r = run(t, "stats", "--no-such-flag")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "unknown flag")
	r = run(t, "generate", "--count", "0", "--env-file", "/nonexistent")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--count")
}

// Nonsense numbers are usage errors, never a quiet fallback to a default:
// `process --workers 0` used to run one worker forever.
func TestNonPositiveSettingsAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"process", "--workers", "0"},
		{"process", "--workers", "-3"},
		{"process", "--batch-size", "0"},
		{"process", "--lease", "0s"},
		{"demo", "--workers", "0"},
	} {
		r := run(t, append(args, "--env-file", "/nonexistent")...)
		require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		require.Contains(t, r.stderr, "must be positive", "%v", args)
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(envFile, []byte("WORKER_COUNT=0\n"), 0o600))
	r := run(t, "process", "--env-file", envFile)
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "WORKER_COUNT")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := run(t, "--version")
	requireOK(t, r)
	require.Regexp(t, `^redpg \S+\n$`, r.stdout)
}
