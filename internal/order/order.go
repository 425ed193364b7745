// Package order defines the order message producers push onto the queue and
// decodes it from untrusted bytes. Decoding never panics: anything it cannot
// accept comes back as a *Rejection carrying a stable reason code, so the
// caller can dead-letter the payload and carry on with the rest of its batch.
package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultMaxBytes is the one cap on a message's size, in bytes, that every
// path enforces unless configured otherwise (Options.MaxBytes, set from
// REDPG_MAX_MESSAGE_BYTES): ingest, the worker before it decodes, the
// one-by-one fallback, dlq replay and dead-letter storage.
const DefaultMaxBytes = 4 << 20

// KeptPrefixBytes is how much of an oversized message its dead letter keeps.
const KeptPrefixBytes = 4 << 10

// Options adapt decoding to a deployment. The zero value is the default.
type Options struct {
	// NaiveZone is the zone of an order_timestamp written without one, such
	// as Python's datetime.now().isoformat(). Defaults to UTC.
	NaiveZone *time.Location
	// MaxBytes is the largest message accepted. Defaults to DefaultMaxBytes.
	MaxBytes int
}

// WithDefaults fills unset fields.
func (opt Options) WithDefaults() Options {
	if opt.NaiveZone == nil {
		opt.NaiveZone = time.UTC
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	return opt
}

// Reason codes recorded in orders_rejected.reason. They are stable: alerting
// and `redpg dlq replay --reason` match on them.
const (
	ReasonTooLarge        = "payload_too_large"
	ReasonInvalidUTF8     = "invalid_utf8"
	ReasonMalformedJSON   = "malformed_json"
	ReasonMissingField    = "missing_field"
	ReasonWrongType       = "wrong_type"
	ReasonInvalidField    = "invalid_field"
	ReasonBadTimestamp    = "bad_timestamp"
	ReasonQuantityRange   = "quantity_out_of_range"
	ReasonPriceNotPos     = "price_not_positive"
	ReasonFutureTimestamp = "future_timestamp"
	ReasonUnknownProduct  = "unknown_product"
	ReasonUnknownCurrency = "unknown_currency"
	ReasonUnknownZip      = "unknown_zip"
	ReasonInfrastructure  = "infrastructure_failure"
	// ReasonPoison marks a message that kept killing its workers (or made
	// the decoder panic): it is dead-lettered without being decoded again.
	ReasonPoison = "poison_message"
)

// Order is one decoded order message. Money is held in cents of the order's
// currency so arithmetic is exact.
type Order struct {
	OrderID        string    `json:"order_id"`
	CustomerID     string    `json:"customer_id"`
	ProductID      string    `json:"product_id"`
	Quantity       int64     `json:"quantity"`
	UnitPriceCents int64     `json:"-"`
	Currency       string    `json:"currency"`
	ZipCode        string    `json:"zip_code"`
	OrderTimestamp time.Time `json:"order_timestamp"`
	UserAgent      string    `json:"user_agent,omitempty"`
	IP             string    `json:"ip,omitempty"`
	SessionID      string    `json:"session_id,omitempty"`
}

// Rejection explains why a payload cannot become an order.
type Rejection struct {
	// OrderID is the order's id when it could be read, else empty.
	OrderID string
	// Reason is one of the Reason* codes.
	Reason string
	// Detail says what exactly was wrong, for a human.
	Detail string
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Detail }

// wire mirrors the JSON message. Numbers arrive as json.Number so that both
// 19.99 and "19.99" are accepted without float rounding surprises.
type wire struct {
	OrderID        *flexID          `json:"order_id"`
	CustomerID     *flexID          `json:"customer_id"`
	ProductID      *string          `json:"product_id"`
	Quantity       *json.RawMessage `json:"quantity"`
	UnitPrice      *json.RawMessage `json:"unit_price"`
	Currency       *string          `json:"currency"`
	ZipCode        *string          `json:"zip_code"`
	OrderTimestamp *json.RawMessage `json:"order_timestamp"`
	UserAgent      *string          `json:"user_agent"`
	IP             *string          `json:"ip"`
	SessionID      *string          `json:"session_id"`
	// IPAddress and RawData are the Python reference's spellings: it sends
	// ip_address, and nests the three optional fields under raw_data.
	IPAddress *string  `json:"ip_address"`
	RawData   *rawData `json:"raw_data"`

	// noNUL is set by the fast path, whose strings cannot hold a NUL (it
	// refuses control characters and escapes), so order need not look.
	noNUL bool
}

// maxIDLen bounds identifiers so one message cannot bloat indexes.
const maxIDLen = 128

// Decode parses and normalises one message with the default Options. The
// error, when not nil, is always a *Rejection.
func Decode(raw []byte) (Order, error) { return Options{}.Decode(raw) }

// Decode parses and normalises one message. The error, when not nil, is
// always a *Rejection.
func (opt Options) Decode(raw []byte) (Order, error) {
	opt = opt.WithDefaults()
	if rej := opt.Oversized(raw); rej != nil {
		return Order{}, rej
	}
	// The fast path reads only; it runs before the UTF-8 check, which it
	// makes unnecessary for the ASCII messages producers send.
	var fast fastWire
	if fast.decode(raw) && (fast.ascii || utf8.Valid(raw)) {
		w := fast.wire()
		return w.order(opt.NaiveZone)
	}
	if !utf8.Valid(raw) {
		return Order{}, &Rejection{Reason: ReasonInvalidUTF8, Detail: "payload is not valid UTF-8"}
	}
	return decodeSlow(raw, opt.NaiveZone)
}

// decodeSlow is Decode with encoding/json, for whatever the fast path
// (fast.go) does not take on.
func decodeSlow(raw []byte, naive *time.Location) (Order, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&w); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Order{}, &Rejection{OrderID: peekID(raw), Reason: ReasonWrongType,
				Detail: typeDetail(typeErr)}
		}
		return Order{}, &Rejection{Reason: ReasonMalformedJSON, Detail: err.Error()}
	}
	// dec.More would miss a stray ']' or '}' after the object.
	if len(bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n")) > 0 {
		return Order{}, &Rejection{Reason: ReasonMalformedJSON, Detail: "trailing data after the JSON object"}
	}
	return w.order(naive)
}

// order validates w; naive is the zone of a timestamp written without one.
func (w *wire) order(naive *time.Location) (Order, error) {
	var o Order
	id := derefID(w.OrderID)
	fail := func(reason, format string, args ...any) (Order, error) {
		// The rejection is stored in a text column: an id that is too long
		// or holds a NUL would fail the whole batch's dead-letter COPY.
		return Order{}, &Rejection{OrderID: usableID(id), Reason: reason, Detail: fmt.Sprintf(format, args...)}
	}
	if name := w.missing(); name != "" {
		return fail(ReasonMissingField, "%s is required", name)
	}
	// The order of the checks decides which rejection a message with
	// several faults gets.
	strs := [...]struct {
		name string
		v    string
		max  int
	}{{"order_id", id, maxIDLen}, {"customer_id", string(*w.CustomerID), maxIDLen}, {"product_id", *w.ProductID, maxIDLen},
		{"zip_code", *w.ZipCode, 32}, {"currency", *w.Currency, 8},
		{"user_agent", w.userAgent(), 1024}, {"ip", w.ip(), 64}, {"session_id", w.sessionID(), maxIDLen}}
	var trimmed [5]string
	for i, s := range strs {
		if i < len(trimmed) {
			if trimmed[i] = trimSpace(s.v); trimmed[i] == "" {
				return fail(ReasonMissingField, "%s is empty", s.name)
			}
		}
		if len(s.v) > s.max {
			return fail(ReasonInvalidField, "%s is %d bytes, limit %d", s.name, len(s.v), s.max)
		}
		if !w.noNUL && strings.IndexByte(s.v, 0) >= 0 {
			return fail(ReasonInvalidField, "%s contains a NUL character", s.name)
		}
	}
	o.OrderID, o.CustomerID, o.ProductID, o.ZipCode = trimmed[0], trimmed[1], trimmed[2], trimmed[3]
	o.UserAgent, o.IP, o.SessionID = strs[5].v, strs[6].v, strs[7].v

	cur, ok := currencyCode(trimmed[4])
	if !ok {
		return fail(ReasonInvalidField, "currency %q is not a three-letter ISO 4217 code", *w.Currency)
	}
	o.Currency = cur

	q, err := parseQuantity(*w.Quantity)
	if err != nil {
		return fail(ReasonWrongType, "quantity: %v", err)
	}
	if q < math.MinInt32 || q > math.MaxInt32 {
		return fail(ReasonQuantityRange, "quantity %d does not fit a 32-bit integer", q)
	}
	o.Quantity = q

	cents, err := ParseCents(*w.UnitPrice)
	if errors.Is(err, ErrOutOfRange) {
		return fail(ReasonInvalidField, "unit_price %v", err)
	}
	if err != nil {
		return fail(ReasonWrongType, "unit_price: %v", err)
	}
	// A total no promotable order can reach would overflow the staging
	// table's numeric columns and fail the COPY of the whole batch. Only a
	// quantity above 1000, which promotion rejects anyway, gets here.
	if math.Abs(float64(q))*math.Abs(float64(cents)) > maxTotalCents {
		return fail(ReasonQuantityRange, "quantity %d times unit_price %s exceeds the largest order total", q, FormatCents(cents))
	}
	o.UnitPriceCents = cents

	ts, err := parseTimestampIn(*w.OrderTimestamp, naive)
	if err != nil {
		return fail(ReasonBadTimestamp, "order_timestamp: %v", err)
	}
	o.OrderTimestamp = ts
	return o, nil
}

// missing names the first required field that is absent or null, in the
// order rejections have always reported them, or returns "".
func (w *wire) missing() string {
	switch {
	case w.OrderID == nil:
		return "order_id"
	case w.CustomerID == nil:
		return "customer_id"
	case w.ProductID == nil:
		return "product_id"
	case isNullRaw(w.Quantity):
		return "quantity"
	case isNullRaw(w.UnitPrice):
		return "unit_price"
	case w.Currency == nil:
		return "currency"
	case w.ZipCode == nil:
		return "zip_code"
	case isNullRaw(w.OrderTimestamp):
		return "order_timestamp"
	}
	return ""
}

// isNullRaw reports whether a raw field is absent or JSON null.
func isNullRaw(p *json.RawMessage) bool {
	return p == nil || string(*p) == "null"
}

// trimSpace is strings.TrimSpace with the call skipped for what producers
// send: text that neither starts nor ends with an ASCII space or a
// non-ASCII byte (which could begin a Unicode space).
func trimSpace(s string) string {
	if s != "" && notSpaceEdge(s[0]) && notSpaceEdge(s[len(s)-1]) {
		return s
	}
	return strings.TrimSpace(s)
}

// notSpaceEdge reports whether c cannot be part of leading or trailing
// white space that strings.TrimSpace would remove.
func notSpaceEdge(c byte) bool {
	return c > ' ' && c < utf8.RuneSelf
}

// currencyCode upper-cases a trimmed currency and reports whether it is
// three letters A-Z. Codes that are already upper case come back as they
// are, without the copy strings.ToUpper would make of a lower-case one.
func currencyCode(cur string) (string, bool) {
	if len(cur) == 3 && isUpper(cur[0]) && isUpper(cur[1]) && isUpper(cur[2]) {
		return cur, true
	}
	cur = strings.ToUpper(cur)
	if len(cur) != 3 || strings.IndexFunc(cur, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return "", false
	}
	return cur, true
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// peekID recovers order_id from an object whose other fields failed to
// decode, so a dead letter can still name its order.
func peekID(raw []byte) string {
	var p struct {
		OrderID any `json:"order_id"`
	}
	if json.Unmarshal(raw, &p) != nil {
		return ""
	}
	s, _ := p.OrderID.(string)
	if n, ok := p.OrderID.(float64); ok && n == math.Trunc(n) && math.Abs(n) < 1e15 {
		s = strconv.FormatInt(int64(n), 10) // an integer id, as flexID reads it
	}
	return usableID(s)
}

// usableID returns id when it can name a dead letter, else empty.
func usableID(id string) string {
	if len(id) <= maxIDLen && strings.IndexByte(id, 0) < 0 {
		return id
	}
	return ""
}

func parseQuantity(raw json.RawMessage) (int64, error) {
	if n, ok := parseQuantityFast(raw); ok {
		return n, nil
	}
	return parseQuantitySlow(raw)
}

// parseQuantityFast reads what producers send, a bare or quoted integer of
// at most 18 digits (so it cannot overflow), without the string copies of
// parseQuantitySlow, which decides everything else. Its value is the one
// strconv.ParseInt gives, leading zeros included.
func parseQuantityFast(raw []byte) (int64, bool) {
	raw = unquotePlain(raw)
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// unquotePlain strips the quotes of a string literal. A literal with an
// escape is returned as it is, quotes and all, and so is refused by the
// fast parsers, which accept no backslash or quote.
func unquotePlain(raw []byte) []byte {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		return raw[1 : len(raw)-1]
	}
	return raw
}

func parseQuantitySlow(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if len(s) > 0 && s[0] == '"' {
		if err := unquote(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0):
		f = math.Copysign(1e15, f) // beyond float64, such as 1e400
	case err != nil || f != math.Trunc(f) || math.IsInf(f, 0):
		return 0, fmt.Errorf("%.40q is not a whole number", s)
	}
	// Whole but huge, such as 1e20 or 20 nines: out of range, not mistyped.
	if f >= 1e15 {
		return math.MaxInt64, nil
	}
	if f <= -1e15 {
		return math.MinInt64, nil
	}
	return int64(f), nil
}

// maxCents keeps amounts inside numeric(14,2) even after multiplying by the
// largest accepted quantity.
const maxCents = 1e11

// maxTotalCents is the largest quantity × unit price a promotable order can
// have: 1000 units at maxCents.
const maxTotalCents = 1000 * maxCents

// ParseCents reads a decimal amount, given as a JSON number or a numeric
// string, as whole cents, rounding half away from zero.
func ParseCents(raw json.RawMessage) (int64, error) {
	if c, ok := parseCentsFast(raw); ok {
		return c, nil
	}
	return parseCentsSlow(raw)
}

// maxFastWholeDigits keeps parseCentsFast below maxCents, so that it never
// has a range error to report.
const maxFastWholeDigits = 9

// parseCentsFast reads the amounts producers send, such as "24.99", 1000
// or "-0.5": a JSON number without exponent, at most two decimals and at
// most maxFastWholeDigits before the point, bare or quoted without padding.
// For those, parseCentsSlow's float is the nearest to the decimal, whose
// shortest form is the decimal itself (two such decimals differ by 0.01, far
// more than the float's precision), so its rounding gives exactly the
// integer read here (FuzzParseCentsFastMatchesSlow checks it). ok is false
// for everything else, including errors, which parseCentsSlow reports.
func parseCentsFast(raw []byte) (int64, bool) {
	s := unquotePlain(raw)
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var c int64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if i == maxFastWholeDigits {
			return 0, false
		}
		c = c*10 + int64(s[i]-'0')
	}
	// JSON refuses leading zeros ("007"); so does parseCentsSlow.
	if i == 0 || i > 1 && s[0] == '0' {
		return 0, false
	}
	c *= 100
	switch frac := s[i:]; {
	case len(frac) == 0:
	case len(frac) == 2 && frac[0] == '.' && isDigit(frac[1]):
		c += 10 * int64(frac[1]-'0')
	case len(frac) == 3 && frac[0] == '.' && isDigit(frac[1]) && isDigit(frac[2]):
		c += 10*int64(frac[1]-'0') + int64(frac[2]-'0')
	default:
		return 0, false
	}
	if neg {
		c = -c
	}
	return c, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseCentsSlow is ParseCents for any input, and the reference
// parseCentsFast is held to.
func parseCentsSlow(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if len(s) > 0 && s[0] == '"' {
		if err := unquote(raw, &s); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if !isJSONNumber(s) || err != nil && !errors.Is(err, strconv.ErrRange) || math.IsNaN(f) {
		return 0, fmt.Errorf("%.40q is not a decimal number", s)
	}
	if math.IsInf(f, 0) || math.Abs(f) > maxCents/100+1 {
		return 0, fmt.Errorf("%.40s: %w", s, ErrOutOfRange)
	}
	c := roundCents(f)
	if math.Abs(float64(c)) > maxCents {
		return 0, fmt.Errorf("%.40s: %w", s, ErrOutOfRange)
	}
	return c, nil
}

// ErrOutOfRange reports an amount too large for the order tables.
var ErrOutOfRange = errors.New("out of range")

// isJSONNumber reports whether s is written as a JSON number, so that Go's
// extra float syntaxes (hex, "Inf", underscores) are not accepted from a
// string either.
func isJSONNumber(s string) bool {
	if s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return false
	}
	return json.Valid([]byte(s))
}

// typeDetail describes a JSON type mismatch in the message's own terms.
func typeDetail(e *json.UnmarshalTypeError) string {
	if e.Field == "" {
		return fmt.Sprintf("the message must be a JSON object, got JSON %s", e.Value)
	}
	return fmt.Sprintf("field %s: got JSON %s, want %s", e.Field, e.Value, jsonKind(e.Type.Kind().String()))
}

// jsonKind names a Go kind as the JSON type a producer should send.
func jsonKind(kind string) string {
	switch kind {
	case "string", "ptr":
		return "string"
	case "slice":
		return "number"
	case "struct":
		return "object"
	}
	return kind
}

// roundCents rounds f to whole cents, half away from zero, on f's shortest
// decimal form: f*100 is inexact (1.005*100 is 100.49999999999999), so
// rounding it would turn 1.005 into 1.00. |f| must be well inside int64.
func roundCents(f float64) int64 {
	whole, frac, _ := strings.Cut(strconv.FormatFloat(math.Abs(f), 'f', -1, 64), ".")
	frac += "000"
	c, _ := strconv.ParseInt(whole+frac[:2], 10, 64)
	if frac[2] >= '5' {
		c++
	}
	if f < 0 {
		c = -c
	}
	return c
}

func parseTimestamp(raw json.RawMessage) (time.Time, error) { return parseTimestampIn(raw, time.UTC) }

// parseTimestampIn reads a timestamp; naive is the zone of one written
// without a zone. The fast path takes only timestamps ending in Z, which
// naive cannot change.
func parseTimestampIn(raw json.RawMessage, naive *time.Location) (time.Time, error) {
	if t, ok := parseTimestampFast(raw); ok {
		return t, nil
	}
	return parseTimestampSlowIn(raw, naive)
}

// parseTimestampFast reads the form producers send, a quoted
// 2006-01-02T15:04:05Z with up to nine fractional digits in a year from
// 1970, without the string copies and layout loop of parseTimestampSlow.
// It accepts only what time.Parse with RFC3339Nano accepts and the year
// check passes, and gives the same time; ok is false for everything else,
// which parseTimestampSlow decides.
func parseTimestampFast(raw []byte) (time.Time, bool) {
	if len(raw) < len(`"2006-01-02T15:04:05Z"`) || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return time.Time{}, false
	}
	s := raw[1 : len(raw)-1]
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := twoDigits(s[0:2])
	yy, ok2 := twoDigits(s[2:4])
	month, ok3 := twoDigits(s[5:7])
	day, ok4 := twoDigits(s[8:10])
	hour, ok5 := twoDigits(s[11:13])
	minute, ok6 := twoDigits(s[14:16])
	sec, ok7 := twoDigits(s[17:19])
	year = year*100 + yy
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || year < 1970 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		if len(frac) < 2 || len(frac) > 10 || frac[0] != '.' {
			return time.Time{}, false
		}
		for _, c := range frac[1:] {
			if !isDigit(c) {
				return time.Time{}, false
			}
			nsec = nsec*10 + int(c-'0')
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	// time.Date would find the same instant, normalising fields that are
	// already in range; counting the days takes a fraction of its time.
	days := 365*(year-1970) + leapYearsBefore(year) - leapYearsBefore(1970) + daysBeforeMonth[month] + day - 1
	if month > 2 && daysIn(2, year) == 29 {
		days++
	}
	unix := int64(days)*86400 + int64(hour*3600+minute*60+sec)
	return time.Unix(unix, int64(nsec)).UTC(), true
}

// daysBeforeMonth is the number of days in a common year before each month,
// from 1.
var daysBeforeMonth = [13]int{0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334}

// leapYearsBefore counts the Gregorian leap years from 1 to year-1.
func leapYearsBefore(year int) int {
	y := year - 1
	return y/4 - y/100 + y/400
}

// twoDigits reads two decimal digits.
func twoDigits(b []byte) (int, bool) {
	if !isDigit(b[0]) || !isDigit(b[1]) {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// daysIn is the number of days in month of year, as time.Parse checks it.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseTimestampSlow is parseTimestamp for any input, and the reference
// parseTimestampFast is held to.
func parseTimestampSlow(raw json.RawMessage) (time.Time, error) {
	return parseTimestampSlowIn(raw, time.UTC)
}

// parseTimestampSlowIn is parseTimestampSlow with naive times in naive.
func parseTimestampSlowIn(raw json.RawMessage, naive *time.Location) (time.Time, error) {
	s := string(raw)
	var t time.Time
	if len(s) > 0 && s[0] == '"' {
		if err := unquote(raw, &s); err != nil {
			return t, err
		}
		s = strings.TrimSpace(s)
		if mayBeJSONNumber(s) && isJSONNumber(s) { // unix seconds sent as a string, as CSV does
			return parseTimestampSlowIn(json.RawMessage(s), naive)
		}
		var ok bool
		if t, ok = parseTimeString(s, naive); !ok {
			return t, fmt.Errorf("%.60q is not an RFC 3339 timestamp", s)
		}
	} else {
		secs, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return t, fmt.Errorf("%.40s is neither a timestamp string nor unix seconds", s)
		}
		if secs < 0 || secs > 253402300799 {
			return t, fmt.Errorf("unix time %.0f is out of range", secs)
		}
		whole, frac := math.Modf(secs)
		t = time.Unix(int64(whole), int64(frac*1e9))
	}
	// Check the year in UTC, as stored: 9999-12-31T23:59:59-01:00 is in
	// year 10000, which RFC 3339 cannot write back.
	t = t.UTC()
	if y := t.Year(); y < 1970 || y > 9999 {
		return t, fmt.Errorf("year %d is out of range", y)
	}
	return t, nil
}

// mayBeJSONNumber is a cheap test that lets an ordinary timestamp skip
// isJSONNumber, whose json.Valid allocates an error for it: a JSON number
// holds nothing but digits, '.', 'e', 'E', '+' and '-'.
func mayBeJSONNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c), c == '.', c == 'e', c == 'E', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}

// Message is the JSON form producers push. UnitPrice is a decimal string in
// the order's currency so that no float rounding happens on the way.
type Message struct {
	OrderID        string `json:"order_id"`
	CustomerID     string `json:"customer_id"`
	ProductID      string `json:"product_id"`
	Quantity       int64  `json:"quantity"`
	UnitPrice      string `json:"unit_price"`
	Currency       string `json:"currency"`
	ZipCode        string `json:"zip_code"`
	OrderTimestamp string `json:"order_timestamp"`
	UserAgent      string `json:"user_agent,omitempty"`
	IP             string `json:"ip,omitempty"`
	SessionID      string `json:"session_id,omitempty"`
}

// Message returns the normalised message for o: what is stored in raw_data
// and what a replay decodes again.
func (o Order) Message() Message {
	return Message{
		OrderID: o.OrderID, CustomerID: o.CustomerID, ProductID: o.ProductID, Quantity: o.Quantity,
		UnitPrice: FormatCents(o.UnitPriceCents), Currency: o.Currency, ZipCode: o.ZipCode,
		OrderTimestamp: o.OrderTimestamp.Format(time.RFC3339Nano),
		UserAgent:      o.UserAgent, IP: o.IP, SessionID: o.SessionID,
	}
}

// FormatCents renders cents as a decimal string with two places.
func FormatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}
