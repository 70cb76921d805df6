// Package history records the operations that test clients issue against
// tierd, in the style of Jepsen and etcd's robustness tests: what was asked,
// when the call started and returned (monotonic timestamps), what came back,
// and whether the outcome is ok, failed (definitely not applied) or unknown
// (may or may not have been applied). Checkers in harness/tierd/check judge the
// recorded history.
package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
)

// Kind names an operation.
type Kind string

// The recorded operation kinds.
const (
	// KindCreateCollection creates a collection (inputs: Collection, Dimension, Metric).
	KindCreateCollection Kind = "create_collection"
	// KindDeleteCollection deletes a collection.
	KindDeleteCollection Kind = "delete_collection"
	// KindInsert inserts or replaces vectors (input: Vectors).
	KindInsert Kind = "insert"
	// KindSearch searches (inputs: Query, K; output: Results).
	KindSearch Kind = "search"
	// KindSetTier demotes or promotes explicitly (input: Target).
	KindSetTier Kind = "set_tier"
	// KindGetCollection reads the collection's state (output: Tier, Count).
	KindGetCollection Kind = "get_collection"
	// KindSnapshot stores the collection's content as a user snapshot
	// (output: Snapshot, the new snapshot's id, and Count, the number of
	// vectors it captured). It is a full read of the collection.
	KindSnapshot Kind = "snapshot"
	// KindRestore replaces the collection's content with exactly a
	// snapshot's and moves it to hot (input: Snapshot; output: Tier and
	// Count of the collection it answered).
	KindRestore Kind = "restore"
	// KindListVectors reads one page of the collection's vectors (output:
	// Count, the number of vectors on the page). It changes nothing.
	KindListVectors Kind = "list_vectors"
	// KindListSnapshots lists the collection's snapshots (output: Count,
	// the number listed). It changes nothing.
	KindListSnapshots Kind = "list_snapshots"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindCreateCollection, KindDeleteCollection, KindInsert, KindSearch, KindSetTier, KindGetCollection,
		KindSnapshot, KindRestore, KindListVectors, KindListSnapshots:
		return true
	}
	return false
}

// IsWrite reports whether operations of kind k change collection content or
// existence (reads may still change the tier: see harness/tierd/check).
func (k Kind) IsWrite() bool {
	switch k {
	case KindCreateCollection, KindDeleteCollection, KindInsert, KindSetTier, KindRestore:
		return true
	}
	return false
}

// Outcome says what is known about an operation's effect.
type Outcome string

// The outcomes.
const (
	// OK: the server acknowledged the operation.
	OK Outcome = "ok"
	// Failed: the server answered with an error that means the operation
	// had no effect.
	Failed Outcome = "failed"
	// Unknown: no definite answer (timeout, transport error, an unexpected
	// 5xx, or the call never returned); the operation may or may not have
	// been applied, at any time after its call.
	Unknown Outcome = "unknown"
)

// Valid reports whether o is a known outcome.
func (o Outcome) Valid() bool { return o == OK || o == Failed || o == Unknown }

// Op is one recorded operation. Inputs and outputs that do not apply to the
// kind are left zero.
type Op struct {
	// Index is the operation's position in call order, from 0.
	Index int `json:"index"`
	// Client is the timeline lane of the operation: the recorder gives
	// each call the lowest lane not busy at call time, so the operations of
	// one lane never overlap (as porcupine's visualization requires),
	// however callers share clients between goroutines.
	Client int `json:"client"`
	// Kind is the operation.
	Kind Kind `json:"kind"`
	// Collection is the collection it addresses.
	Collection string `json:"collection"`
	// Call and Return are nanoseconds since the recorder's start, from the
	// monotonic clock. Every timestamp a recorder hands out is distinct and
	// increasing, so Call < Return and the order of events is total.
	Call   int64 `json:"call"`
	Return int64 `json:"return"`
	// Outcome is ok, failed or unknown.
	Outcome Outcome `json:"outcome"`
	// Status is the HTTP status when an answer arrived, else 0.
	Status int `json:"status,omitempty"`
	// Code is tierd's error code, when it answered with one.
	Code string `json:"code,omitempty"`
	// Error is the error text of a failed or unknown operation.
	Error string `json:"error,omitempty"`
	// EffectBy, set only on an unknown operation, bounds when its effect
	// (if any) took place: the server that received it died then (a kill
	// or restart the harness made), and the process that replaced it never
	// saw the request. Zero means no bound: the effect may come at any time.
	EffectBy int64 `json:"effect_by,omitempty"`

	// Dimension and Metric are the inputs of create_collection, and what
	// an ok get_collection observed.
	Dimension int        `json:"dimension,omitempty"`
	Metric    api.Metric `json:"metric,omitempty"`
	// Vectors is the input of insert.
	Vectors []api.Vector `json:"vectors,omitempty"`
	// Query and K are the inputs of search.
	Query []float32 `json:"query,omitempty"`
	K     int       `json:"k,omitempty"`
	// Target is the input of set_tier.
	Target api.Tier `json:"target,omitempty"`
	// Snapshot is the snapshot id: the output of an ok snapshot and the
	// input of restore.
	Snapshot string `json:"snapshot,omitempty"`

	// Results is the output of an ok search.
	Results []api.Result `json:"results,omitempty"`
	// Tier is the tier observed by an ok get_collection, or answered by an
	// ok restore.
	Tier api.Tier `json:"tier,omitempty"`
	// Count is the vector count observed by an ok get_collection, captured
	// by an ok snapshot, or answered by an ok restore.
	Count int `json:"count,omitempty"`
}

// String renders the operation on one line for messages.
func (o Op) String() string {
	s := fmt.Sprintf("#%d c%d %s %s [%s..%s] %s", o.Index, o.Client, o.Kind, o.Collection,
		time.Duration(o.Call), time.Duration(o.Return), o.Outcome)
	switch o.Kind {
	case KindInsert:
		ids := make([]string, 0, min(len(o.Vectors), 4))
		for i, v := range o.Vectors {
			if i == 4 {
				ids = append(ids, fmt.Sprintf("…+%d", len(o.Vectors)-4))
				break
			}
			ids = append(ids, v.ID)
		}
		s += fmt.Sprintf(" ids=%v", ids)
	case KindSearch:
		s += fmt.Sprintf(" k=%d hits=%d", o.K, len(o.Results))
	case KindSetTier:
		s += " target=" + string(o.Target)
	case KindGetCollection:
		if o.Outcome == OK {
			s += fmt.Sprintf(" tier=%s count=%d", o.Tier, o.Count)
		}
	case KindSnapshot:
		if o.Outcome == OK {
			s += fmt.Sprintf(" id=%s count=%d", o.Snapshot, o.Count)
		}
	case KindListVectors, KindListSnapshots:
		if o.Outcome == OK {
			s += fmt.Sprintf(" count=%d", o.Count)
		}
	case KindRestore:
		s += " snapshot=" + o.Snapshot
		if o.Outcome == OK {
			s += fmt.Sprintf(" count=%d", o.Count)
		}
	}
	if o.Code != "" || o.Error != "" {
		s += fmt.Sprintf(" (%d %s: %s)", o.Status, o.Code, o.Error)
	}
	return s
}

// ErrInvalidHistory is wrapped by every error about a malformed history.
var ErrInvalidHistory = errors.New("history: invalid")

// ErrAlreadyFinished is returned when a call is finished twice.
var ErrAlreadyFinished = errors.New("history: call already finished")

// Validate checks an operation list: indexes 0..n-1 in order, known kinds
// and outcomes, a collection name, Call < Return, and a snapshot id on
// every ok snapshot and every restore that may have applied.
func Validate(ops []Op) error {
	for i, o := range ops {
		switch {
		case o.Index != i:
			return fmt.Errorf("%w: operation %d has index %d", ErrInvalidHistory, i, o.Index)
		case !o.Kind.Valid():
			return fmt.Errorf("%w: operation %d has unknown kind %q", ErrInvalidHistory, i, o.Kind)
		case !o.Outcome.Valid():
			return fmt.Errorf("%w: operation %d has unknown outcome %q", ErrInvalidHistory, i, o.Outcome)
		case o.Collection == "":
			return fmt.Errorf("%w: operation %d has no collection", ErrInvalidHistory, i)
		case o.Call < 0 || o.Return <= o.Call:
			return fmt.Errorf("%w: operation %d has call %d and return %d", ErrInvalidHistory, i, o.Call, o.Return)
		case o.EffectBy != 0 && (o.Outcome != Unknown || o.EffectBy <= o.Call):
			return fmt.Errorf("%w: operation %d (%s) has effect_by %d with call %d", ErrInvalidHistory, i, o.Outcome, o.EffectBy, o.Call)
		case o.Snapshot == "" && o.Outcome != Failed && o.Kind == KindRestore,
			o.Snapshot == "" && o.Outcome == OK && o.Kind == KindSnapshot:
			return fmt.Errorf("%w: operation %d (%s, %s) has no snapshot id", ErrInvalidHistory, i, o.Kind, o.Outcome)
		}
	}
	return nil
}

// Collections returns the distinct collection names of ops, sorted.
func Collections(ops []Op) []string {
	var names []string
	for _, op := range ops {
		names = append(names, op.Collection)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Recorder collects operations from any number of goroutines.
type Recorder struct {
	start time.Time

	mu    sync.Mutex
	last  int64
	ops   []Op
	open  []bool
	lanes []bool // lanes[i]: lane i has an operation in flight
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now()}
}

// now returns a timestamp that is later than every one handed out before.
// The caller holds r.mu.
func (r *Recorder) now() int64 {
	t := int64(time.Since(r.start))
	if t <= r.last {
		t = r.last + 1
	}
	r.last = t
	return t
}

// Now returns the recorder's current timestamp (nanoseconds since its
// start, later than every timestamp handed out before), to place other
// events on the history's clock.
func (r *Recorder) Now() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now()
}

// Call is an operation in flight.
type Call struct {
	r     *Recorder
	index int
}

// Invoke records the start of an operation. op carries Kind, Collection
// and the inputs (copied, so callers may reuse their buffers); Index,
// Client, Call and the outputs are set by the recorder. Invoke must be
// called before the request is sent.
func (r *Recorder) Invoke(op Op) *Call {
	op.Vectors = cloneVectors(op.Vectors)
	op.Query = slices.Clone(op.Query)
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = len(r.ops)
	op.Client = slices.Index(r.lanes, false)
	if op.Client < 0 {
		op.Client = len(r.lanes)
		r.lanes = append(r.lanes, true)
	}
	r.lanes[op.Client] = true
	op.Call = r.now()
	op.Return, op.Outcome = 0, ""
	op.Results, op.Tier, op.Count, op.Status, op.Code, op.Error = nil, "", 0, 0, "", ""
	if op.Kind == KindSnapshot {
		op.Snapshot = "" // an output
	}
	r.ops = append(r.ops, op)
	r.open = append(r.open, true)
	return &Call{r: r, index: op.Index}
}

// Result is what came back from an operation.
type Result struct {
	// Outcome is ok, failed or unknown (see Classify).
	Outcome Outcome
	// Status, Code and Err describe an error answer or transport failure.
	Status int
	Code   string
	Err    error
	// Results, Tier, Count, Dimension, Metric and Snapshot are the outputs
	// of search, get_collection, snapshot and restore.
	Results   []api.Result
	Tier      api.Tier
	Count     int
	Dimension int
	Metric    api.Metric
	Snapshot  string
}

// Finish records the return of the operation; it must be called after the
// response (or error) was received.
func (c *Call) Finish(res Result) error {
	if !res.Outcome.Valid() {
		return fmt.Errorf("%w: outcome %q", ErrInvalidHistory, res.Outcome)
	}
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open[c.index] {
		return fmt.Errorf("%w: operation %d", ErrAlreadyFinished, c.index)
	}
	r.open[c.index] = false
	op := &r.ops[c.index]
	r.lanes[op.Client] = false
	op.Return = r.now()
	op.Outcome = res.Outcome
	op.Status, op.Code = res.Status, res.Code
	if res.Err != nil {
		op.Error = res.Err.Error()
	}
	op.Results = slices.Clone(res.Results)
	op.Tier, op.Count = res.Tier, res.Count
	switch op.Kind {
	case KindGetCollection:
		op.Dimension, op.Metric = res.Dimension, res.Metric
	case KindSnapshot:
		op.Snapshot = res.Snapshot
	}
	return nil
}

func cloneVectors(vs []api.Vector) []api.Vector {
	if vs == nil {
		return nil
	}
	out := make([]api.Vector, len(vs))
	for i, v := range vs {
		out[i] = api.Vector{ID: v.ID, Values: slices.Clone(v.Values)}
	}
	return out
}

// Ops returns a copy of the history so far. Operations still in flight are
// reported as unknown, returning now, with an explanatory error.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.ops)
	var now int64
	for i := range out {
		if !r.open[i] {
			continue
		}
		if now == 0 {
			now = r.now()
		}
		out[i].Return = now
		out[i].Outcome = Unknown
		out[i].Error = "still in flight when the history was taken"
	}
	return out
}

// Len returns the number of operations invoked so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// file is the on-disk shape of a history.
type file struct {
	Version int  `json:"version"`
	Ops     []Op `json:"ops"`
}

// fileVersion is the current JSON format version.
const fileVersion = 1

// WriteJSON writes ops as a JSON document {"version":1,"ops":[...]}.
func WriteJSON(w io.Writer, ops []Op) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(file{Version: fileVersion, Ops: ops}); err != nil {
		return fmt.Errorf("history: encode: %w", err)
	}
	return nil
}

// ReadJSON reads and validates a document written by WriteJSON.
func ReadJSON(rd io.Reader) ([]Op, error) {
	var f file
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrInvalidHistory, err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrInvalidHistory, f.Version, fileVersion)
	}
	if err := Validate(f.Ops); err != nil {
		return nil, err
	}
	return f.Ops, nil
}

// WriteFile writes ops to path as JSON (see WriteJSON).
func WriteFile(path string, ops []Op) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("history: %w", cerr)
		}
	}()
	return WriteJSON(f, ops)
}

// ReadFile reads a history written by WriteFile.
func ReadFile(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	return ReadJSON(f)
}
