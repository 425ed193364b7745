package order

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
)

// This file is the fast path of Decode. encoding/json, with a reflected
// struct, a json.RawMessage copy per number and a string per field, was
// most of a worker's CPU time. Almost every message is a flat object of
// known keys whose values are plain strings and numbers; for exactly those,
// decodeFast fills the same wire struct that encoding/json would, and
// Decode then validates it with the same code. Anything else — an unknown
// or repeated key, a key in another case, an escape sequence, null, a
// nested value, a syntax error, trailing data — makes decodeFast give up
// without a verdict, and Decode takes the encoding/json path, so every
// rejection and its reason come from one place.

// fastField says where a key's value goes.
type fastField int

const (
	fastNone fastField = iota
	fastOrderID
	fastCustomerID
	fastProductID
	fastQuantity
	fastUnitPrice
	fastCurrency
	fastZipCode
	fastOrderTimestamp
	fastUserAgent
	fastIP
	fastSessionID
	fastFields // count + 1
)

// fieldOf matches a key exactly (encoding/json also matches other cases;
// those take the slow path).
func fieldOf(key []byte) fastField {
	switch string(key) { // no allocation: the compiler compares in place
	case "order_id":
		return fastOrderID
	case "customer_id":
		return fastCustomerID
	case "product_id":
		return fastProductID
	case "quantity":
		return fastQuantity
	case "unit_price":
		return fastUnitPrice
	case "currency":
		return fastCurrency
	case "zip_code":
		return fastZipCode
	case "order_timestamp":
		return fastOrderTimestamp
	case "user_agent":
		return fastUserAgent
	case "ip":
		return fastIP
	case "session_id":
		return fastSessionID
	}
	return fastNone
}

// fastWire holds what the fast path decoded; its wire method gives the
// struct to validate.
type fastWire struct {
	// ascii says the message decoded is all ASCII, so valid UTF-8.
	ascii bool
	seen  [fastFields]bool
	strs  [fastFields]string
	raws  [fastFields]json.RawMessage
}

// decode decodes raw into f and reports whether it could. The strings
// share one allocation; the raw numbers and timestamps alias raw itself,
// which Decode does not keep. raw need not be valid UTF-8: f.ascii says
// whether Decode still has to check.
func (f *fastWire) decode(raw []byte) bool {
	p := fastParser{b: raw}
	p.ws()
	if !p.byte('{') {
		return false
	}
	seen := &f.seen
	var spans [fastFields][2]int // where each string field's contents are in raw
	strLen := 0
	p.ws()
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			p.ws()
			kStart, kEnd, ok := p.str()
			if !ok {
				return false
			}
			field := fieldOf(raw[kStart:kEnd])
			if field == fastNone || seen[field] {
				return false
			}
			seen[field] = true
			p.ws()
			if !p.byte(':') {
				return false
			}
			p.ws()
			switch field {
			case fastQuantity, fastUnitPrice, fastOrderTimestamp:
				// json.RawMessage: a string or a number, kept verbatim.
				start := p.i
				if p.peek() == '"' {
					if _, _, ok := p.str(); !ok {
						return false
					}
				} else if !p.number() {
					return false
				}
				f.raws[field] = json.RawMessage(raw[start:p.i:p.i])
			default:
				// *string: only a string; null and other types go the slow way.
				s, e, ok := p.str()
				if !ok {
					return false
				}
				spans[field] = [2]int{s, e}
				strLen += e - s
			}
			p.ws()
			if p.byte(',') {
				continue
			}
			if !p.byte('}') {
				return false
			}
			break
		}
	}
	p.ws()
	if p.i != len(raw) {
		return false
	}
	// One allocation holds every string field, rather than one each or a
	// copy of the whole message: a batch keeps its orders until it commits.
	var b strings.Builder
	b.Grow(strLen)
	for _, sp := range spans {
		b.Write(raw[sp[0]:sp[1]])
	}
	all, off := b.String(), 0
	for field, sp := range spans {
		n := sp[1] - sp[0]
		f.strs[field] = all[off : off+n]
		off += n
	}
	f.ascii = p.high&(lsb<<7) == 0
	return true
}

// wire returns the struct encoding/json would have filled, pointing into f.
// It is built by the caller rather than stored in f, so that f does not
// point into itself and can stay on the caller's stack.
func (f *fastWire) wire() wire {
	ptr := func(field fastField) *string {
		if !f.seen[field] {
			return nil
		}
		return &f.strs[field]
	}
	raw := func(field fastField) *json.RawMessage {
		if !f.seen[field] {
			return nil
		}
		return &f.raws[field]
	}
	return wire{
		OrderID: (*flexID)(ptr(fastOrderID)), CustomerID: (*flexID)(ptr(fastCustomerID)), ProductID: ptr(fastProductID),
		Quantity: raw(fastQuantity), UnitPrice: raw(fastUnitPrice), Currency: ptr(fastCurrency),
		ZipCode: ptr(fastZipCode), OrderTimestamp: raw(fastOrderTimestamp),
		UserAgent: ptr(fastUserAgent), IP: ptr(fastIP), SessionID: ptr(fastSessionID),
		noNUL: true,
	}
}

// fastParser reads the strict subset of JSON the fast path accepts.
type fastParser struct {
	b []byte
	i int
	// high ORs together the bytes of the strings read: outside strings the
	// parser takes only ASCII, so once a whole message has been read, no
	// byte of high with its top bit set means it is ASCII, valid UTF-8.
	high uint64
}

func (p *fastParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// ws skips JSON whitespace.
func (p *fastParser) ws() {
	// Most calls find none: one comparison rules out every byte above ' '.
	for p.i < len(p.b) && p.b[p.i] <= ' ' {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (p *fastParser) byte(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str consumes a string without escapes or control characters and returns
// the bounds of its contents.
func (p *fastParser) str() (start, end int, ok bool) {
	if !p.byte('"') {
		return 0, 0, false
	}
	start = p.i
	b, i := p.b, p.i
	// Eight bytes at a time: most of a message is the contents of its
	// strings. The lowest byte flagged is the first special one.
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		special := hasZeroByte(x^(lsb*'"')) | hasZeroByte(x^(lsb*'\\')) | hasByteBelow(x, 0x20)
		if special == 0 {
			p.high |= x
			continue
		}
		n := bits.TrailingZeros64(special) / 8
		if b[i+n] != '"' {
			return 0, 0, false
		}
		p.high |= x & (1<<(8*n) - 1)
		p.i = i + n + 1
		return start, i + n, true
	}
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			p.i = i + 1
			return start, i, true
		case c == '\\' || c < 0x20:
			return 0, 0, false
		}
		p.high |= uint64(c)
	}
	return 0, 0, false
}

// lsb has the lowest bit of every byte set; lsb*c repeats byte c eight times.
const lsb = 0x0101010101010101

// hasZeroByte is not zero if and only if some byte of x is zero, and then
// its lowest set bit is the top bit of the lowest zero byte (a borrow, which
// can flag a byte that is not zero, only runs upwards from one that is).
func hasZeroByte(x uint64) uint64 { return (x - lsb) &^ x & (lsb << 7) }

// hasByteBelow is not zero if and only if some byte of x is below n, for
// n <= 0x80, and then flags the lowest such byte as hasZeroByte does.
func hasByteBelow(x uint64, n byte) uint64 { return (x - lsb*uint64(n)) &^ x & (lsb << 7) }

// number consumes a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	p.byte('-')
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return false
	}
	if p.byte('.') {
		if !p.digits() {
			return false
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	// A number must end where a delimiter starts, as encoding/json
	// requires ("12a" is not a number followed by junk we may skip).
	switch p.peek() {
	case ',', '}', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// digits consumes one or more decimal digits.
func (p *fastParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// unquoteFast returns the contents of a JSON string literal made only of
// printable ASCII without escapes — what a number or timestamp sent as a
// string almost always is — and false for anything else, which the caller
// unquotes with encoding/json.
func unquoteFast(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(inner), true
}

// unquote decodes the JSON string literal raw into s, like json.Unmarshal.
func unquote(raw []byte, s *string) error {
	if v, ok := unquoteFast(raw); ok {
		*s = v
		return nil
	}
	return json.Unmarshal(raw, s)
}
