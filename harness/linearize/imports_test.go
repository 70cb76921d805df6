package linearize

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsNoService: the package and its tests depend on no service
// and not on tierd's adapter (go list -deps).
func TestImportsNoService(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go list needs the go command: %v", err)
	}
	const module = "github.com/tierchaos/tierchaos"
	out, err := exec.Command("go", "list", "-deps", "-test", module+"/harness/linearize").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, module+"/harness/linearize")
	for _, d := range deps {
		require.False(t, strings.HasPrefix(d, module+"/system") || strings.HasPrefix(d, module+"/examples") || d == module+"/harness",
			"harness/linearize depends on %s", d)
	}
}
