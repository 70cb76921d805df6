package nemesis

import (
	"math/rand/v2"

	core "github.com/tierchaos/tierchaos/harness/nemesis"
)

// Generate makes the schedule of seed and profile under tierd traffic (the
// traffic's seed is the schedule's when unset): core.Generate, with
// reconfiguring restarts drawn from tierd's settings.
func Generate(seed uint64, p Profile, tr Traffic) (Schedule, error) {
	if tr.Seed == 0 {
		tr.Seed = seed
	}
	return core.Generate(seed, p, tr, core.GenerateOptions{Settings: randomSettings})
}

// randomSettings draws tierd settings for a reconfiguring restart: the
// worker's pace and idle thresholds, the checkpoint and WAL segment sizes.
func randomSettings(r *rand.Rand) map[string]string {
	env := map[string]string{}
	pick := func(k string, vs ...string) {
		if r.IntN(2) == 0 {
			env[k] = vs[r.IntN(len(vs))]
		}
	}
	pick("TIERD_WORKER_INTERVAL", "200ms", "1s", "5s")
	pick("TIERD_WORKER_HOT_IDLE", "500ms", "2s", "30s")
	pick("TIERD_WORKER_WARM_IDLE", "1s", "5s", "60s")
	pick("TIERD_WORKER_CHECKPOINT_BYTES", "1", "4KiB", "64KiB", "1MiB")
	pick("TIERD_WAL_SEGMENT_BYTES", "64KiB", "256KiB", "1MiB") // tierd's minimum is 64 KiB
	if len(env) == 0 {
		env["TIERD_WORKER_INTERVAL"] = "1s"
	}
	return env
}
