package nemesis

import (
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
)

// crash is a restart of tierd's process by the harness, on the history's
// clock: from start on the old process may die; by end it is dead and a
// new one serves.
type crash struct {
	start, end int64
}

// isCrash reports whether an applied step replaced tierd's process (kill,
// power cut, graceful restart, reconfiguration) and succeeded.
func isCrash(a Applied) bool {
	switch a.Kind {
	case fault.KindProcessKill, fault.KindPowerCut, fault.KindProcessRestart, fault.KindProcessReconfigure:
		return a.Error == ""
	}
	return false
}

// crashOf maps an applied crash onto the history's clock. runStart is the
// recorder's time taken just after the executor's time zero, so the start
// is moved a millisecond earlier to stay at or before the real moment (an
// earlier start only bounds fewer operations).
func crashOf(a Applied, runStart int64) crash {
	return crash{start: runStart + int64(a.Start) - int64(time.Millisecond), end: runStart + int64(a.End)}
}

// crashesOf lists the successful crashes among applied steps.
func crashesOf(applied []Applied, runStart int64) []crash {
	var out []crash
	for _, a := range applied {
		if isCrash(a) {
			out = append(out, crashOf(a, runStart))
		}
	}
	return out
}

// boundByCrashes gives every unknown operation that ended by the end of a
// crash (sent before it or during it) the end of that crash as the latest
// moment of its effect (history.Op.EffectBy): the process that received it
// is dead by then, and the one that replaced it never saw the request.
// Without it an unknown delete, create or restore in flight at a kill
// could take effect at any later moment, and so excuse every later loss
// in its collection. An operation still unanswered after the crash's end
// is not bounded by it, even if it was called before the crash: a gRPC
// call waiting for a connection (wait-for-ready) is sent to the new
// process, and an operation in flight at a read-back (cut) has no known
// end. The next crash may bound it.
func boundByCrashes(ops []history.Op, crashes []crash) []history.Op {
	out := make([]history.Op, len(ops))
	copy(out, ops)
	for i := range out {
		op := &out[i]
		if op.Outcome != history.Unknown || op.EffectBy != 0 {
			continue
		}
		for _, c := range crashes {
			if op.Call < c.end && op.Return <= c.end {
				op.EffectBy = c.end
				break
			}
		}
	}
	return out
}
