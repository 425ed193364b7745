package money

import (
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRate(t *testing.T) {
	t.Parallel()
	good := map[string]string{
		"149.500000": "149.5", "1.36": "1.36", "1": "1", "0.000001": "0.000001", "1e-05": "0.00001", "1E+2": "100",
		" 7 ": "7", "+2.50": "2.5", "123456789012.123456": "123456789012.123456", ".5": "0.5", "5.": "5",
		"999999999999999999": "999999999999999999", "0.000000000000000001": "0.000000000000000001", "1.5e-17": "0.000000000000000015",
	}
	for in, want := range good {
		r, err := ParseRate(in)
		require.NoError(t, err, in)
		require.Equal(t, want, r.String(), in)
		again, err := ParseRate(r.String())
		require.NoError(t, err)
		require.Equal(t, r, again, "String is read back as the same rate")
	}
	for _, in := range []string{"", "0", "0.000", "-1", "abc", "1e", "1e99", "1.2.3", "0x10", "1_000", "NaN", "Inf",
		"1234567890123456789", "0.0000000000000000001", ".", "e5", "--1", "+-1", "1e+"} {
		_, err := ParseRate(in)
		require.Error(t, err, in)
	}
}

// exactUSDCents is ToUSDCents done with big.Rat: the rule itself.
func exactUSDCents(cents int64, r Rate) *big.Int {
	q := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(cents), new(big.Int).SetUint64(pow10[r.scale])), new(big.Int).SetUint64(r.coef))
	abs := new(big.Rat).Abs(q)
	abs.Add(abs, big.NewRat(1, 2))
	n := new(big.Int).Quo(abs.Num(), abs.Denom()) // floor, as abs ≥ 0
	if q.Sign() < 0 {
		n.Neg(n)
	}
	return n
}

func TestToUSDCentsHalves(t *testing.T) {
	t.Parallel()
	cad := MustRate("1.36")
	require.Equal(t, int64(13638), ToUSDCents(18547, cad), "185.47 CAD is 136.375 USD: half up")
	require.Equal(t, int64(-13638), ToUSDCents(-18547, cad))
	require.Equal(t, int64(13637), ToUSDCents(18546, cad))
	require.Zero(t, ToUSDCents(100, Rate{}), "the zero Rate converts nothing")
	require.Equal(t, int64(math.MaxInt64), ToUSDCents(math.MaxInt64, MustRate("0.000000000000000001")))
	require.Equal(t, int64(math.MinInt64), ToUSDCents(math.MinInt64, MustRate("0.5")))
}

// FuzzToUSDCents holds ToUSDCents to exact rational arithmetic, and
// ParseRate to reading back what String writes, for any input.
func FuzzToUSDCents(f *testing.F) {
	for _, s := range []string{"1.36", "149.5", "0.000001", "83.2", "999999999999.999999", "1e-05", "7", "-1", "x"} {
		f.Add(int64(18547), s)
	}
	f.Add(int64(math.MinInt64), "0.5")
	f.Add(int64(math.MaxInt64), "3")
	f.Fuzz(func(t *testing.T, cents int64, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		require.True(t, r.Valid())
		again, err := ParseRate(r.String())
		require.NoError(t, err)
		require.Equal(t, r, again)
		want := exactUSDCents(cents, r)
		got := ToUSDCents(cents, r)
		switch {
		case want.IsInt64():
			require.Equal(t, want.Int64(), got, "%d cents at %s", cents, r)
		case want.Sign() > 0:
			require.Equal(t, int64(math.MaxInt64), got)
		default:
			require.Equal(t, int64(math.MinInt64), got)
		}
	})
}
