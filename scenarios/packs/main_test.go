//go:build e2e

package packs

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the one stack this package's cases share (started by TestMain,
// isolated per case by unique collection names).
var stack *tierd.Stack

// suiteEnv is tierd's configuration for the whole suite:
//   - the background worker paused: the rows run cycles themselves with
//     run_once, so they know when a pack is written;
//   - warm collections idle for 1 ms are demoted to cold by a cycle, hot
//     ones never (the rows make collections warm themselves);
//   - a 15 s S3 deadline, so that a pack's verification held for
//     headDelay (sweep-races-pack-creation) stays well within it;
//   - packs of up to 100 members (the 100-collection row makes exactly one)
//     for snapshots below 256 KiB (every collection of the suite).
var suiteEnv = map[string]string{
	"TIERD_WORKER_PAUSED":        "true",
	"TIERD_S3_OP_TIMEOUT":        "15s",
	"TIERD_WORKER_HOT_IDLE":      "0s",
	"TIERD_WORKER_WARM_IDLE":     "1ms",
	"TIERD_BATCH_MAX_ITEMS":      "100",
	"TIERD_BATCH_SIZE_THRESHOLD": "256KiB",
}

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{TierdEnv: suiteEnv}, func(s *tierd.Stack) { stack = s }))
}
