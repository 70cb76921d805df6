package nemesis

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/depcheck"
)

// TestImportsNoService: the nemesis core and its tests import no service
// and not tierd's adapter.
func TestImportsNoService(t *testing.T) {
	deps := depcheck.Deps(t, "harness/nemesis", true)
	require.Contains(t, deps, depcheck.Module+"/harness/nemesis")
	require.Empty(t, depcheck.Matching(deps, depcheck.Service))
}
