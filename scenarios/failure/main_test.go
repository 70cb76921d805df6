//go:build e2e

package failure

import (
	"log/slog"
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the one stack this package's cases share (started by TestMain,
// isolated per case by unique collection names).
var stack *tierd.Stack

// retries receives tierd's "uploader: retrying" log records when tierd
// runs in process (in a container they are read from its log instead).
var retries = newRetryLog()

// suiteEnv is tierd's configuration for the whole suite:
//   - five retries, exactly as many as scenario 10 injects 503s;
//   - 5 MiB parts, so that a 6 MB collection goes up as two parallel parts;
//   - the background worker paused: every tier change comes from a recorded
//     operation (check.Config{AutoDemote: false} is exact), and the cases
//     run maintenance cycles themselves with run_once;
//   - debug logs, which carry the uploader's retry schedule.
var suiteEnv = map[string]string{
	"TIERD_S3_MAX_RETRIES": "5",
	"TIERD_S3_PART_SIZE":   "5MiB",
	"TIERD_WORKER_PAUSED":  "true",
	"TIERD_LOG_LEVEL":      "debug",
}

func TestMain(m *testing.M) {
	log := slog.New(retries.handler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	os.Exit(tierd.Main(m, tierd.Options{TierdEnv: suiteEnv, Logger: log}, func(s *tierd.Stack) { stack = s }))
}
