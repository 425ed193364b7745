// Package money converts order totals between currencies exactly, with one
// rounding rule that the Go path (transform, from the Redis snapshot) and
// the SQL path (promote, from the lookup tables) share: the amount in
// integer cents divided by the rate as an exact decimal, rounded half away
// from zero to a whole cent. Neither side goes through a float, so an
// exact half cent (185.47 CAD at 1.36 is 136.375 USD) rounds the same way
// on both: up, to 136.38.
package money

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Rate is an exchange rate, units of a currency per US dollar, held as an
// exact decimal: coef / 10^scale. The zero Rate is not valid.
type Rate struct {
	coef  uint64
	scale uint8
}

// maxDigits bounds a rate's significant digits and decimals: numeric(18,6),
// the rate column, needs at most 18 of each, and 10^18 fits a uint64.
const maxDigits = 18

var pow10 [maxDigits + 1]uint64

func init() {
	pow10[0] = 1
	for i := 1; i <= maxDigits; i++ {
		pow10[i] = pow10[i-1] * 10
	}
}

// errRate describes what ParseRate accepts.
var errRate = errors.New("want a positive decimal with at most 18 significant digits and 18 decimals")

// ParseRate reads a rate written as a decimal, as PostgreSQL prints a
// numeric ("149.500000") or as Go or Python print a float ("1.36",
// "1e-05"), exactly.
func ParseRate(s string) (Rate, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "+")
	mant, exp := t, 0
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		e, err := strconv.Atoi(t[i+1:])
		if err != nil || e < -40 || e > 40 {
			return Rate{}, fmt.Errorf("rate %q: %w", s, errRate)
		}
		mant, exp = t[:i], e
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := whole + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return Rate{}, fmt.Errorf("rate %q: %w", s, errRate)
	}
	exp -= len(frac)
	digits = strings.TrimLeft(digits, "0")
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" || len(digits) > maxDigits {
		return Rate{}, fmt.Errorf("rate %q: %w", s, errRate)
	}
	coef, _ := strconv.ParseUint(digits, 10, 64)
	switch {
	case exp >= 0 && len(digits)+exp <= maxDigits:
		return Rate{coef: coef * pow10[exp]}, nil
	case exp < 0 && -exp <= maxDigits:
		return Rate{coef: coef, scale: uint8(-exp)}, nil
	}
	return Rate{}, fmt.Errorf("rate %q: %w", s, errRate)
}

// MustRate is ParseRate for rates written in code.
func MustRate(s string) Rate {
	r, err := ParseRate(s)
	if err != nil {
		panic(err)
	}
	return r
}

// Valid reports whether r is a rate (not the zero Rate).
func (r Rate) Valid() bool { return r.coef > 0 }

// String writes r as a plain decimal, as ParseRate reads it back.
func (r Rate) String() string {
	s := strconv.FormatUint(r.coef, 10)
	if r.scale == 0 {
		return s
	}
	if n := int(r.scale); len(s) <= n {
		s = strings.Repeat("0", n-len(s)+1) + s
	}
	return s[:len(s)-int(r.scale)] + "." + s[len(s)-int(r.scale):]
}

// Float64 is r as the nearest float, for what needs no exactness (the
// generator's made-up prices).
func (r Rate) Float64() float64 {
	f, _ := strconv.ParseFloat(r.String(), 64)
	return f
}

// ToUSDCents converts an amount in cents of a currency into US cents at r:
// cents ÷ r, rounded half away from zero, exactly. A result beyond int64
// (only from a rate far below any currency's) saturates, and then fails
// the numeric column it is written to rather than wrap around. It returns
// 0 for the zero Rate.
func ToUSDCents(cents int64, r Rate) int64 {
	if r.coef == 0 {
		return 0
	}
	neg := cents < 0
	abs := uint64(cents)
	if neg {
		abs = -abs
	}
	// round(a / (c / 10^s)) = floor((2·a·10^s + c) / (2·c)): a·10^s < 2^124,
	// so the numerator fits 128 bits, and 2·c < 2^64.
	hi, lo := bits.Mul64(abs, pow10[r.scale])
	hi, lo = hi<<1|lo>>63, lo<<1
	var carry uint64
	lo, carry = bits.Add64(lo, r.coef, 0)
	hi += carry
	d := 2 * r.coef
	if hi >= d {
		return saturate(neg)
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > math.MaxInt64 {
		return saturate(neg)
	}
	if neg {
		return -int64(q)
	}
	return int64(q)
}

func saturate(neg bool) int64 {
	if neg {
		return math.MinInt64
	}
	return math.MaxInt64
}

// USDCentsSQL is ToUSDCents in SQL: the expression for cents, a numeric
// amount in whole cents of a currency, converted at rate, a numeric rate
// column, as a numeric of whole US cents. div truncates exactly, toward
// zero, so for a positive rate this is the same floor-based rounding.
func USDCentsSQL(cents, rate string) string {
	return fmt.Sprintf("(sign(%[1]s) * div(2 * abs(%[1]s) + %[2]s, 2 * %[2]s))", cents, rate)
}
