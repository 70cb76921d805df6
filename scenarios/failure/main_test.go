//go:build e2e

package failure

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness"
)

// stack is the one stack this package's cases share (started by TestMain,
// isolated per case by unique collection names).
var stack *harness.Stack

func TestMain(m *testing.M) {
	os.Exit(harness.Main(m, harness.Options{}, func(s *harness.Stack) { stack = s }))
}
