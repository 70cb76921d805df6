// Package linearize records the concurrent history of any service and
// judges it against a sequential model with porcupine. It knows no
// service: a suite brings its own operations (the Recorder's I and O) and
// its porcupine.Model. tierd's tier checker (harness/tierd/check) and the
// example key-value store's suite (examples/kvstore/chaos) are two users.
//
// A history is porcupine's: each operation has its client, its input, its
// output, and the moments of its call and return on the recorder's
// monotonic clock. An operation whose outcome the client does not know (a
// timeout, a reset connection, an answer that may follow a partial
// effect) is recorded as pending: it returns at the end of the history,
// so the model may place its effect anywhere after its call, or at the
// end where nothing observes it.
package linearize

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder collects a history of operations with inputs of type I and
// outputs of type O. It is safe for concurrent use.
type Recorder[I, O any] struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder[I, O any]() *Recorder[I, O] { return &Recorder[I, O]{start: time.Now()} }

// Now reads the recorder's monotonic clock: take it just before calling
// the service, and pass it as the operation's call.
func (r *Recorder[I, O]) Now() int64 { return int64(time.Since(r.start)) }

// pendingReturn marks an operation that returns at the end of the
// history (set by Ops).
const pendingReturn = math.MinInt64

// Done records an operation called at call that returned out now.
func (r *Recorder[I, O]) Done(client int, in I, call int64, out O) {
	ret := r.Now()
	r.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Pending records an operation called at call whose outcome is unknown;
// out is what the model sees for it (typically a value that says
// "unknown").
func (r *Recorder[I, O]) Pending(client int, in I, call int64, out O) {
	r.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: pendingReturn})
}

func (r *Recorder[I, O]) add(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Metadata = len(r.ops)
	r.ops = append(r.ops, op)
}

// Len returns the number of operations recorded.
func (r *Recorder[I, O]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Ops returns the history, in recording order; each operation's Metadata
// is its index in it. Pending operations return after every other call
// and return.
func (r *Recorder[I, O]) Ops() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return closePending(r.ops, r.Now())
}

// closePending returns a copy of ops in which pending operations return
// after end and after every call and return.
func closePending(ops []porcupine.Operation, end int64) []porcupine.Operation {
	for _, op := range ops {
		end = max(end, op.Call, op.Return)
	}
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		if op.Return == pendingReturn {
			op.Return = end + 1
		}
		out[i] = op
	}
	return out
}

// Options configure Check.
type Options struct {
	// Timeout bounds porcupine's search (0: none); running out gives the
	// verdict porcupine.Unknown.
	Timeout time.Duration
	// Dir, when set, receives porcupine's HTML timeline of the whole
	// history (TimelineFile) when the verdict is not Ok.
	Dir string
	// Annotations are added to the timeline (e.g. the operations other
	// checkers blamed).
	Annotations []porcupine.Annotation
}

// TimelineFile is the name of the timeline Check writes into Options.Dir.
const TimelineFile = "linearizability.html"

// Result is the verdict on a history.
type Result struct {
	// Verdict is porcupine's: Ok, Illegal (not linearizable) or Unknown
	// (the search ran out of time).
	Verdict porcupine.CheckResult
	// Ops is the number of operations checked.
	Ops int
	// Failures explain each partition that is not linearizable (Verdict
	// Illegal), in the model's partition order.
	Failures []Failure
	// Timeline is the HTML timeline's path, when one was written.
	Timeline string
}

// Linearizable reports whether the verdict is Ok.
func (r Result) Linearizable() bool { return r.Verdict == porcupine.Ok }

// Failure explains why one partition of the history (one key, one
// collection) is not linearizable, the way porcupine found it: the
// longest prefix it could linearize, the state that prefix leaves, and
// the operations that could come next, none of which the model accepts
// in that state.
type Failure struct {
	// Partition holds the partition's operations.
	Partition []porcupine.Operation
	// Prefix is the longest linearizable prefix, in linearization order.
	Prefix []porcupine.Operation
	// State describes the model's state after Prefix (DescribeState).
	State string
	// Stuck are the operations not in Prefix that were called before the
	// earliest return among them: the candidates for the next step.
	Stuck []porcupine.Operation
}

// Check judges ops against model within o.Timeout. When the verdict is
// Illegal it explains each failing partition; when it is not Ok and
// o.Dir is set it writes the timeline.
func Check(model porcupine.Model, ops []porcupine.Operation, o Options) (Result, error) {
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, o.Timeout)
	res := Result{Verdict: verdict, Ops: len(ops)}
	if verdict == porcupine.Illegal {
		parts := [][]porcupine.Operation{ops}
		if model.Partition != nil {
			parts = model.Partition(ops)
		}
		for _, part := range parts {
			// A partition whose own search runs out of time is explained
			// too: the whole history is known to be illegal.
			if porcupine.CheckOperationsTimeout(model, part, o.Timeout) != porcupine.Ok {
				res.Failures = append(res.Failures, explain(model, part, o.Timeout))
			}
		}
	}
	if verdict == porcupine.Ok || o.Dir == "" {
		return res, nil
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return res, fmt.Errorf("linearize: %w", err)
	}
	res.Timeline = filepath.Join(o.Dir, TimelineFile)
	return res, writeTimeline(model, info, res.Timeline, o.Annotations)
}

// WriteTimeline writes porcupine's HTML timeline of ops against model to
// path, whatever the verdict, with o.Annotations (o.Dir is not used): for
// a history that other checkers blamed.
func WriteTimeline(model porcupine.Model, ops []porcupine.Operation, path string, o Options) error {
	_, info := porcupine.CheckOperationsVerbose(model, ops, o.Timeout)
	return writeTimeline(model, info, path, o.Annotations)
}

func writeTimeline(model porcupine.Model, info porcupine.LinearizationInfo, path string, anns []porcupine.Annotation) error {
	info.AddAnnotations(anns)
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return fmt.Errorf("linearize: timeline: %w", err)
	}
	return nil
}

// explain describes one partition that is not linearizable.
func explain(model porcupine.Model, part []porcupine.Operation, timeout time.Duration) Failure {
	f := Failure{Partition: part}
	_, info := porcupine.CheckOperationsVerbose(model, part, timeout)
	for _, p := range info.PartialLinearizationsOperations() {
		for _, lin := range p {
			if len(lin) > len(f.Prefix) {
				f.Prefix = lin
			}
		}
	}
	state := model.Init()
	done := make(map[int]bool, len(f.Prefix))
	for _, op := range f.Prefix {
		_, state = model.Step(state, op.Input, op.Output)
		done[indexOf(part, op)] = true
	}
	if model.DescribeState != nil {
		f.State = model.DescribeState(state)
	} else {
		f.State = fmt.Sprint(state)
	}
	minRet := int64(math.MaxInt64)
	for i, op := range part {
		if !done[i] {
			minRet = min(minRet, op.Return)
		}
	}
	for i, op := range part {
		if !done[i] && op.Call <= minRet {
			f.Stuck = append(f.Stuck, op)
		}
	}
	return f
}

// indexOf returns the position of op in part: the operation with the
// same client, call and return (porcupine hands back copies).
func indexOf(part []porcupine.Operation, op porcupine.Operation) int {
	for i, p := range part {
		if p.ClientId == op.ClientId && p.Call == op.Call && p.Return == op.Return {
			return i
		}
	}
	return -1
}
