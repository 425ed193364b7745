package config

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// secretInputs are connection strings whose password is "s3cret".
var secretInputs = []string{
	"postgres://u:s3cret@h/db",
	"postgresql://u:s3cret@h:5432/db?sslmode=require",
	"rediss://user:s3cret@h:6380/0",
	"redis://:s3cret@h:6379",
	"postgres://u@h/db?password=s3cret",
	"postgres://u@h/db?sslmode=require&password=s3cret&application_name=x",
	"postgres://u@h/db?sslpassword=s3cret",
	"postgres:///db?host=/tmp&password=s3cret",
	"password=s3cret",
	"host=h user=u password=s3cret dbname=db",
	"host=h password = s3cret dbname=db",
	"host=h PASSWORD=s3cret",
	"host=h sslpassword=s3cret",
	"host=h password='s3cret' dbname=db",
	"host=h password='s3cret and more s3cret' dbname=db",
	`host=h password='it\'s s3cret' dbname=db`,
	`host=h password=my\ s3cret dbname=db`,
	`host=h password="s3cret s3cret"`,
	"host=h password='s3cret",
	"postgres://u:s3cret@h:notaport/db",
	"postgres://u:s3cret%zz@h/db",
}

// malformedURLs are single values, not free text, whose password is
// "s3cret": Redact and RedactIn must hide it although url.Parse refuses them.
var malformedURLs = []string{
	"postgres://u:s3cret with space@h/db",
	"postgres://u:my s3cret@h:notaport/db",
	"redis://:s3cret/with/slashes@h:6379/0",
	"postgres://u:s3cret@with@ats@h/db",
	"postgres://u:s3cret\x7f@h/db",
}

func TestRedactRemovesPasswords(t *testing.T) {
	t.Parallel()
	for _, in := range secretInputs {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			for name, out := range map[string]string{"Redact": Redact(in), "RedactText": RedactText(in)} {
				require.NotContains(t, out, "s3cret", "%s(%q) = %q", name, in, out)
				require.Contains(t, out, "xxxxx", "%s(%q) = %q", name, in, out)
			}
			// Passwords embedded in surrounding free text go too.
			msg := fmt.Sprintf("failed to connect to `%s`: refused", in)
			require.NotContains(t, RedactText(msg), "s3cret", "RedactText(%q)", msg)
		})
	}
}

func TestRedactMalformedURLs(t *testing.T) {
	t.Parallel()
	for _, in := range append(malformedURLs, secretInputs...) {
		out := Redact(in)
		require.NotContains(t, out, "s3cret", "Redact(%q) = %q", in, out)
		msg := RedactIn(fmt.Sprintf("parse `%s`: invalid", in), in)
		require.NotContains(t, msg, "s3cret", "RedactIn for %q = %q", in, msg)
	}
	require.Equal(t, "postgres://u:xxxxx@h/db", Redact("postgres://u:s3cret with space@h/db"))
}

func TestRedactKeepsTheRest(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://u:s3cret@h/db", "postgres://u:xxxxx@h/db"},
		{"rediss://user:s3cret@h:6380/0", "rediss://user:xxxxx@h:6380/0"},
		{"postgres://u@h/db?password=s3cret&sslmode=require", "postgres://u@h/db?password=xxxxx&sslmode=require"},
		{"host=h user=u password=s3cret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis-sentinel://:s3cret@s1:26379,s2:26379/m?sentinel_password=s3cret", "redis-sentinel://:xxxxx@s1:26379,s2:26379/m?sentinel_password=xxxxx"},
		{"redis://u:s3cret@n1:7000?addr=n2:7001", "redis://u:xxxxx@n1:7000?addr=n2:7001"},
		{"host=/tmp dbname=db", "host=/tmp dbname=db"},
		{"", ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, Redact(tc.in), tc.in)
	}
}

func TestRedactText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"dial postgres://u:s3cret@h/db: refused", "dial postgres://u:xxxxx@h/db: refused"},
		{"a rediss://:s3cret@h:6380 b redis://x:y@z", "a rediss://:xxxxx@h:6380 b redis://x:xxxxx@z"},
		{"bad conninfo host=h password=s3cret port=x", "bad conninfo host=h password=xxxxx port=x"},
		{"password authentication failed for user app", "password authentication failed for user app"},
		{"no secrets here", "no secrets here"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, RedactText(tc.in), tc.in)
	}
}

func TestRedactIn(t *testing.T) {
	t.Parallel()
	msg := "cannot use s3cret%: server says s3cret% is wrong"
	got := RedactIn(msg, "postgres://u:s3cret%25@h/db")
	require.NotContains(t, got, "s3cret")
	require.Equal(t, "cannot use xxxxx: server says xxxxx is wrong", got)
	require.Equal(t, msg, RedactIn(msg, "postgres://u@h/db"), "no password, nothing to remove")
	require.Equal(t, msg, RedactIn(msg, "host=h"), "not a URL")
	at := "connect to h:5432/db?application_name=a@b failed"
	require.Equal(t, at, RedactIn(at, "postgres://h:5432/db?application_name=a@b"), "a valid URL without a password")
}

func TestAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{PostgresAddr("postgres://app:s3cret@db.example:5433/shop"), "db.example:5433 database shop user app"},
		{PostgresAddr("host=/var/run/postgresql port=5432 user=app password=s3cret dbname=shop"), "socket /var/run/postgresql/.s.PGSQL.5432 database shop user app"},
		{RedisAddr("rediss://user:s3cret@cache:6380/2"), "cache:6380 db 2"},
		{RedisAddr("redis://:s3cret@cache"), "cache:6379 db 0"},
		{RedisAddr("redis://:s3cret@n1:7000?addr=n2:7001"), "cluster n1:7000,n2:7001"},
		{RedisAddr("redis-sentinel://:s3cret@s1:26379,s2:26379/orders/1"), `master "orders" via sentinels s1:26379,s2:26379 db 1`},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.got)
	}
	// Unparseable input falls back to Redact.
	for _, s := range []string{PostgresAddr("postgres://app:s3cret@db:port/x"), RedisAddr("redis://u:s3cret@cache:port/x"), RedisAddr("http://u:s3cret@h")} {
		require.NotContains(t, s, "s3cret")
		require.NotEmpty(t, s)
	}
}

func TestParseURLErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"postgres://u:s3cret@h:port/db", "postgres://u:s3cret@h/db?sslmode=bogus", "host=h password=s3cret port=x",
		"postgres://u:s3cret with space@h/db"} {
		_, err := ParseDatabaseURL(s)
		require.Error(t, err, s)
		require.NotContains(t, err.Error(), "s3cret", s)
	}
	for _, s := range []string{"redis://u:s3cret@h:port/0", "redis://u:s3cret@h/notadb", "http://u:s3cret@h"} {
		_, err := ParseRedisURL(s)
		require.Error(t, err, s)
		require.NotContains(t, err.Error(), "s3cret", s)
	}
	// An unescaped '@' in the password: the driver would read the rest of
	// the password as the host, and every message would show it as one.
	for _, s := range []string{"postgres://u:S3cr3t@XYZ@host/db", "postgresql://u:a@b@c@host:5432/db?sslmode=disable"} {
		_, err := ParseDatabaseURL(s)
		require.ErrorContains(t, err, "percent-encode it as %40", s)
		for _, part := range []string{"S3cr3t", "XYZ", "a@b", "b@c"} {
			require.NotContains(t, err.Error(), part, s)
			require.NotContains(t, PostgresAddr(s), part, s)
			require.NotContains(t, Redact(s), part, s)
		}
	}
	cfg, err := ParseDatabaseURL("postgres://u:S3cr3t%40XYZ@host/db")
	require.NoError(t, err)
	require.Equal(t, "S3cr3t@XYZ", cfg.ConnConfig.Password)
	require.Equal(t, "host:5432 database db user u", PostgresAddr("postgres://u:S3cr3t%40XYZ@host/db"))
	cfg, err = ParseDatabaseURL("postgres://u:s3cret@h:5433/db")
	require.NoError(t, err)
	require.Equal(t, "s3cret", cfg.ConnConfig.Password)
	target, err := ParseRedisURL("redis://u:s3cret@h:6380/4")
	require.NoError(t, err)
	require.Equal(t, "h:6380 db 4", target.String())
	for _, s := range []string{"redis-sentinel://u:s3cret@s1:port/m", "redis://u:s3cret@h1:1/5?addr=h2:2", "redis-sentinel://s1/m?sentinel_password=s3cret&x=1"} {
		_, err := ParseRedisURL(s)
		require.Error(t, err, s)
		require.NotContains(t, err.Error(), "s3cret", s)
	}
}

func ExampleRedact() {
	fmt.Println(Redact("postgres://app:s3cret@db:5432/shop?sslmode=require"))
	fmt.Println(Redact("host=db user=app password='s3cret phrase' dbname=shop"))
	// Output:
	// postgres://app:xxxxx@db:5432/shop?sslmode=require
	// host=db user=app password=xxxxx dbname=shop
}

func ExampleParseDuration() {
	for _, s := range []string{"3600", "90s", "1h30m"} {
		d, err := ParseDuration(s, time.Second)
		fmt.Println(d, err)
	}
	// Output:
	// 1h0m0s <nil>
	// 1m30s <nil>
	// 1h30m0s <nil>
}
