package check

import (
	"flag"
	"os"
	"regexp"
	"testing"

	"github.com/tierchaos/tierchaos/harness/history"
)

// All runs the three checkers on ops and the final state and marks t failed
// (without stopping it) with one readable message per failing checker that
// names the artifact files. It reports whether the history passed.
//
// Artifacts go to cfg.ArtifactDir if set, else to t.ArtifactDir() when the
// test binary runs with -artifacts, else to a new directory under
// os.TempDir() that outlives the test.
func All(t testing.TB, ops []history.Op, final history.Final, cfg Config) bool {
	t.Helper()
	if cfg.ArtifactDir == "" {
		cfg.ArtifactDir = artifactDir(t)
	}
	c, err := New(ops, cfg)
	if err != nil {
		t.Errorf("check: %v", err)
		return false
	}
	if err := c.All(final); err != nil {
		t.Errorf("%v", err)
		return false
	}
	return true
}

var unsafePath = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// artifactDir picks the directory for a test's artifacts.
func artifactDir(t testing.TB) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	dir, err := os.MkdirTemp("", "tierchaos-check-"+unsafePath.ReplaceAllString(t.Name(), "_")+"-")
	if err != nil {
		// Leave it to the checker, which retries and reports the error.
		return ""
	}
	t.Cleanup(func() {
		if !t.Failed() {
			_ = os.Remove(dir) // only succeeds while still empty
		}
	})
	return dir
}
