package linearize

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/depcheck"
)

// TestImportsNoService: the package and its tests depend on no service
// and not on tierd's adapter.
func TestImportsNoService(t *testing.T) {
	deps := depcheck.Deps(t, "harness/linearize", true)
	require.Contains(t, deps, depcheck.Module+"/harness/linearize")
	require.Empty(t, depcheck.Matching(deps, depcheck.Service))
}
