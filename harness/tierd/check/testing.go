package check

import (
	"testing"

	"github.com/tierchaos/tierchaos/harness/artifacts"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
)

// All runs the three checkers on ops and the final state and marks t failed
// (without stopping it) with one readable message per failing checker that
// names the artifact files. It reports whether the history passed.
//
// Artifacts go to cfg.ArtifactDir if set, else to artifacts.Dir(t): the
// testing package's folder with -artifacts, a folder under
// $TIERCHAOS_ARTIFACTS, or a new folder under os.TempDir(); it outlives
// the test when the checkers wrote into it.
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

// artifactDir picks the directory for a test's artifacts (artifacts.Dir);
// on error it leaves the choice to the checker, which makes a temporary
// one or reports why it could not.
func artifactDir(t testing.TB) string {
	dir, err := artifacts.Dir(t)
	if err != nil {
		t.Logf("check: %v", err)
		return ""
	}
	return dir
}
