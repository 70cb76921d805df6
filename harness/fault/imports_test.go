package fault

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/depcheck"
)

// TestImportsNoService: faults are part of the generic core; they and
// their tests import no service and not tierd's adapter.
func TestImportsNoService(t *testing.T) {
	deps := depcheck.Deps(t, "harness/fault", true)
	require.Contains(t, deps, depcheck.Module+"/harness/fault")
	require.Empty(t, depcheck.Matching(deps, depcheck.Service))
}
