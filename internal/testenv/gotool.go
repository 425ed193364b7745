package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
)

// GoTool is the go command that tests building ./cmd/redpg run: the one on
// PATH, else $GOROOT/bin/go, else the toolchain's usual home. (The
// toolchain's own GOROOT is not consulted: where a test binary was built
// says nothing about the machine it runs on.)
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "/usr/local/go/bin/go"
}
