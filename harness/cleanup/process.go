package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// StartTolerance is how far apart two readings of one process's start time
// may be. gopsutil derives a start time from the boot time, which it
// computes from the uptime inside containers (a reading moves by up to a
// second) and which follows steps of the wall clock; a PID reused within
// two seconds of its previous owner's start cannot happen for a test
// process, which lives longer than that before it creates anything.
const StartTolerance = 2 * time.Second

// ErrNoProcess is returned (wrapped) by LookupProcess when no process has
// that PID.
var ErrNoProcess = errors.New("cleanup: no such process")

// Process is what cleanup reads of a local process.
type Process struct {
	// Start is when the process started (millisecond resolution).
	Start time.Time
	// Zombie is true for a process that has ended but not been reaped.
	Zombie bool
}

// LookupProcess reads process pid of this PID namespace; the error wraps
// ErrNoProcess when there is none.
func LookupProcess(ctx context.Context, pid int) (Process, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return Process{}, fmt.Errorf("cleanup: pid %d: %w", pid, ErrNoProcess)
	}
	p, err := process.NewProcessWithContext(ctx, int32(pid))
	if errors.Is(err, process.ErrorProcessNotRunning) {
		return Process{}, fmt.Errorf("cleanup: pid %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return Process{}, fmt.Errorf("cleanup: pid %d: %w", pid, err)
	}
	ms, err := p.CreateTimeWithContext(ctx)
	if err != nil {
		// The process may have ended between the two reads.
		if ok, eerr := process.PidExistsWithContext(ctx, int32(pid)); eerr == nil && !ok {
			return Process{}, fmt.Errorf("cleanup: pid %d: %w", pid, ErrNoProcess)
		}
		return Process{}, fmt.Errorf("cleanup: pid %d: start time: %w", pid, err)
	}
	out := Process{Start: time.UnixMilli(ms)}
	if st, err := p.StatusWithContext(ctx); err == nil {
		out.Zombie = slices.Contains(st, process.Zombie)
	}
	return out, nil
}

// FormatStart is the label and owner-file form of a process start time:
// milliseconds since the Unix epoch, in decimal.
func FormatStart(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// minStartMillis is 2001-09-09 in milliseconds since the epoch. Earlier
// harness versions wrote the start in clock ticks since boot, a far
// smaller number; ParseStart refuses those rather than misjudge them.
const minStartMillis = 1_000_000_000_000

// ParseStart parses FormatStart's form.
func ParseStart(s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("cleanup: process start %q: %w", s, err)
	}
	if ms < minStartMillis {
		return time.Time{}, fmt.Errorf("cleanup: process start %q is not in milliseconds since the epoch (a label of an older harness)", s)
	}
	return time.UnixMilli(ms), nil
}

// SameStart reports whether two start times in FormatStart's form name
// the same process start, within StartTolerance. It is false when either
// does not parse.
func SameStart(a, b string) bool {
	ta, err := ParseStart(a)
	if err != nil {
		return false
	}
	tb, err := ParseStart(b)
	if err != nil {
		return false
	}
	d := ta.Sub(tb)
	return d <= StartTolerance && d >= -StartTolerance
}

// Liveness is what can be said of a run's owning process.
type Liveness int

// Liveness values.
const (
	// LivenessUnknown: the labels cannot be judged (an older harness's
	// start format) or the process table could not be read.
	LivenessUnknown Liveness = iota
	// LivenessAlive: a process with that PID and start time exists (a
	// zombie counts: it has not been reaped yet).
	LivenessAlive
	// LivenessDead: no process has that PID, or the one that has it
	// started at another time (the PID was reused).
	LivenessDead
)

func (l Liveness) String() string {
	switch l {
	case LivenessAlive:
		return "alive"
	case LivenessDead:
		return "dead"
	default:
		return "unknown"
	}
}

// ProcessLiveness judges the process of this PID namespace that labels
// name by PID and start time (FormatStart's form).
func ProcessLiveness(ctx context.Context, pidLabel, startLabel string) Liveness {
	pid, err := strconv.Atoi(pidLabel)
	if err != nil || pid <= 0 {
		return LivenessDead // no process can own a malformed PID
	}
	want, err := ParseStart(startLabel)
	if err != nil {
		return LivenessUnknown
	}
	p, err := LookupProcess(ctx, pid)
	if errors.Is(err, ErrNoProcess) {
		return LivenessDead
	}
	if err != nil {
		return LivenessUnknown
	}
	if d := p.Start.Sub(want); d > StartTolerance || d < -StartTolerance {
		return LivenessDead
	}
	return LivenessAlive
}
