package scenario_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	// module is this repository's module path.
	module = "github.com/tierchaos/tierchaos"
	// self is this package.
	self = module + "/harness/scenario"
)

// ownModule returns the packages among deps that belong to this module,
// other than this package and its test builds (scenario_test,
// scenario.test and the package recompiled for them).
func ownModule(deps []string) []string {
	var bad []string
	for _, d := range deps {
		if isSelf(d) || (d != module && !strings.HasPrefix(d, module+"/")) {
			continue
		}
		bad = append(bad, d)
	}
	return bad
}

// isSelf reports whether d is this package or one of its test builds.
func isSelf(d string) bool {
	return d == self || d == self+"_test" || d == self+".test" || strings.HasPrefix(d, self+" [") || strings.HasPrefix(d, self+"_test [")
}

// TestOwnModuleFindsService shows the check failing on a dependency list
// that reaches tierd or its adapter.
func TestOwnModuleFindsService(t *testing.T) {
	deps := []string{"context", "testing", self, module + "/system/client", module + "/harness", "github.com/stretchr/testify/require"}
	require.Equal(t, []string{module + "/system/client", module + "/harness"}, ownModule(deps))
	require.Empty(t, ownModule([]string{"context", self, self + "_test", self + ".test", self + " [" + self + ".test]", "github.com/tierchaos/tierchaosx/y"}))
	require.Equal(t, []string{module + "/harness/scenariox"}, ownModule([]string{module + "/harness/scenariox"}))
}

// TestImportsNothingOfTheModule: the runner, its tests and its e2e tests
// depend on nothing else of this module (go list -deps), so any suite, of
// tierd or of another service, can use it.
func TestImportsNothingOfTheModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go list needs the go command: %v", err)
	}
	for _, tags := range []string{"", "e2e"} {
		out, err := exec.Command("go", "list", "-deps", "-test", "-tags", tags, self).CombinedOutput()
		require.NoError(t, err, "go list: %s", out)
		deps := strings.Fields(string(out))
		require.Contains(t, deps, self)
		require.Empty(t, ownModule(deps), "harness/scenario (tags %q) depends on these", tags)
	}
}
