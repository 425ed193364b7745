// Package version says which build of redpg is running, so an operator can
// tell which version each worker runs (`redpg --version`, `redpg stats`).
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set at build time by the Makefile and Dockerfile:
//
//	go build -ldflags "-X github.com/redpg/redpg/internal/version.Version=v0.3.0-12-gabc1234"
//
// When it is empty (go run, go install), String falls back to what the Go
// toolchain recorded in the binary.
var Version string

// String is the version: the one set at build time, else the module
// version, else the VCS revision the binary was built from ("+dirty" when
// the tree had uncommitted changes), else "devel".
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	v := "devel-" + rev[:min(12, len(rev))]
	if dirty {
		v += "+dirty"
	}
	return strings.TrimSpace(v)
}
