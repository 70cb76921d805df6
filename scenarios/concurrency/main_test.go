//go:build e2e

package concurrency

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the one stack this package's cases share (started by TestMain,
// isolated per case by unique collection names). tierd runs with its
// defaults: the worker's timer is on, but with idle times of 10 minutes and
// 1 hour it never demotes anything on its own during a case; the one case
// that needs an eager worker reconfigures tierd for itself.
var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{}, func(s *tierd.Stack) { stack = s }))
}
