package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/redpg/redpg/internal/redisconn"
)

// ParseDatabaseURL checks a PostgreSQL URL or keyword/value string the way
// the driver will read it, so mistakes surface before any connection.
func ParseDatabaseURL(s string) (*pgxpool.Config, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	if strings.Count(authority(s), "@") > 1 {
		// The driver splits at the first '@', Go's url package and every
		// redaction at the last: the rest of the password would become the
		// host, and show up in messages as one.
		return nil, fmt.Errorf("cannot parse %s: the password holds an '@'; percent-encode it as %%40", Redact(s))
	}
	cfg, err := pgxpool.ParseConfig(s)
	if err != nil {
		// The driver's message may quote the URL, password included.
		return nil, fmt.Errorf("cannot parse %s: %s", Redact(s), RedactIn(err.Error(), s))
	}
	return cfg, nil
}

// authority is the part of a URL between "scheme://" and the path, "" for
// a keyword/value string.
func authority(s string) string {
	m := urlScheme.FindStringIndex(s)
	if m == nil {
		return ""
	}
	rest := s[m[1]:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// ParseRedisURL checks a REDIS_URL in any of the forms package redisconn
// reads: one server, a cluster, or a Sentinel-managed master.
func ParseRedisURL(s string) (*redisconn.Target, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	t, err := redisconn.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s: %s (forms: redis://host:port/db, redis://h1:p1?addr=h2:p2 for a cluster, "+
			"redis-sentinel://s1:26379,s2:26379/<master>[/db] for Sentinel; rediss for TLS)", Redact(s), RedactIn(err.Error(), s))
	}
	return t, nil
}

// Redact returns s with any password replaced by "xxxxx", for logs, errors
// and stats. Strings that are not URLs are redacted keyword by keyword, and a
// malformed URL (which is what a parse error quotes) loses everything between
// the user name and the last '@'.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil && (u.User != nil || u.Scheme != "" && u.Opaque == "") {
		q := u.Query()
		changed := false
		for _, k := range []string{"password", "sslpassword", "sentinel_password"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	if i, j := rawPassword(s); i < j {
		s = s[:i] + "xxxxx" + s[j:]
	}
	return RedactText(s)
}

// rawPassword locates the password of a URL that url.Parse may refuse: from
// the first ':' after the scheme's "://" to the last '@', since a malformed
// password may hold anything. It returns i == j when there is none.
func rawPassword(s string) (i, j int) {
	m := urlScheme.FindStringIndex(s)
	if m == nil {
		return 0, 0
	}
	colon, at := strings.Index(s[m[1]:], ":"), strings.LastIndex(s, "@")
	if colon < 0 || m[1]+colon >= at {
		return 0, 0
	}
	return m[1] + colon + 1, at
}

// RedactIn removes the password of rawURL from msg wherever it appears.
// Whatever else looks like a password in msg goes too, as in RedactText.
func RedactIn(msg, rawURL string) string {
	var pw string
	if u, err := url.Parse(rawURL); err != nil {
		if i, j := rawPassword(rawURL); i < j {
			pw = rawURL[i:j]
		}
	} else if u.User != nil {
		pw, _ = u.User.Password()
	}
	if pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return RedactText(msg)
}

// RedisAddr describes where a Redis URL points, without credentials.
func RedisAddr(s string) string {
	if t, err := redisconn.Parse(s); err == nil {
		return t.String()
	}
	return Redact(s)
}

// PostgresAddr describes where a PostgreSQL URL points, without credentials.
func PostgresAddr(s string) string {
	cfg, err := ParseDatabaseURL(s)
	if err != nil {
		return Redact(s)
	}
	host := cfg.ConnConfig.Host
	if strings.HasPrefix(host, "/") {
		return fmt.Sprintf("socket %s/.s.PGSQL.%d database %s user %s", host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, cfg.ConnConfig.User)
	}
	return fmt.Sprintf("%s:%d database %s user %s", host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, cfg.ConnConfig.User)
}

var (
	urlScheme   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@`)
	// A value is quoted (backslash escapes inside, possibly unterminated) or
	// runs to the next unescaped space, as libpq reads it.
	kvPassword = regexp.MustCompile(`(?is)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|(?:[^\s\\]|\\.)+)`)
)

// RedactText removes passwords from free text such as an error message: the
// password part of any URL and any password=value pair.
func RedactText(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}
