//go:build seeddemo

package seed_test

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/seed"
)

// TestDemo fails on purpose (only built with -tags seeddemo, and only with
// TIERCHAOS_DEMO set): TestReproCommandReproduces uses it to prove that the
// printed rerun command reproduces a failure with the same randomness.
func TestDemo(t *testing.T) {
	if os.Getenv("TIERCHAOS_DEMO") == "" {
		t.Skip("set TIERCHAOS_DEMO=1")
	}
	for _, name := range []string{"lucky", "unlucky"} {
		t.Run(name, func(t *testing.T) {
			draw := seed.For(t).Rand().Uint64()
			if name == "unlucky" {
				t.Errorf("unlucky draw %d", draw)
			}
		})
	}
}
