package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// ParseDotEnv reads KEY=VALUE lines as written in a .env file: blank lines
// and # comments are skipped, an optional "export " prefix is allowed, and
// values may be wrapped in single or double quotes. A malformed line is an
// error naming its line number.
func ParseDotEnv(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsFunc(key, unicode.IsSpace) || strings.ContainsAny(key, "\"'") {
			return nil, fmt.Errorf(".env line %d: want KEY=VALUE", n)
		}
		val = strings.TrimSpace(val)
		switch {
		case len(val) > 0 && (val[0] == '"' || val[0] == '\''):
			end := strings.IndexByte(val[1:], val[0])
			if end < 0 {
				return nil, fmt.Errorf(".env line %d: unterminated quote in %s", n, key)
			}
			// Only a comment may follow the closing quote: KEY="v" # note.
			if rest := strings.TrimSpace(val[end+2:]); rest != "" && rest[0] != '#' {
				return nil, fmt.Errorf(".env line %d: text after the closing quote in %s", n, key)
			}
			val = val[1 : end+1]
		default:
			if i := strings.Index(val, " #"); i >= 0 {
				val = strings.TrimSpace(val[:i])
			}
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf(".env: %w", err)
	}
	return out, nil
}

// Lookup returns a getter that prefers the process environment and falls
// back to the .env file at path (a missing file is not an error).
func Lookup(path string) (func(string) string, error) {
	file := map[string]string{}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if file, err = ParseDotEnv(data); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		case !os.IsNotExist(err):
			return nil, err
		}
	}
	return func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return file[k]
	}, nil
}
