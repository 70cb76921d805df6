//go:build e2e

package diskfull

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the one stack this package's cases share. tierd's data
// directory (WAL included) is a 4 MiB tmpfs, so a case can fill it for a
// real ENOSPC: a Docker tmpfs volume with tierd in a container, a tmpfs in
// a helper's mount namespace in process mode (tierd.Options.TierdDataTmpfs;
// no root needed). The quota cases that need room and restarts are in
// scenarios/quota.
var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{
		TierdDataTmpfs: "4m",
		TierdEnv: map[string]string{
			// Tier changes come only from the API; a case runs the worker
			// itself (run_once) to drop WAL segments its snapshots cover.
			"TIERD_WORKER_PAUSED": "true",
			// Small segments, so that covered WAL can be dropped.
			"TIERD_WAL_SEGMENT_BYTES": "65536",
		},
	}, func(s *tierd.Stack) { stack = s }))
}
