package uploader

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FaultKind is a kind of fault a MemStore can inject.
type FaultKind string

// The injectable faults.
const (
	// FaultSlowDown fails the call with S3's 503 SlowDown, carrying
	// Fault.RetryAfter as the Retry-After the server asked for.
	FaultSlowDown FaultKind = "slow_down"
	// FaultInternal fails the call with S3's 500 InternalError.
	FaultInternal FaultKind = "internal_error"
	// FaultAccessDenied fails the call with S3's 403 AccessDenied (permanent).
	FaultAccessDenied FaultKind = "access_denied"
	// FaultTimeout makes the call hang for Fault.Delay (or until its
	// context ends) and then fail with a timeout.
	FaultTimeout FaultKind = "timeout"
	// FaultConnReset fails the call with a connection reset before any work.
	FaultConnReset FaultKind = "connection_reset"
	// FaultPartial cuts the transfer after Fault.Bytes bytes: an upload
	// (PutObject, UploadPart) fails with a connection error and stores
	// nothing; a download (GetObject, GetObjectRange) returns a body that
	// ends early with an unexpected EOF (CodeTruncated).
	FaultPartial FaultKind = "partial"
	// FaultCorrupt flips one bit: an upload is acknowledged normally (with
	// the ETag of the bytes sent) but stored corrupted, as rot at rest; a
	// download serves a corrupted copy. Fault.Bytes, if positive and inside
	// the data, picks the byte; otherwise the seeded random source does.
	FaultCorrupt FaultKind = "corrupt"
)

var faultKinds = []FaultKind{FaultSlowDown, FaultInternal, FaultAccessDenied, FaultTimeout,
	FaultConnReset, FaultPartial, FaultCorrupt}

// FaultID identifies an injected fault rule.
type FaultID int

// Fault is a fault rule for a MemStore. A call matches when its operation
// is Op (empty: any) and its key matches KeyPattern (empty: any). Of the
// matching calls, the first After pass untouched; after that each one is
// faulted with Probability (0 means always), drawn from the store's seeded
// random source, until Times calls were faulted (0: no limit), when the
// rule retires. When several rules match, the earliest injected that fires
// wins.
//
// One-shot: Times 1. Next N calls: Times N. Scheduled: After K, Times N.
// Random: Probability p with Times 0.
type Fault struct {
	// Kind is what happens to a faulted call.
	Kind FaultKind
	// Op restricts the rule to one operation; empty matches every one.
	Op Op
	// KeyPattern is a glob over the whole key: '*' matches any run of
	// characters (including '/'), '?' any one character. For
	// ListObjects and ListMultipartUploads the prefix is matched.
	KeyPattern string
	// After is the number of matching calls let through before faulting.
	After int
	// Times is the number of calls to fault before the rule retires; 0 is
	// no limit.
	Times int
	// Probability of faulting each matching call after After; 0 means 1.
	Probability float64
	// RetryAfter is the server-requested delay of FaultSlowDown.
	RetryAfter time.Duration
	// Delay is how long FaultTimeout hangs before failing.
	Delay time.Duration
	// Bytes is the cut point of FaultPartial or the byte FaultCorrupt flips.
	Bytes int64
}

type faultState struct {
	id      FaultID
	f       Fault
	re      *regexp.Regexp
	seen    int
	applied int
}

var dataFaults = map[FaultKind]map[Op]bool{
	FaultPartial: {OpPutObject: true, OpUploadPart: true, OpGetObject: true, OpGetObjectRange: true},
	FaultCorrupt: {OpPutObject: true, OpUploadPart: true, OpGetObject: true, OpGetObjectRange: true},
}

// Inject adds a fault rule and returns its id. An invalid rule (unknown
// kind or op, a data fault on an operation without a body, negative
// counts, probability outside [0,1]) returns a CodeInvalidArgument error.
func (m *MemStore) Inject(f Fault) (FaultID, error) {
	const op = "Inject"
	if !slices.Contains(faultKinds, f.Kind) {
		return 0, invalidArg(op, "", "unknown fault kind %q", f.Kind)
	}
	if f.Op != "" && !slices.Contains(allOps, f.Op) {
		return 0, invalidArg(op, "", "unknown operation %q", f.Op)
	}
	if ops, ok := dataFaults[f.Kind]; ok && !ops[f.Op] {
		return 0, invalidArg(op, "", "fault %q needs a body-carrying operation (PutObject, UploadPart, GetObject, GetObjectRange), got %q", f.Kind, f.Op)
	}
	if f.After < 0 || f.Times < 0 || f.Bytes < 0 || f.Delay < 0 || f.RetryAfter < 0 {
		return 0, invalidArg(op, "", "After, Times, Bytes, Delay and RetryAfter must not be negative")
	}
	if f.Probability < 0 || f.Probability > 1 {
		return 0, invalidArg(op, "", "probability %v outside [0,1]", f.Probability)
	}
	st := &faultState{f: f}
	if f.KeyPattern != "" {
		st.re = globRegexp(f.KeyPattern)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextFault++
	st.id = m.nextFault
	m.faults = append(m.faults, st)
	return st.id, nil
}

// RemoveFault removes a fault rule; removing an unknown or retired id is a no-op.
func (m *MemStore) RemoveFault(id FaultID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = slices.DeleteFunc(m.faults, func(s *faultState) bool { return s.id == id })
}

// ClearFaults removes every fault rule.
func (m *MemStore) ClearFaults() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = nil
}

// ActiveFaults returns the number of rules not yet retired.
func (m *MemStore) ActiveFaults() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.faults)
}

// pickFaultLocked returns a copy of the fault to apply to this call, or
// nil. m.mu must be held.
func (m *MemStore) pickFaultLocked(op Op, key string) *Fault {
	var picked *Fault
	for _, st := range m.faults {
		if st.f.Op != "" && st.f.Op != op {
			continue
		}
		if st.re != nil && !st.re.MatchString(key) {
			continue
		}
		st.seen++
		if picked != nil || st.seen <= st.f.After {
			continue
		}
		if p := st.f.Probability; p > 0 && p < 1 && m.rng.Float64() >= p {
			continue
		}
		st.applied++
		f := st.f
		picked = &f
	}
	if picked != nil {
		m.injected[picked.Kind]++
		m.faults = slices.DeleteFunc(m.faults, func(s *faultState) bool {
			return s.f.Times > 0 && s.applied >= s.f.Times
		})
	}
	return picked
}

// globRegexp compiles a glob ('*' any run, '?' one character) to an
// anchored regexp.
func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// OpMetrics counts the calls of one operation.
type OpMetrics struct {
	// Calls is every call, including failed ones.
	Calls int64
	// Errors is the calls that returned an error (injected or not).
	Errors int64
	// BytesIn is body bytes received (uploads, including cut ones).
	BytesIn int64
	// BytesOut is body bytes served (downloads).
	BytesOut int64
}

// MemMetrics is a snapshot of a MemStore's counters.
type MemMetrics struct {
	// Ops holds the counters of every operation.
	Ops map[Op]OpMetrics
	// Faults counts injected faults by kind.
	Faults map[FaultKind]int64
}

// Requests returns the total number of calls over all operations.
func (mm MemMetrics) Requests() int64 {
	var n int64
	for _, o := range mm.Ops {
		n += o.Calls
	}
	return n
}

// String formats the non-zero counters, one operation per line.
func (mm MemMetrics) String() string {
	var b strings.Builder
	for _, op := range slices.Sorted(maps.Keys(mm.Ops)) {
		o := mm.Ops[op]
		if o == (OpMetrics{}) {
			continue
		}
		fmt.Fprintf(&b, "%s calls=%d errors=%d in=%d out=%d\n", op, o.Calls, o.Errors, o.BytesIn, o.BytesOut)
	}
	for _, k := range slices.Sorted(maps.Keys(mm.Faults)) {
		fmt.Fprintf(&b, "fault %s=%d\n", k, mm.Faults[k])
	}
	return b.String()
}

// Metrics returns a snapshot of the counters.
func (m *MemStore) Metrics() MemMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := MemMetrics{Ops: make(map[Op]OpMetrics, len(m.metrics)), Faults: maps.Clone(m.injected)}
	for op, c := range m.metrics {
		out.Ops[op] = *c
	}
	return out
}

// ResetMetrics zeroes the counters.
func (m *MemStore) ResetMetrics() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.metrics {
		*c = OpMetrics{}
	}
	clear(m.injected)
}
