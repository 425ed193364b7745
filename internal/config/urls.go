package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// ParseDatabaseURL checks a PostgreSQL URL or keyword/value string the way
// the driver will read it, so mistakes surface before any connection.
func ParseDatabaseURL(s string) (*pgxpool.Config, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	cfg, err := pgxpool.ParseConfig(s)
	if err != nil {
		// The driver's message may quote the URL, password included.
		return nil, fmt.Errorf("cannot parse %s: %s", Redact(s), RedactIn(err.Error(), s))
	}
	return cfg, nil
}

// ParseRedisURL checks a redis:// or rediss:// URL.
func ParseRedisURL(s string) (*redis.Options, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty")
	}
	opt, err := redis.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("cannot parse %s: %s", Redact(s), RedactIn(err.Error(), s))
	}
	return opt, nil
}

// Redact returns s with any password replaced by "xxxxx", for logs, errors
// and stats. Strings that are not URLs are redacted keyword by keyword.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" || err == nil && u.User != nil {
		q := u.Query()
		changed := false
		for _, k := range []string{"password", "sslpassword"} {
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
	// keyword/value form: password=secret
	fields := strings.Fields(s)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && (strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword")) {
			fields[i] = k + "=xxxxx"
		}
	}
	if len(fields) == 0 {
		return s
	}
	return strings.Join(fields, " ")
}

// RedactIn removes the password of rawURL from msg wherever it appears.
func RedactIn(msg, rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// RedisAddr describes where a Redis URL points, without credentials.
func RedisAddr(s string) string {
	if opt, err := redis.ParseURL(s); err == nil {
		return fmt.Sprintf("%s db %d", opt.Addr, opt.DB)
	}
	return Redact(s)
}

// PostgresAddr describes where a PostgreSQL URL points, without credentials.
func PostgresAddr(s string) string {
	cfg, err := pgxpool.ParseConfig(s)
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
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@`)
	kvPassword  = regexp.MustCompile(`(?i)\b((?:ssl)?password\s*=\s*)('[^']*'|"[^"]*"|\S+)`)
)

// RedactText removes passwords from free text such as an error message: the
// password part of any URL and any password=value pair.
func RedactText(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}xxxxx@")
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}
