//go:build e2e

// Package nemesis runs random fault schedules against tierd under recorded
// open-loop traffic (harness/tierd/nemesis), row by row, and replays the shrunk
// schedules of the defects it found (testdata/*.json).
package nemesis

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

var stack *tierd.Stack

// suiteEnv makes tierd's background machinery busy within a short row and
// puts it on the schedule: the worker is paused, so its cycles run exactly
// when a schedule's worker.run_once steps say (a replay repeats them); a
// cycle demotes collections idle for seconds and checkpoints every hot
// collection with new WAL records; WAL segments rotate at tierd's minimum
// size.
var suiteEnv = map[string]string{
	"TIERD_WORKER_PAUSED":           "true",
	"TIERD_WORKER_INTERVAL":         "1s",
	"TIERD_WORKER_HOT_IDLE":         "3s",
	"TIERD_WORKER_WARM_IDLE":        "6s",
	"TIERD_WORKER_CHECKPOINT_BYTES": "1",
	"TIERD_WAL_SEGMENT_BYTES":       "64KiB",
	"TIERD_S3_OP_TIMEOUT":           "3s",
}

var (
	flagDuration   = flag.Duration("chaos.duration", 0, "length of every nemesis row (0: each row's default)")
	flagRate       = flag.Float64("chaos.rate", 0, "traffic rate of every nemesis row in requests/s (0: each row's default)")
	flagReplay     = flag.String("chaos.replay", "", "replay this schedule file instead of running the rows (TestNemesis)")
	flagShrink     = flag.Duration("chaos.shrink", 0, "on a failure, shrink the schedule for at most this long")
	flagShrinkRuns = flag.Int("chaos.shrink-runs", 3, "runs per shrinking candidate; one failure keeps it")
	flagArtifacts  = flag.String("chaos.artifacts", "", "folder for schedules, histories, reports and profiles (default: $TIERCHAOS_ARTIFACTS, else a temporary folder)")
)

func TestMain(m *testing.M) {
	opts := tierd.Options{
		TierdEnv:         suiteEnv,
		TierdDataTmpfs:   "256m",
		RestartableMinIO: true,
		StartTimeout:     3 * time.Minute,
	}
	os.Exit(tierd.Main(m, opts, func(s *tierd.Stack) { stack = s }))
}
