package partition

import (
	"testing"
	"time"
)

func TestParseKeep(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in           string
		months, days int
		wantErr      bool
	}{
		{"13mo", 13, 0, false}, {"2y", 24, 0, false}, {"400d", 0, 400, false}, {" 1mo ", 1, 0, false},
		{"", 0, 0, true}, {"13", 0, 0, true}, {"mo", 0, 0, true}, {"0mo", 0, 0, true}, {"13m", 0, 0, true},
		{"-1mo", 0, 0, true}, {"1.5y", 0, 0, true}, {"123456mo", 0, 0, true},
	} {
		m, d, err := ParseKeep(c.in)
		if (err != nil) != c.wantErr || m != c.months || d != c.days {
			t.Errorf("ParseKeep(%q) = %d, %d, %v; want %d, %d, error %v", c.in, m, d, err, c.months, c.days, c.wantErr)
		}
	}
}

func TestCutoffNeverDropsAYoungerRow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	c := Cutoff(now, 13, 0)
	if want := time.Date(2025, 10, 25, 21, 0, 0, 0, time.UTC); !c.Equal(want) {
		t.Fatalf("Cutoff = %s, want %s", c, want)
	}
	// September 2025 ends before the cutoff; October 2025 does not.
	if m, _ := monthOf("orders_p202509"); m.AddDate(0, 1, 0).After(c) {
		t.Error("September 2025 should be retired")
	}
	if m, _ := monthOf("orders_p202510"); !m.AddDate(0, 1, 0).After(c) {
		t.Error("October 2025 holds rows younger than 13 months")
	}
}

func TestNameRoundTrips(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 2, 28, 23, 59, 0, 0, time.FixedZone("x", -5*3600)) // 1 March in UTC
	if got := Name(at); got != "orders_p202503" {
		t.Fatalf("Name = %s", got)
	}
	m, ok := monthOf(Name(at))
	if !ok || !m.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("monthOf = %s, %v", m, ok)
	}
	for _, n := range []string{DefaultPartition, "orders_p2025", "orders_p202513x", "other"} {
		if _, ok := monthOf(n); ok {
			t.Errorf("monthOf(%q) accepted it", n)
		}
	}
}

// FuzzParseKeep: --keep is operator input; whatever it is, ParseKeep
// returns an error or a positive period in exactly one unit.
func FuzzParseKeep(f *testing.F) {
	for _, s := range []string{"13mo", "2y", "400d", "", "0d", "99999y", "1 mo", "１mo"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, d, err := ParseKeep(s)
		if err != nil {
			if m != 0 || d != 0 {
				t.Fatalf("error with a period: %d, %d", m, d)
			}
			return
		}
		if (m > 0) == (d > 0) || m < 0 || d < 0 {
			t.Fatalf("ParseKeep(%q) = %d months, %d days", s, m, d)
		}
		_ = Cutoff(time.Now(), m, d)
	})
}
