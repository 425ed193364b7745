package generate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// encoder writes a valid order's message straight from its draw, byte for
// byte what order.AppendMessage writes for the order the draw spells out
// (TestEncoderMatchesAppendMessage holds it to that). Every string that
// does not change from order to order is escaped once, here, together with
// the field names around it, and the timestamp's date is formatted once
// per day: building the strings of an order and escaping them again for
// every message cost the producer more than the LPUSH that follows.
type encoder struct {
	orderID  []byte   // {"order_id":"ORD-<run>-
	product  [][]byte // ","product_id":"<id>","quantity":     by product index
	currency [][]byte // ","currency":"<code>","zip_code":     by currency index
	zip      [][]byte // "<zip>","order_timestamp":"          by zip index
	agent    [][]byte // ","user_agent":"<agent>","ip":"198.51. by customer % len(userAgents)
	session  []byte   // ","session_id":"sess-<run>-
	// maxLen bounds a valid message, so that one fits in what the arena
	// reserves (were it short, append would still be correct, only slower).
	maxLen int
	// nowSec and nowNanos are Config.Now as seconds and nanoseconds since
	// the epoch; today is its day number. Orders are at most an hour old,
	// so their dates are today's or yesterday's.
	nowSec, nowNanos int64
	today            int64
	dates            [2][]byte // "2006-01-02T" of today and of yesterday
}

const (
	customerField  = `","customer_id":"CUST-`
	unitPriceField = `,"unit_price":"`
)

func newEncoder(cfg Config, products, currencies, zips []string) encoder {
	e := encoder{
		orderID:  append([]byte(`{"order_id":`), unclosed(quote("ORD-"+cfg.RunID+"-"))...),
		session:  append([]byte(`","session_id":`), unclosed(quote("sess-"+cfg.RunID+"-"))...),
		nowSec:   cfg.Now.Unix(),
		nowNanos: int64(cfg.Now.Nanosecond()),
	}
	longest := func(parts [][]byte) int {
		n := 0
		for _, p := range parts {
			n = max(n, len(p))
		}
		return n
	}
	for _, p := range products {
		e.product = append(e.product, concat(`","product_id":`, quote(p), `,"quantity":`))
	}
	for _, c := range currencies {
		e.currency = append(e.currency, concat(`","currency":`, quote(c), `,"zip_code":`))
	}
	for _, z := range zips {
		e.zip = append(e.zip, concat("", quote(z), `,"order_timestamp":"`))
	}
	for _, a := range userAgents {
		e.agent = append(e.agent, concat(`","user_agent":`, quote(a), `,"ip":"198.51.`))
	}
	e.today = floorDiv(e.nowSec, secondsPerDay)
	for i := range e.dates {
		e.dates[i] = dateOf(e.today - int64(i))
	}
	// Numbers: at most 20 digits each for the sequence (twice), the
	// customer (twice), quantity and price, and the timestamp's 30 bytes
	// plus the address's octets.
	e.maxLen = len(e.orderID) + len(customerField) + longest(e.product) + len(unitPriceField) +
		longest(e.currency) + longest(e.zip) + longest(e.agent) + len(e.session) + 6*20 + 64
	return e
}

const secondsPerDay = 24 * 60 * 60

// dateOf formats the date of day (days since the epoch, UTC) the way
// time.RFC3339Nano does, up to and including the T.
func dateOf(day int64) []byte {
	b := time.Unix(day*secondsPerDay, 0).UTC().AppendFormat(nil, time.RFC3339Nano)
	return b[:bytes.IndexByte(b, 'T')+1]
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// quote returns s as a JSON string, escaped exactly as json.Marshal (and so
// order.AppendMessage) escapes it.
func quote(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// unclosed drops a JSON string's closing quote, for a prefix that digits
// are appended to: digits need no escaping, so the string's escaped form
// is the prefix's escaped form followed by the digits.
func unclosed(q []byte) []byte { return q[:len(q)-1] }

func concat(before string, q []byte, after string) []byte {
	b := append([]byte(before), q...)
	return append(b, after...)
}

// appendValid appends the message of the valid order d.
func (e *encoder) appendValid(b []byte, d *draw) []byte {
	b = append(b, e.orderID...)
	b = appendZeroPadded(b, uint64(d.seq), 8)
	b = append(b, customerField...)
	b = appendZeroPadded(b, uint64(d.customer), 5)
	b = append(b, e.product[d.product]...)
	b = strconv.AppendUint(b, uint64(d.quantity), 10)
	b = append(b, unitPriceField...)
	c := uint64(d.unitCents) // at least one cent
	b = strconv.AppendUint(b, c/100, 10)
	b = append(b, '.', byte('0'+c%100/10), byte('0'+c%10))
	b = append(b, e.currency[d.currency]...)
	b = append(b, e.zip[d.zip]...)
	b = e.appendTimestamp(b, d.ageNanos)
	b = append(b, e.agent[d.customer%len(e.agent)]...)
	b = strconv.AppendUint(b, uint64(d.customer/250%256), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(d.customer%250+1), 10)
	b = append(b, e.session...)
	b = strconv.AppendUint(b, uint64(d.customer), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(d.seq/7), 10)
	return append(b, '"', '}')
}

// appendTimestamp appends Now minus age in UTC as time.RFC3339Nano writes
// it: the cached date, then the clock from integer arithmetic, then the
// nanoseconds without trailing zeros.
func (e *encoder) appendTimestamp(b []byte, age int64) []byte {
	sec := e.nowSec - age/1e9
	nanos := e.nowNanos - age%1e9
	if nanos < 0 {
		nanos += 1e9
		sec--
	}
	day := floorDiv(sec, secondsPerDay)
	if back := e.today - day; back == 0 || back == 1 {
		b = append(b, e.dates[back]...)
	} else { // not reached for ages under a day; kept correct regardless
		b = append(b, dateOf(day)...)
	}
	s := sec - day*secondsPerDay
	b = appendTwo(b, s/3600)
	b = append(b, ':')
	b = appendTwo(b, s/60%60)
	b = append(b, ':')
	b = appendTwo(b, s%60)
	if nanos != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + nanos%10)
			nanos /= 10
		}
		end := 10
		for frac[end-1] == '0' {
			end--
		}
		b = append(b, frac[:end]...)
	}
	return append(b, 'Z')
}

func appendTwo(b []byte, n int64) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// appendZeroPadded appends n in decimal with at least width digits.
func appendZeroPadded(b []byte, n uint64, width int) []byte {
	var digits [20]byte
	i := len(digits)
	for n > 0 || len(digits)-i < width {
		i--
		digits[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, digits[i:]...)
}
