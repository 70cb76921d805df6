// Package nemesis generates random fault schedules from a seed and a
// profile, runs them against a harness stack while the open-loop load
// driver sends recorded traffic, judges the run (history checkers,
// read-backs after restarts, orphans in MinIO, the S3 client's behaviour,
// per-phase budgets), replays recorded schedules and shrinks failing ones.
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
	"github.com/tierchaos/tierchaos/harness/tierd"
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
	}
	for _, k := range p.Kinds {
		if !slices.Contains(fault.Kinds(), k) {
			return fmt.Errorf("%w: profile %q: unknown fault kind %q", ErrSchedule, p.Name, k)
		}
	}
	return nil
}

// Traffic describes the recorded load the run sends.
type Traffic struct {
	// Rate is the open-loop arrival rate in requests per second.
	Rate float64 `json:"rate"`
	// Collections is how many collections the traffic spreads over; the
	// first HotCollections of them are never demoted by the traffic.
	Collections    int `json:"collections"`
	HotCollections int `json:"hot_collections"`
	// Dimension of every vector.
	Dimension int `json:"dimension"`
	// Seed drives arrivals and every choice of every request.
	Seed uint64 `json:"seed"`
	// MaxInFlight bounds concurrent requests (0: the driver's default).
	MaxInFlight int `json:"max_in_flight,omitempty"`
	// Without leaves these operations out of the mix (names as in
	// OpNames); the others keep their weights.
	Without []string `json:"without,omitempty"`
	// API is the tierd API the traffic speaks: tierd.APIREST ("", the
	// default) or tierd.APIGRPC. Setup, read-backs and the final read go
	// through it too; the run's own admin calls stay on REST.
	API tierd.API `json:"api,omitempty"`
}

// OpNames are the traffic's operations, in the mix's order.
func OpNames() []string {
	var out []string
	for _, m := range trafficMix() {
		out = append(out, m.name)
	}
	return out
}

// Validate checks the traffic.
func (t Traffic) Validate() error {
	switch {
	case !(t.Rate > 0):
		return fmt.Errorf("%w: traffic rate %v", ErrSchedule, t.Rate)
	case t.Collections < 1 || t.HotCollections < 0 || t.HotCollections > t.Collections:
		return fmt.Errorf("%w: traffic collections %d (hot %d)", ErrSchedule, t.Collections, t.HotCollections)
	case t.Dimension < 1:
		return fmt.Errorf("%w: traffic dimension %d", ErrSchedule, t.Dimension)
	}
	if _, err := tierd.ParseAPI(string(t.API)); err != nil {
		return fmt.Errorf("%w: traffic: %w", ErrSchedule, err)
	}
	names := OpNames()
	for _, w := range t.Without {
		if !slices.Contains(names, w) {
			return fmt.Errorf("%w: traffic without %q: not an operation (one of %v)", ErrSchedule, w, names)
		}
	}
	if len(t.mix()) == 0 {
		return fmt.Errorf("%w: traffic without every operation", ErrSchedule)
	}
	return nil
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

// Schedule is a timed list of fault steps and the traffic to run them
// under. Its JSON file is what replay reads.
type Schedule struct {
	Format  string  `json:"format"`
	Seed    uint64  `json:"seed"`
	Profile Profile `json:"profile"`
	Traffic Traffic `json:"traffic"`
	Steps   []Step  `json:"steps"`
}

// Length is the run's length.
func (s Schedule) Length() time.Duration { return s.Profile.Length.D() }

// Validate checks the schedule: format, traffic, steps in order of At,
// inside the run, windows with a length and instants without.
func (s Schedule) Validate() error {
	if s.Format != ScheduleFormat {
		return fmt.Errorf("%w: format %q, want %q", ErrSchedule, s.Format, ScheduleFormat)
	}
	if s.Profile.Length <= 0 {
		return fmt.Errorf("%w: length must be positive", ErrSchedule)
	}
	if err := s.Traffic.Validate(); err != nil {
		return err
	}
	for i, st := range s.Steps {
		switch {
		case st.Fault.Fault == nil:
			return fmt.Errorf("%w: step %d has no fault", ErrSchedule, i)
		case i > 0 && st.At < s.Steps[i-1].At:
			return fmt.Errorf("%w: step %d starts before step %d", ErrSchedule, i, i-1)
		case st.At < 0 || st.End() > s.Length():
			return fmt.Errorf("%w: step %d (%s) outside the run's %s", ErrSchedule, i, st, s.Length())
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
func (s Schedule) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("nemesis: encode schedule: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes the schedule to path, creating its folder.
func (s Schedule) WriteFile(path string) error {
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

// ParseSchedule reads and validates a schedule; unknown fields are errors.
func ParseSchedule(b []byte) (Schedule, error) {
	var s Schedule
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Schedule{}, fmt.Errorf("%w: %w", ErrSchedule, err)
	}
	if err := s.Validate(); err != nil {
		return Schedule{}, err
	}
	return s, nil
}

// ReadSchedule reads a schedule file.
func ReadSchedule(path string) (Schedule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Schedule{}, fmt.Errorf("nemesis: read schedule: %w", err)
	}
	s, err := ParseSchedule(b)
	if err != nil {
		return Schedule{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
