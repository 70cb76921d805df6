package scenario_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/depcheck"
)

// TestImportsNoService: the runner, its tests and its e2e tests depend on
// the generic core only (faults, the nemesis core), never on a service or
// tierd's adapter, so any suite, of tierd or of another service, can use
// it.
func TestImportsNoService(t *testing.T) {
	deps := depcheck.Deps(t, "harness/scenario", true)
	require.Contains(t, deps, depcheck.Module+"/harness/scenario")
	require.Contains(t, deps, depcheck.Module+"/harness/nemesis")
	require.Empty(t, depcheck.Matching(deps, depcheck.Service))
}
