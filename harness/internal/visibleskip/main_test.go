//go:build visibleskip

package visibleskip_test

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// TestMain is what every container suite's TestMain is.
func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{}, func(*tierd.Stack) {}))
}

// TestNeedsTheStack stands for a container suite's tests; tierd.Main
// decides whether it runs.
func TestNeedsTheStack(t *testing.T) {}
