// Package nemesis is the service-independent core of random fault
// schedules: a Profile shapes them, Generate draws one from a seed, a
// Schedule holds it (with the traffic to run it under, whose type the
// service's adapter defines) as a replayable JSON file, Execute applies its
// steps to a stack at their offsets, Judge splits a recorded history into
// phases by the applied steps and checks per-phase budgets, and Shrink
// reduces a failing schedule while it keeps failing.
//
// It imports no service: tierd's adapter (harness/tierd/nemesis) and the
// scenario runner (harness/scenario) build on it.
package nemesis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
)

// ScheduleFormat names the schedule file format.
const ScheduleFormat = "tierchaos.nemesis.schedule/v1"

// ErrSchedule is wrapped by every error about a malformed schedule or
// profile.
var ErrSchedule = errors.New("nemesis: bad schedule")

// Weight is a fault family's share of the faults a profile generates.
type Weight struct {
	Family fault.Family `json:"family"`
	Weight float64      `json:"weight"`
}

// Profile shapes the schedules the generator makes.
type Profile struct {
	// Name labels the profile in reports.
	Name string `json:"name"`
	// Families are the fault families to draw from, with weights.
	Families []Weight `json:"families"`
	// Kinds, when set, narrows the faults drawn to these kinds (each of
	// one of Families).
	Kinds []string `json:"kinds,omitempty"`
	// Faults, when set, are the only faults drawn, as they are: a drawn
	// family picks one of its faults here instead of drawing a fault with
	// random parameters. A scenario's own fault values are given here, so
	// that the nemesis varies when and how long they happen and which
	// overlap, not what they are.
	Faults []fault.Spec `json:"faults,omitempty"`
	// MeanFault is the mean length of a window fault (exponential).
	MeanFault fault.Duration `json:"mean_fault"`
	// MeanGap is the mean time between two fault starts (exponential).
	MeanGap fault.Duration `json:"mean_gap"`
	// MaxOverlap is how many faults may be in effect at once (0: 1).
	MaxOverlap int `json:"max_overlap"`
	// Length is the run's total length: traffic runs this long.
	Length fault.Duration `json:"length"`
	// Quiet is the fault-free head of the run (the steady phase).
	Quiet fault.Duration `json:"quiet"`
	// Recovery is the fault-free tail of the run (the recovery phase).
	Recovery fault.Duration `json:"recovery"`
}

// Validate checks the profile.
func (p Profile) Validate() error {
	switch {
	case len(p.Families) == 0:
		return fmt.Errorf("%w: profile %q has no fault family", ErrSchedule, p.Name)
	case p.Length <= 0:
		return fmt.Errorf("%w: profile %q: length must be positive", ErrSchedule, p.Name)
	case p.MeanGap <= 0 || p.MeanFault <= 0:
		return fmt.Errorf("%w: profile %q: mean gap and mean fault must be positive", ErrSchedule, p.Name)
	case p.Quiet < 0 || p.Recovery < 0 || p.Quiet+p.Recovery >= p.Length:
		return fmt.Errorf("%w: profile %q: quiet %s + recovery %s leave no time for faults in %s",
			ErrSchedule, p.Name, p.Quiet.D(), p.Recovery.D(), p.Length.D())
	case p.MaxOverlap < 0:
		return fmt.Errorf("%w: profile %q: negative max overlap", ErrSchedule, p.Name)
	}
	for _, w := range p.Families {
		if !w.Family.Valid() || w.Weight <= 0 {
			return fmt.Errorf("%w: profile %q: family %q weight %v", ErrSchedule, p.Name, w.Family, w.Weight)
		}
		if len(p.Kinds) > 0 && !slices.ContainsFunc(p.Kinds, func(k string) bool { return strings.HasPrefix(k, string(w.Family)+".") }) {
			return fmt.Errorf("%w: profile %q: no kind of family %q among %v", ErrSchedule, p.Name, w.Family, p.Kinds)
		}
		if len(p.Faults) > 0 && !slices.ContainsFunc(p.Faults, func(f fault.Spec) bool { return f.Fault != nil && f.Family() == w.Family }) {
			return fmt.Errorf("%w: profile %q: no fault of family %q among its faults", ErrSchedule, p.Name, w.Family)
		}
	}
	for _, k := range p.Kinds {
		if !slices.Contains(fault.Kinds(), k) {
			return fmt.Errorf("%w: profile %q: unknown fault kind %q", ErrSchedule, p.Name, k)
		}
	}
	for i, f := range p.Faults {
		if f.Fault == nil {
			return fmt.Errorf("%w: profile %q: fault %d is empty", ErrSchedule, p.Name, i)
		}
		if err := f.Validate(); err != nil {
			return fmt.Errorf("%w: profile %q: fault %d: %w", ErrSchedule, p.Name, i, err)
		}
	}
	return nil
}

// Traffic is the recorded load a schedule runs under, as the service's
// adapter describes it (tierd's: a rate, collections, a mix). It is part
// of the schedule file.
type Traffic interface {
	// Validate reports a bad traffic description, wrapping ErrSchedule.
	Validate() error
}

// Step is one fault of a schedule: applied At after the run's start and,
// for a window fault, removed For later (For is 0 for instants).
type Step struct {
	At    fault.Duration `json:"at"`
	For   fault.Duration `json:"for,omitempty"`
	Fault fault.Spec     `json:"fault"`
}

// End is when the step's fault is removed (At for an instant).
func (s Step) End() time.Duration { return s.At.D() + s.For.D() }

// String describes the step.
func (s Step) String() string {
	if s.For == 0 {
		return fmt.Sprintf("@%s %s", s.At.D(), s.Fault)
	}
	return fmt.Sprintf("@%s for %s: %s", s.At.D(), s.For.D(), s.Fault)
}

// Schedule is a timed list of fault steps and the traffic of type T to run
// them under. Its JSON file is what replay reads.
type Schedule[T Traffic] struct {
	Format  string  `json:"format"`
	Seed    uint64  `json:"seed"`
	Profile Profile `json:"profile"`
	Traffic T       `json:"traffic"`
	Steps   []Step  `json:"steps"`
}

// Length is the run's length.
func (s Schedule[T]) Length() time.Duration { return s.Profile.Length.D() }

// Validate checks the schedule: format, traffic, steps in order of At,
// inside the run, windows with a length and instants without.
func (s Schedule[T]) Validate() error {
	if s.Format != ScheduleFormat {
		return fmt.Errorf("%w: format %q, want %q", ErrSchedule, s.Format, ScheduleFormat)
	}
	if s.Profile.Length <= 0 {
		return fmt.Errorf("%w: length must be positive", ErrSchedule)
	}
	if err := s.Traffic.Validate(); err != nil {
		return err
	}
	return ValidateSteps(s.Steps, s.Length())
}

// ValidateSteps checks steps for a run of the given length: each with a
// fault, in order of At, inside the run, windows with a length and
// instants without.
func ValidateSteps(steps []Step, length time.Duration) error {
	for i, st := range steps {
		switch {
		case st.Fault.Fault == nil:
			return fmt.Errorf("%w: step %d has no fault", ErrSchedule, i)
		case i > 0 && st.At < steps[i-1].At:
			return fmt.Errorf("%w: step %d starts before step %d", ErrSchedule, i, i-1)
		case st.At < 0 || st.End() > length:
			return fmt.Errorf("%w: step %d (%s) outside the run's %s", ErrSchedule, i, st, length)
		case fault.IsInstant(st.Fault) && st.For != 0:
			return fmt.Errorf("%w: step %d: instant fault %s has a length", ErrSchedule, i, st.Fault.Kind())
		case !fault.IsInstant(st.Fault) && st.For <= 0:
			return fmt.Errorf("%w: step %d: window fault %s has no length", ErrSchedule, i, st.Fault.Kind())
		}
	}
	return nil
}

// Marshal renders the schedule as indented JSON with a final newline: the
// same schedule always gives the same bytes.
func (s Schedule[T]) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("nemesis: encode schedule: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes the schedule to path, creating its folder.
func (s Schedule[T]) WriteFile(path string) error {
	b, err := s.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("nemesis: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("nemesis: write schedule: %w", err)
	}
	return nil
}

// ParseSchedule reads and validates a schedule whose traffic is a T;
// unknown fields are errors.
func ParseSchedule[T Traffic](b []byte) (Schedule[T], error) {
	var s Schedule[T]
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Schedule[T]{}, fmt.Errorf("%w: %w", ErrSchedule, err)
	}
	if err := s.Validate(); err != nil {
		return Schedule[T]{}, err
	}
	return s, nil
}

// ReadSchedule reads a schedule file whose traffic is a T.
func ReadSchedule[T Traffic](path string) (Schedule[T], error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Schedule[T]{}, fmt.Errorf("nemesis: read schedule: %w", err)
	}
	s, err := ParseSchedule[T](b)
	if err != nil {
		return Schedule[T]{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
