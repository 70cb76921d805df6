//go:build e2e

package quota

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the one stack this package's cases share (started by TestMain,
// isolated per case by unique collection names; each case sets its own
// quotas and deletes its collections at its end).
var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{
		// Tier changes come only from the API and from quota eviction:
		// the background worker runs only when a case asks (run_once).
		TierdEnv: map[string]string{"TIERD_WORKER_PAUSED": "true"},
	}, func(s *tierd.Stack) { stack = s }))
}
