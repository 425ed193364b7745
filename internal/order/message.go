package order

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The normalised message, json.Marshal(o.Message()), is what raw_data
// stores and what the generator sends. Encoding it by reflection was a
// worker's second largest CPU cost and the producer's largest, so it is
// written out here field by field, byte for byte what json.Marshal writes
// (transform's TestAppendMessageMatchesMarshal and FuzzRawDataMatchesMarshal
// hold it to that).

// MaxMessageLen bounds the length of o's normalised message: every byte of
// a string may become a six-byte escape.
func MaxMessageLen(o *Order) int {
	n := len(o.OrderID) + len(o.CustomerID) + len(o.ProductID) + len(o.Currency) + len(o.ZipCode) +
		len(o.UserAgent) + len(o.IP) + len(o.SessionID)
	return 6*n + 256
}

// AppendMessage appends json.Marshal(o.Message()) to b.
func AppendMessage(b []byte, o *Order) []byte {
	b = append(b, `{"order_id":`...)
	b = appendString(b, o.OrderID)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, o.CustomerID)
	b = append(b, `,"product_id":`...)
	b = appendString(b, o.ProductID)
	b = append(b, `,"quantity":`...)
	b = strconv.AppendInt(b, o.Quantity, 10)
	b = append(b, `,"unit_price":`...)
	b = appendCents(b, o.UnitPriceCents)
	b = append(b, `,"currency":`...)
	b = appendString(b, o.Currency)
	b = append(b, `,"zip_code":`...)
	b = appendString(b, o.ZipCode)
	b = append(b, `,"order_timestamp":"`...)
	b = o.OrderTimestamp.AppendFormat(b, time.RFC3339Nano) // digits, T, Z, :, ., + and -: nothing to escape
	b = append(b, '"')
	if o.UserAgent != "" {
		b = append(b, `,"user_agent":`...)
		b = appendString(b, o.UserAgent)
	}
	if o.IP != "" {
		b = append(b, `,"ip":`...)
		b = appendString(b, o.IP)
	}
	if o.SessionID != "" {
		b = append(b, `,"session_id":`...)
		b = appendString(b, o.SessionID)
	}
	return append(b, '}')
}

// appendCents appends FormatCents(c) as a JSON string.
func appendCents(b []byte, c int64) []byte {
	if c == math.MinInt64 { // FormatCents's own rendering of the one value it cannot negate
		return appendString(b, FormatCents(c))
	}
	b = append(b, '"')
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	b = append(b, '.', byte('0'+c%100/10), byte('0'+c%10))
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does by
// default: quotes, backslashes and control characters escaped, <, > and &
// escaped for HTML, invalid UTF-8 replaced by U+FFFD, and U+2028 and
// U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
