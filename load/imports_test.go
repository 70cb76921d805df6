package load_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/depcheck"
)

// TestDriverImportsNoService: the load driver and the runner around it
// (profiles, monitor, budgets, reports, capacity search) import no
// service; tierd's workload (load/workload) is one load.System among
// others.
func TestDriverImportsNoService(t *testing.T) {
	for _, pkg := range []string{"load", "load/runner", "load/budget", "load/report", "load/monitor", "load/progress", "load/hist", "load/capacity", "profiling"} {
		deps := depcheck.Deps(t, pkg, false)
		require.Contains(t, deps, depcheck.Module+"/"+pkg)
		require.Empty(t, depcheck.Matching(deps, depcheck.Service), "%s depends on these", pkg)
	}
}
