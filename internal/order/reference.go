package order

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// This file holds what the decoder accepts so that the Python reference's
// producers work unchanged (docs/MESSAGE.md, "Messages from the Python
// reference"): integer ids, ip_address and a nested raw_data, and
// timestamps as Python writes them. None of it is on the fast path, which
// gives up on every such message and leaves it to encoding/json.

// flexID is an id field: a JSON string, or a JSON integer read as the
// digits it was written with (42 is "42"), which is unambiguous. Any other
// number, or another type, is wrong_type.
type flexID string

// UnmarshalJSON accepts a string or an integer literal.
func (id *flexID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = flexID(s)
		return nil
	}
	if isIntegerLiteral(b) {
		*id = flexID(b)
		return nil
	}
	var kind string
	switch c := b[0]; { // encoding/json calls with a valid, non-empty value
	case c == 't' || c == 'f':
		kind = "bool"
	case c == '{':
		kind = "object"
	case c == '[':
		kind = "array"
	default:
		kind = "number " + string(b[:min(len(b), 40)]) + " (not an integer)"
	}
	return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[string]()}
}

// isIntegerLiteral reports whether b is a JSON number without fraction or
// exponent: -?(0|[1-9][0-9]*).
func isIntegerLiteral(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("-"))
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func derefID(id *flexID) string {
	if id == nil {
		return ""
	}
	return string(*id)
}

// rawData is the reference's nested object of optional fields.
type rawData struct {
	UserAgent *string `json:"user_agent"`
	IPAddress *string `json:"ip_address"`
	IP        *string `json:"ip"`
	SessionID *string `json:"session_id"`
}

// first returns the first of ss that is set, or "".
func first(ss ...*string) string {
	for _, s := range ss {
		if s != nil {
			return *s
		}
	}
	return ""
}

// userAgent, ip and sessionID merge the optional fields: a top-level field
// wins over its raw_data twin, and ip over ip_address.
func (w *wire) userAgent() string {
	if w.RawData == nil {
		return deref(w.UserAgent)
	}
	return first(w.UserAgent, w.RawData.UserAgent)
}

func (w *wire) ip() string {
	if w.RawData == nil {
		return first(w.IP, w.IPAddress)
	}
	return first(w.IP, w.IPAddress, w.RawData.IP, w.RawData.IPAddress)
}

func (w *wire) sessionID() string {
	if w.RawData == nil {
		return deref(w.SessionID)
	}
	return first(w.SessionID, w.RawData.SessionID)
}

// zonedLayouts read a date and time followed by an explicit zone: Z or an
// offset with a colon (RFC 3339, Python's isoformat), or without one
// (strftime's %z), after a T or a space, with or without a space before
// the offset. Fractional seconds are accepted after the seconds by
// time.Parse itself.
var zonedLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999 -07:00",
	"2006-01-02 15:04:05.999999999 -07:00",
	"2006-01-02T15:04:05.999999999 -0700",
	"2006-01-02 15:04:05.999999999 -0700",
}

// naiveLayouts read a date and time without a zone.
var naiveLayouts = []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// parseTimeString reads a trimmed timestamp string; one without a zone is
// a wall-clock time in naive.
func parseTimeString(s string, naive *time.Location) (time.Time, bool) {
	if t, ok := parseZoned(s); ok {
		return t, true
	}
	if named, ok := replaceZoneName(s); ok {
		return parseZoned(named)
	}
	for _, layout := range naiveLayouts {
		if t, err := time.ParseInLocation(layout, s, naive); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseZoned(s string) (time.Time, bool) {
	for _, layout := range zonedLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// replaceZoneName turns the zone names Python's %Z writes for UTC and for a
// fixed offset (" UTC", "UTC", " GMT", " UTC+05:30") into Z or the offset.
// Other names, such as EST, are ambiguous and stay unread.
func replaceZoneName(s string) (string, bool) {
	for _, name := range [...]string{"UTC", "GMT"} {
		i := strings.LastIndex(s, name)
		if i < 0 {
			continue
		}
		off := s[i+len(name):]
		if off == "" {
			off = "Z"
		} else if !isOffset(off) {
			continue
		}
		return strings.TrimSuffix(s[:i], " ") + off, true
	}
	return s, false
}

// isOffset reports whether s is +hh:mm, +hhmm or the same with a minus.
func isOffset(s string) bool {
	if len(s) != 5 && len(s) != 6 || s[0] != '+' && s[0] != '-' {
		return false
	}
	d := s[1:]
	if len(d) == 5 {
		if d[2] != ':' {
			return false
		}
		d = d[:2] + d[3:]
	}
	for i := 0; i < 4; i++ {
		if !isDigit(d[i]) {
			return false
		}
	}
	return true
}

// oversizedMark starts a message that stands for one too large to carry:
// ASCII record separator, "TL", the original size in decimal, unit
// separator, then the first KeptPrefixBytes of the original. No JSON
// message starts with a control character, so no producer's message can be
// mistaken for it, and Decode rejects it as payload_too_large with the
// original size. Ingest queues it instead of an oversized record, and dead
// letters store it, so a replay rejects it for the same reason again.
const oversizedMark = "\x1eTL"

// Oversized returns the rejection of raw if it is over the cap, or stands
// for a message that was, and nil otherwise. Its OrderID is empty: nothing
// of an oversized message is decoded.
func (opt Options) Oversized(raw []byte) *Rejection {
	opt = opt.WithDefaults()
	size, prefix, marked := parseOversized(raw)
	if !marked {
		if len(raw) <= opt.MaxBytes {
			return nil
		}
		size, prefix = len(raw), raw
	}
	return &Rejection{Reason: ReasonTooLarge,
		Detail: fmt.Sprintf("%d bytes, limit %d; the dead letter keeps the first %d bytes", size, opt.MaxBytes, min(len(prefix), KeptPrefixBytes))}
}

// parseOversized reads an oversized mark: the original size and prefix.
func parseOversized(raw []byte) (size int, prefix []byte, ok bool) {
	if !bytes.HasPrefix(raw, []byte(oversizedMark)) {
		return 0, nil, false
	}
	rest := raw[len(oversizedMark):]
	sep := bytes.IndexByte(rest, 0x1f)
	if sep < 1 || sep > 19 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(rest[:sep]))
	if err != nil || n < 0 {
		return 0, nil, false
	}
	return n, rest[sep+1:], true
}

// Bounded returns what may be stored or queued of raw: raw itself when it
// is within the cap, else an oversized mark with its size and its first
// KeptPrefixBytes (a mark already is bounded and is returned as it is).
func (opt Options) Bounded(raw []byte) []byte {
	opt = opt.WithDefaults()
	if len(raw) <= opt.MaxBytes {
		return raw
	}
	if _, prefix, ok := parseOversized(raw); ok && len(prefix) <= KeptPrefixBytes {
		return raw
	}
	return OversizedMark(len(raw), raw[:KeptPrefixBytes])
}

// OversizedMark returns the message that stands for one of size bytes that
// began with prefix (cut to KeptPrefixBytes).
func OversizedMark(size int, prefix []byte) []byte {
	prefix = prefix[:min(len(prefix), KeptPrefixBytes)]
	b := make([]byte, 0, len(oversizedMark)+20+1+len(prefix))
	b = append(b, oversizedMark...)
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, 0x1f)
	return append(b, prefix...)
}
