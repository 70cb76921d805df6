//go:build e2e

package powerloss

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the one stack this package's cases share (started by TestMain,
// isolated per case by unique collection names).
var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{
		// An in-process tierd runs on the power-loss layer; in a container
		// the rows are refused (TestPowerLoss checks the refusal).
		PowerLoss: true,
		// Every tier change comes from a recorded operation.
		TierdEnv: map[string]string{"TIERD_WORKER_PAUSED": "true"},
	}, func(s *tierd.Stack) { stack = s }))
}
