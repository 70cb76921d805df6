package stack

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// module is this repository's module path.
const module = "github.com/tierchaos/tierchaos"

// forbidden returns the packages among deps that the generic core must
// not depend on: the service under test (system/), tierd's adapter
// (harness) and what only tierd's adapter uses (its histories, checkers,
// nemesis, oracle and fixtures).
func forbidden(deps []string) []string {
	var bad []string
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, module+"/system/"), d == module+"/system",
			d == module+"/harness/tierd", strings.HasPrefix(d, module+"/harness/tierd/"),
			strings.HasPrefix(d, module+"/harness/fault"),
			strings.HasPrefix(d, module+"/load"), strings.HasPrefix(d, module+"/uploader"):
			bad = append(bad, d)
		}
	}
	return bad
}

// TestForbiddenFindsService shows the check failing on a dependency list
// that reaches tierd.
func TestForbiddenFindsService(t *testing.T) {
	deps := []string{"context", module + "/harness/images", module + "/system/client", module + "/harness/tierd", module + "/harness/tierd/history"}
	require.Equal(t, []string{module + "/system/client", module + "/harness/tierd", module + "/harness/tierd/history"}, forbidden(deps))
	require.Empty(t, forbidden([]string{module + "/harness/stack", module + "/harness/s3fault", module + "/harness/seed"}))
}

// TestCoreImportsNoService: the core, its tests and its e2e tests import
// nothing of tierd (go list -deps).
func TestCoreImportsNoService(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go list needs the go command: %v", err)
	}
	for _, tags := range []string{"", "e2e"} {
		out, err := exec.Command("go", "list", "-deps", "-test", "-tags", tags, module+"/harness/stack").CombinedOutput()
		require.NoError(t, err, "go list: %s", out)
		deps := strings.Fields(string(out))
		require.Contains(t, deps, module+"/harness/stack")
		require.Empty(t, forbidden(deps), "the core (tags %q) depends on these", tags)
	}
}
