package config

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// FuzzParseDotEnv checks that any input parses or fails without a panic and
// that every key it returns is a usable variable name. Seeds are in
// testdata/fuzz/FuzzParseDotEnv.
func FuzzParseDotEnv(f *testing.F) {
	f.Add([]byte("A=1\nexport B='two' # c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseDotEnv(data)
		if err != nil {
			require.Nil(t, got)
			require.True(t, strings.HasPrefix(err.Error(), ".env"), "error %q does not say where", err)
			return
		}
		for k := range got {
			require.NotEmpty(t, k)
			require.False(t, strings.ContainsFunc(k, unicode.IsSpace), "key %q has a space", k)
			require.False(t, strings.ContainsAny(k, `"'=`), "key %q has a quote or '='", k)
		}
	})
}

// redactShapes build a connection string around a user and password; the
// keyword/value shape quotes the password the way libpq reads it.
var redactShapes = []func(user, pass string) string{
	func(user, pass string) string {
		return (&url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: "db:5432", Path: "/shop"}).String()
	},
	func(user, pass string) string {
		return (&url.URL{Scheme: "rediss", User: url.UserPassword(user, pass), Host: "cache:6380", Path: "/0"}).String()
	},
	func(user, pass string) string {
		return (&url.URL{Scheme: "postgresql", User: url.UserPassword(user, pass), Host: "[::1]", Path: "/x",
			RawQuery: url.Values{"sslmode": {"require"}}.Encode()}).String()
	},
	func(user, pass string) string {
		return (&url.URL{Scheme: "postgres", User: url.User(user), Host: "db", Path: "/shop",
			RawQuery: url.Values{"password": {pass}, "sslmode": {"disable"}}.Encode()}).String()
	},
	func(_, pass string) string {
		quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pass) + "'"
		return "host=db user=app password=" + quoted + " dbname=shop"
	},
}

// FuzzRedact checks that neither Redact nor RedactText lets a password
// through, for any user and password a URL can carry. A password that also
// occurs elsewhere in the string (which is what the string looks like with
// the password replaced by the redaction marker) cannot be judged and is
// skipped. Seeds are in testdata/fuzz/FuzzRedact.
func FuzzRedact(f *testing.F) {
	f.Add("app", "s3cret", uint8(0))
	f.Fuzz(func(t *testing.T, user, pass string, shape uint8) {
		build := redactShapes[int(shape)%len(redactShapes)]
		if len(pass) < 4 || strings.Contains(build(user, "xxxxx"), pass) {
			t.Skip()
		}
		s := build(user, pass)
		for name, out := range map[string]string{"Redact": Redact(s), "RedactText": RedactText(s)} {
			require.NotContains(t, out, pass, "%s(%q) = %q", name, s, out)
		}
	})
}
