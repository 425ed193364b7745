package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// RedpgBinary builds ./cmd/redpg once per test process and returns its
// path, for tests that run redpg as a separate process (to kill, stop or
// restart it). Call RemoveBinaries from TestMain to delete it afterwards.
func RedpgBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if build.dir, build.err = os.MkdirTemp("", "redpg-test-bin-"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "redpg")
		cmd := exec.Command(GoTool(), "build", "-o", build.bin, "./cmd/redpg")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/redpg: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// RemoveBinaries deletes what RedpgBinary built.
func RemoveBinaries() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// WaitFor polls cond every 50ms until it holds, failing t after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
