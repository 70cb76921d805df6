// Package fault describes every fault the harness can inject as a typed
// value that serialises to JSON and is applied to a stack: the generic
// core (*stack.Stack, whose Core method returns itself) or a service's
// adapter that embeds it (tierd's *tierd.Stack). It imports no service:
// the faults that need a service's own controls (the worker, a power cut)
// ask the stack for them through WorkerController and PowerCutter, and
// answer CodeUnsupported on a stack without them.
//
// A fault is either a Window (Apply puts it in effect, the returned Active's
// Remove takes it away again) or an Instant (Run does it once: a SIGKILL and
// restart, a worker cycle, a MinIO restart). Schedules (harness/tierd/nemesis)
// hold faults inside a Spec, whose JSON form is the fault's own fields plus
// "kind":
//
//	{"kind": "net.latency", "latency": "200ms", "jitter": "50ms"}
//	{"kind": "s3.slow_down", "ops": ["PutObject"], "probability": 0.3}
//	{"kind": "process.kill"}
package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tierchaos/tierchaos/harness/stack"
)

// Stack is what faults are injected into: the generic core, through
// Core. *stack.Stack is one, and so is every adapter that embeds it.
type Stack interface {
	Core() *stack.Stack
}

// WorkerController is a stack whose service has a background worker that
// can run one cycle now ("run_once"), pause ("pause") and resume
// ("resume"): tierd's *tierd.Stack.
type WorkerController interface {
	WorkerAction(ctx context.Context, action string) error
}

// PowerCutter is a stack whose service can lose power: PowerLossReady
// returns nil when it can now; PowerCut cuts it and waits until the
// service serves again. An error wrapping errors.ErrUnsupported says the
// stack cannot (tierd's *tierd.Stack, in process with power loss on).
type PowerCutter interface {
	PowerLossReady() error
	PowerCut(ctx context.Context, seed uint64, torn bool) error
}

// Family groups faults by what they break. Generators weigh families, and
// per-phase budgets are kept per family.
type Family string

// The fault families.
const (
	// FamilyNet: TCP faults on tierd's path to S3 (Toxiproxy).
	FamilyNet Family = "net"
	// FamilyS3: S3-level faults on tierd's path to S3 (the S3 fault layer).
	FamilyS3 Family = "s3"
	// FamilyProcess: tierd's process is killed, restarted, paused or
	// restarted with other settings, or its machine loses power.
	FamilyProcess Family = "process"
	// FamilyWorker: tierd's background worker is run, paused or resumed.
	FamilyWorker Family = "worker"
	// FamilyDisk: tierd's data volume is filled to ENOSPC.
	FamilyDisk Family = "disk"
	// FamilyMinIO: MinIO itself is stopped or restarted.
	FamilyMinIO Family = "minio"
)

// Families lists every family in a fixed order.
func Families() []Family {
	return []Family{FamilyNet, FamilyS3, FamilyProcess, FamilyWorker, FamilyDisk, FamilyMinIO}
}

// Valid reports whether f is a known family.
func (f Family) Valid() bool {
	for _, k := range Families() {
		if f == k {
			return true
		}
	}
	return false
}

// Fault is one injectable fault as data. Every Fault is also a Window or an
// Instant.
type Fault interface {
	// Kind is the fault's stable name, e.g. "net.latency"; it is the
	// "kind" of its JSON form.
	Kind() string
	// Family is the family the fault belongs to.
	Family() Family
	// Validate reports a bad parameter as an error wrapping ErrInvalid.
	Validate() error
	// String describes the fault with its parameters, on one line.
	String() string
}

// Window is a fault that lasts: Apply puts it in effect until the returned
// Active is removed.
type Window interface {
	Fault
	// Apply injects the fault into s. On error nothing of it is left in
	// effect.
	Apply(ctx context.Context, s Stack) (Active, error)
}

// Active is a window fault in effect.
type Active interface {
	// Remove takes the fault away again. Removing twice is a no-op.
	Remove(ctx context.Context) error
}

// Instant is a fault that happens at one moment.
type Instant interface {
	Fault
	// Run performs the fault and returns when the stack serves again (for
	// example after a killed tierd is started and ready).
	Run(ctx context.Context, s Stack) error
}

// Exclusive reports whether a fault must not overlap another fault of the
// same exclusion group: tierd's process faults exclude each other (a kill
// during a pause, or a restart during a reconfiguration, is one fault with
// two owners), and so do MinIO's. The group is "" when the fault overlaps
// freely.
func Exclusive(f Fault) string {
	f = unwrap(f)
	switch f.Family() {
	case FamilyProcess, FamilyMinIO, FamilyDisk:
		return string(f.Family())
	}
	return ""
}

// ErrorCode is a stable, machine-readable error code of this package.
type ErrorCode string

// Error codes.
const (
	// CodeUnknownKind: a JSON fault names a kind this package does not know.
	CodeUnknownKind ErrorCode = "unknown_kind"
	// CodeBadParameter: a fault parameter is out of range or malformed.
	CodeBadParameter ErrorCode = "bad_parameter"
	// CodeUnsupported: the stack cannot inject this fault (for example a
	// disk fault without a host data directory).
	CodeUnsupported ErrorCode = "unsupported"
)

// ErrInvalid is wrapped by every error about a malformed fault.
var ErrInvalid = errors.New("fault: invalid")

// ErrUnsupported is wrapped when a stack cannot inject a fault.
var ErrUnsupported = errors.New("fault: unsupported by this stack")

// Error is an error of this package with its stable code.
type Error struct {
	Code ErrorCode
	Kind string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("fault %s: %s (%s)", e.Kind, e.Msg, e.Code)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	var sentinel error = ErrInvalid
	if e.Code == CodeUnsupported {
		sentinel = ErrUnsupported
	}
	if e.Err == nil {
		return []error{sentinel}
	}
	return []error{sentinel, e.Err}
}

func invalid(kind, format string, args ...any) error {
	return &Error{Code: CodeBadParameter, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("250ms", "1m30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%w: duration %q: %w", ErrInvalid, s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%w: duration %s: want a string such as \"250ms\"", ErrInvalid, b)
	}
	*d = Duration(n)
	return nil
}

// Spec holds one fault for JSON: its fields plus "kind".
type Spec struct {
	Fault
}

// MarshalJSON writes {"kind": ..., fields...}.
func (s Spec) MarshalJSON() ([]byte, error) {
	if s.Fault == nil {
		return nil, fmt.Errorf("%w: empty spec", ErrInvalid)
	}
	body, err := json.Marshal(s.Fault)
	if err != nil {
		return nil, fmt.Errorf("fault %s: %w", s.Kind(), err)
	}
	kind, err := json.Marshal(s.Kind())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString(`{"kind":`)
	out.Write(kind)
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 1 { // body is {...}
		out.WriteByte(',')
		out.Write(rest)
	} else {
		out.WriteByte('}')
	}
	return out.Bytes(), nil
}

// UnmarshalJSON reads a fault by its "kind"; unknown kinds and unknown
// fields are errors, and the fault is validated.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f, ok := New(head.Kind)
	if !ok {
		return &Error{Code: CodeUnknownKind, Kind: head.Kind, Msg: "unknown fault kind"}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	delete(fields, "kind")
	rest, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		return &Error{Code: CodeBadParameter, Kind: head.Kind, Msg: "fields", Err: err}
	}
	ff := deref(f)
	if err := ff.Validate(); err != nil {
		return err
	}
	s.Fault = ff
	return nil
}

// Kinds lists every fault kind this package knows, in a fixed order.
func Kinds() []string {
	return []string{
		KindNetLatency, KindNetBandwidth, KindNetTimeout, KindNetResetPeer, KindNetLimitData,
		KindNetSlowClose, KindNetSlicer, KindNetDown,
		KindS3SlowDown, KindS3InternalError, KindS3AccessDenied, KindS3Delay, KindS3TruncateGet,
		KindS3FlipGet, KindS3Misdirect, KindS3CutPut, KindS3CutPart,
		KindProcessKill, KindProcessRestart, KindProcessPause, KindProcessReconfigure, KindPowerCut,
		KindWorkerRunOnce, KindWorkerPause,
		KindDiskFill,
		KindMinIOStop, KindMinIORestart,
	}
}

// New returns a pointer to a zero fault of the kind, for decoding.
func New(kind string) (any, bool) {
	switch kind {
	case KindNetLatency, KindNetBandwidth, KindNetTimeout, KindNetResetPeer, KindNetLimitData,
		KindNetSlowClose, KindNetSlicer, KindNetDown:
		return &Net{Toxic: kind[len("net."):]}, true
	case KindS3SlowDown, KindS3InternalError, KindS3AccessDenied, KindS3Delay, KindS3TruncateGet,
		KindS3FlipGet, KindS3Misdirect, KindS3CutPut, KindS3CutPart:
		return &S3{Action: kind[len("s3."):]}, true
	case KindProcessKill, KindProcessRestart, KindProcessPause, KindProcessReconfigure:
		return &Process{Action: kind[len("process."):]}, true
	case KindWorkerRunOnce, KindWorkerPause:
		return &Worker{Action: kind[len("worker."):]}, true
	case KindPowerCut:
		return &PowerCut{}, true
	case KindDiskFill:
		return &Disk{}, true
	case KindMinIOStop, KindMinIORestart:
		return &MinIO{Action: kind[len("minio."):]}, true
	}
	return nil, false
}

func deref(v any) Fault {
	switch f := v.(type) {
	case *Net:
		return *f
	case *S3:
		return *f
	case *Process:
		return *f
	case *Worker:
		return *f
	case *PowerCut:
		return *f
	case *Disk:
		return *f
	case *MinIO:
		return *f
	}
	panic(fmt.Sprintf("fault: no fault type %T", v)) // New returns only the types above
}

// removeFunc adapts a function to Active, removing at most once.
type removeFunc struct {
	done bool
	f    func(ctx context.Context) error
}

func (r *removeFunc) Remove(ctx context.Context) error {
	if r.done {
		return nil
	}
	if err := r.f(ctx); err != nil {
		return err
	}
	r.done = true
	return nil
}

func active(f func(ctx context.Context) error) Active { return &removeFunc{f: f} }

// IsInstant reports whether f happens at one moment (Instant.Run) rather
// than lasting from Window.Apply to Active.Remove.
func IsInstant(f Fault) bool {
	f = unwrap(f)
	if k, ok := f.(interface{ IsInstant() bool }); ok {
		return k.IsInstant()
	}
	_, window := f.(Window)
	return !window
}

// Inject runs an instant fault, or applies a window fault and returns its
// Active (nil for an instant).
func Inject(ctx context.Context, s Stack, f Fault) (Active, error) {
	f = unwrap(f)
	if IsInstant(f) {
		in, ok := f.(Instant)
		if !ok {
			return nil, invalid(f.Kind(), "no Run")
		}
		return nil, in.Run(ctx, s)
	}
	w, ok := f.(Window)
	if !ok {
		return nil, invalid(f.Kind(), "no Apply")
	}
	return w.Apply(ctx, s)
}

// unwrap returns the fault inside a Spec.
func unwrap(f Fault) Fault {
	for {
		s, ok := f.(Spec)
		if !ok {
			return f
		}
		f = s.Fault
	}
}
