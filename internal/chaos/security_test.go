//go:build chaos

package chaos

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/redpg/redpg/internal/testenv"
)

// withPassword returns the test database URL with a TCP host and the given
// password. The local server trusts the connection and ignores the
// password, so the URL works while carrying a secret.
func withPassword(t testing.TB, port int, password string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(testenv.DatabaseURL())
	require.NoError(t, err)
	u := url.URL{Scheme: "postgres", User: url.UserPassword(cfg.User, password),
		Host: fmt.Sprintf("127.0.0.1:%d", port), Path: "/" + cfg.Database}
	return u.String()
}

// TestSecretsNeverPrinted runs the real binary with passwords in
// DATABASE_URL, REDIS_URL and PGBOUNCER_URL, on the success paths (stats,
// stats --json, generate, process with debug logging, reconcile, dlq list)
// and on the failure paths (servers not listening, a wrong Redis password,
// an unparsable URL), and requires that no password ever appears in
// anything the binary prints.
func TestSecretsNeverPrinted(t *testing.T) {
	const (
		pgSecret      = "PgSecret-4c1d-pw"
		redisSecret   = "RedisSecret-7e2a-pw"
		bouncerSecret = "BouncerSecret-91f0-pw"
		wrongSecret   = "WrongSecret-0b5e-pw"
	)
	secrets := []string{pgSecret, redisSecret, bouncerSecret, wrongSecret}
	env := testenv.New(t)
	rs := startRedis(t, redisSecret) // requirepass: the password is really used
	closed := testenv.FreePort(t)
	dbURL := withPassword(t, 5432, pgSecret)
	base := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + t.TempDir(),
		"POSTGRES_SCHEMA=" + env.Schema, "REDPG_KEY_PREFIX=" + env.Prefix}
	with := func(vars ...string) []string { return append(append([]string(nil), base...), vars...) }

	runs := []struct {
		name    string
		environ []string
		args    []string
		wantOK  bool
		mention string // what the output must say instead
	}{
		{"generate", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"generate", "--count", "500", "--invalid", "0.1"}, true, "queued 500 orders"},
		{"process with debug logs", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"process", "--workers", "2", "--until-empty", "--log-level", "debug"}, true, "processed 500 messages"},
		{"stats", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"stats"}, true, "production rows"},
		{"stats --json", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"stats", "--json"}, true, `"production_rows"`},
		{"reconcile", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"reconcile"}, true, "OK: arrived"},
		{"dlq list", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"dlq", "list"}, true, "REASON"},
		{"migrate", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL()), []string{"migrate"}, true, "127.0.0.1:5432"},
		{"redis not listening", with("DATABASE_URL="+dbURL, fmt.Sprintf("REDIS_URL=redis://:%s@127.0.0.1:%d/0", redisSecret, closed)),
			[]string{"stats"}, false, "cannot reach Redis"},
		{"rediss not listening", with("DATABASE_URL="+dbURL, fmt.Sprintf("REDIS_URL=rediss://redpg:%s@127.0.0.1:%d/0", redisSecret, closed)),
			[]string{"stats", "--log-level", "debug"}, false, "cannot reach Redis"},
		{"wrong redis password", with("DATABASE_URL="+dbURL, fmt.Sprintf("REDIS_URL=redis://:%s@127.0.0.1:%d/0", wrongSecret, rs.port)),
			[]string{"stats"}, false, "Redis at 127.0.0.1:"},
		{"postgres not listening", with("DATABASE_URL="+withPassword(t, closed, pgSecret), "REDIS_URL="+rs.URL()),
			[]string{"stats"}, false, "cannot reach PostgreSQL"},
		{"pgbouncer not listening", with("DATABASE_URL="+dbURL, "REDIS_URL="+rs.URL(), "PGBOUNCER_URL="+withPassword(t, closed, bouncerSecret)),
			[]string{"process", "--until-empty"}, false, "PGBOUNCER_URL"},
		{"unparsable database URL", with("DATABASE_URL=postgres://root:"+pgSecret+"@127.0.0.1:notaport/db", "REDIS_URL="+rs.URL()),
			[]string{"stats"}, false, "DATABASE_URL"},
		{"password given as a flag", with("REDIS_URL=" + rs.URL()), []string{"stats", "--database-url", withPassword(t, closed, pgSecret)}, false, "cannot reach PostgreSQL"},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			stdout, stderr, code := runRedpg(t, r.environ, r.args...)
			all := stdout + stderr
			if r.wantOK {
				require.Equal(t, 0, code, "redpg %s:\n%s", strings.Join(r.args, " "), all)
			} else {
				require.NotEqual(t, 0, code, "redpg %s must fail:\n%s", strings.Join(r.args, " "), all)
			}
			require.Contains(t, all, r.mention)
			for _, s := range secrets {
				require.NotContains(t, all, s, "a password leaked into the output of redpg %s", strings.Join(r.args, " "))
			}
		})
	}
}
