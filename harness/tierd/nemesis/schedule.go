// Package nemesis runs random fault schedules against tierd while the
// open-loop load driver sends recorded traffic, and judges the run
// (history checkers, read-backs after restarts, orphans in MinIO, the S3
// client's behaviour, per-phase budgets); it replays recorded schedules
// and shrinks failing ones. Schedules, their generation, execution,
// per-phase budgets and shrinking are the service-independent core
// (harness/nemesis); this package is tierd's side: its traffic, its checks
// and the types of the core instantiated for it.
package nemesis

import (
	"fmt"
	"slices"

	core "github.com/tierchaos/tierchaos/harness/nemesis"
	"github.com/tierchaos/tierchaos/harness/tierd"
)

// ScheduleFormat names the schedule file format.
const ScheduleFormat = core.ScheduleFormat

// ErrSchedule is wrapped by every error about a malformed schedule or
// profile.
var ErrSchedule = core.ErrSchedule

// Weight is a fault family's share of the faults a profile generates.
type Weight = core.Weight

// Profile shapes the schedules the generator makes.
type Profile = core.Profile

// Step is one fault of a schedule.
type Step = core.Step

// Schedule is a timed list of fault steps and tierd traffic to run them
// under.
type Schedule = core.Schedule[Traffic]

// ParseSchedule reads and validates a schedule; unknown fields are errors.
func ParseSchedule(b []byte) (Schedule, error) { return core.ParseSchedule[Traffic](b) }

// ReadSchedule reads a schedule file.
func ReadSchedule(path string) (Schedule, error) { return core.ReadSchedule[Traffic](path) }

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
