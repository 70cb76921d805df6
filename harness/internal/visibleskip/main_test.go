//go:build visibleskip

package visibleskip_test

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness"
)

// TestMain is what every container suite's TestMain is.
func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{}, func(*harness.Stack) {}))
}

// TestNeedsTheStack stands for a container suite's tests; harness.Main
// decides whether it runs.
func TestNeedsTheStack(t *testing.T) {}
