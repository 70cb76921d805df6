package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
)

// readbacks reads every collection back after each restart of tierd, while
// traffic goes on, and checks that every write acknowledged before the
// read began is there.
//
// The read is not atomic with the traffic, so the check runs on a cut of
// the history: operations that finished before the read-back started keep
// their outcomes; operations still in flight then, or called during the
// read-back, become unknown (they may or may not be visible). An
// acknowledged insert missing from the read is then lost for certain.
type readbacks struct {
	rc       *history.RecordingClient
	rec      *history.Recorder
	names    []string
	runStart int64
	log      *slog.Logger

	reqs chan readbackReq
	done chan struct{}

	findings []Finding
}

// readbackReq asks for a read-back after the crash a.
type readbackReq struct {
	after string
	a     Applied
}

func newReadbacks(rc *history.RecordingClient, rec *history.Recorder, names []string, runStart int64, log *slog.Logger) *readbacks {
	rb := &readbacks{rc: rc, rec: rec, names: names, runStart: runStart, log: log, reqs: make(chan readbackReq, 64), done: make(chan struct{})}
	go rb.loop()
	return rb
}

// trigger asks for a read-back; requests queue and never block the caller.
func (rb *readbacks) trigger(after string, a Applied) {
	select {
	case rb.reqs <- readbackReq{after, a}:
	default:
		rb.log.Warn("nemesis: read-back queue full, skipped", "after", after)
	}
}

// wait stops taking requests and waits for the queued read-backs.
func (rb *readbacks) wait() {
	close(rb.reqs)
	<-rb.done
}

func (rb *readbacks) loop() {
	defer close(rb.done)
	var mu sync.Mutex
	var crashes []crash
	for req := range rb.reqs {
		crashes = append(crashes, crashOf(req.a, rb.runStart))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		f := rb.once(ctx, req.after, crashes)
		for i := range f {
			f[i].At = req.a.End
		}
		cancel()
		mu.Lock()
		rb.findings = append(rb.findings, f...)
		mu.Unlock()
	}
}

func (rb *readbacks) once(ctx context.Context, after string, crashes []crash) []Finding {
	before := rb.rec.Ops()
	final, err := history.NewRecordingClient(rb.rc.Client(), history.NewRecorder()).ReadFinal(ctx, rb.names...)
	if err != nil {
		// tierd may be down again (a later kill): that read-back is lost,
		// not a defect.
		rb.log.Info("nemesis: read-back skipped", "after", after, "err", err)
		return nil
	}
	ops := boundByCrashes(cut(before, rb.rec.Ops()), crashes)
	ck, err := check.New(ops, check.Config{AutoDemote: true})
	if err != nil {
		return []Finding{{Check: "readback", Message: fmt.Sprintf("after %s: %v", after, err)}}
	}
	err = ck.LostWrites(final)
	var fail *check.Failure
	if errors.As(err, &fail) {
		var out []Finding
		for _, v := range fail.Violations {
			out = append(out, Finding{Check: "readback", Message: fmt.Sprintf("after %s: %s", after, v)})
		}
		rb.log.Warn("nemesis: read-back found lost writes", "after", after, "violations", len(fail.Violations))
		return out
	}
	if err != nil {
		return []Finding{{Check: "readback", Message: fmt.Sprintf("after %s: %v", after, err)}}
	}
	rb.log.Info("nemesis: read-back ok", "after", after)
	return nil
}

// cut returns the history as of a read-back that started when before was
// taken and ended when after was: operations finished before keep their
// outcome; those in flight then or called since are unknown, returning at
// the end.
func cut(before, after []history.Op) []history.Op {
	out := make([]history.Op, len(after))
	copy(out, after)
	var end int64
	for _, op := range after {
		end = max(end, op.Return)
	}
	next := end
	for i := range out {
		inFlight := i >= len(before) || before[i].Error == stillInFlight(before[i])
		if !inFlight {
			continue
		}
		out[i].Outcome = history.Unknown
		next++
		out[i].Return = next // timestamps stay distinct
		out[i].Results, out[i].Tier, out[i].Count, out[i].Snapshot = nil, "", 0, keepSnapshot(out[i])
		out[i].Status, out[i].Code, out[i].Error = 0, "", "in flight during a read-back"
	}
	return out
}

// stillInFlight returns the recorder's marker of an operation that was in
// flight when the history was taken, if op carries it.
func stillInFlight(op history.Op) string {
	if op.Outcome == history.Unknown && op.Error == inFlightMarker {
		return inFlightMarker
	}
	return "\x00"
}

const inFlightMarker = "still in flight when the history was taken"

// keepSnapshot keeps a restore's input snapshot id (a snapshot's id is an
// output and is dropped with the others).
func keepSnapshot(op history.Op) string {
	if op.Kind == history.KindRestore {
		return op.Snapshot
	}
	return ""
}
