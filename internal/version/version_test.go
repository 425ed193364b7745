package version

import (
	"strings"
	"testing"
)

func TestStringPrefersTheBuildTimeVersion(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.9.9-test"
	if got := String(); got != "v9.9.9-test" {
		t.Fatalf("String() = %q, want the -ldflags value", got)
	}
	Version = ""
	if got := String(); got == "" || strings.ContainsAny(got, " \n") {
		t.Fatalf("String() = %q, want a non-empty single word", got)
	}
}
