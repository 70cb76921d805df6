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

// TestDemoIterations fails when its case's first draw is a multiple of
// unluckyEvery, so under -count=N only the iterations whose own case seed
// gives such a draw fail (same gating as TestDemo).
func TestDemoIterations(t *testing.T) {
	if os.Getenv("TIERCHAOS_DEMO") == "" {
		t.Skip("set TIERCHAOS_DEMO=1")
	}
	t.Run("draw", func(t *testing.T) {
		c := seed.For(t)
		draw := c.Rand().Uint64()
		t.Logf("iteration %d draws %d", c.Iteration, draw)
		if draw%unluckyEvery == 0 {
			t.Errorf("unlucky draw %d", draw)
		}
	})
}
