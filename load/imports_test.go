package load_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/tierchaos/tierchaos"

// serviceDeps returns the packages among deps that belong to a service
// under test: tierd (system/) or the examples.
func serviceDeps(deps []string) []string {
	var bad []string
	for _, d := range deps {
		if strings.HasPrefix(d, module+"/system") || strings.HasPrefix(d, module+"/examples") {
			bad = append(bad, d)
		}
	}
	return bad
}

func TestServiceDepsFindsTierd(t *testing.T) {
	require.Equal(t, []string{module + "/system/client", module + "/examples/kvstore/kvclient"},
		serviceDeps([]string{"context", module + "/load", module + "/system/client", module + "/examples/kvstore/kvclient"}))
}

// TestDriverImportsNoService: the load driver and the runner around it
// (profiles, monitor, budgets, reports) import no service; tierd's
// workload (load/workload) is one load.System among others.
func TestDriverImportsNoService(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go list needs the go command: %v", err)
	}
	for _, pkg := range []string{"load", "load/runner", "load/budget", "load/report", "load/monitor", "load/progress", "load/hist", "load/capacity", "profiling"} {
		out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).CombinedOutput()
		require.NoError(t, err, "go list: %s", out)
		deps := strings.Fields(string(out))
		require.Contains(t, deps, module+"/"+pkg)
		require.Empty(t, serviceDeps(deps), "%s depends on these", pkg)
	}
}
