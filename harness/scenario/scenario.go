// Package scenario is the table runner of the chaos suites: a suite lists
// its rows as Scenario values and Run runs each as a subtest with a
// timeout, its faults and guarantees logged, and a summary at its end.
//
// A row is either custom (its Run injects its faults and asserts, step by
// step) or declarative: its Faults are harness/fault values, its Traffic
// runs against the case while the runner injects them (placed by the
// row's Timing), and the runner then judges its Budgets, phase by phase,
// and runs its Checks. The same declarative row runs under the nemesis
// too (RunNemesis): random schedules drawn from its own faults, replayed
// from their files and shrunk when they fail.
//
// The package is generic in the case type a row runs against, so it
// depends on no service: the tierd suites run rows on *tierd.Case, the
// kvstore example on a case type of its own.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tierchaos/tierchaos/harness/nemesis"
)

// DefaultTimeout bounds a row whose Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// KindCustom is the kind of a fault given as prose (Described).
const KindCustom = "custom"

// Fault is a fault a row injects. harness/fault's fault.Fault values
// satisfy it; a fault that has no such value is given as prose with
// Described.
type Fault interface {
	// Kind is the fault's stable name, e.g. "process.kill".
	Kind() string
	// String describes the fault with its parameters, on one line.
	String() string
}

// described is a fault given as prose.
type described string

// Described returns a fault of kind "custom" that says what the row
// injects, for a fault that is not a value of harness/fault (a held S3
// request, a quota setting, a cut at a named hook).
func Described(text string) Fault { return described(text) }

// Kind is KindCustom.
func (described) Kind() string { return KindCustom }

// String is the description.
func (d described) String() string { return string(d) }

// Scenario is one row of a suite, run against a case of type C.
type Scenario[C any] struct {
	// Name names the row's subtest; unique within its table.
	Name string
	// Faults are the faults the row injects; at least one. A row that
	// injects none says so with Described("none: ...").
	Faults []Fault
	// Guards says what the row guarantees: the invariant its checks
	// protect.
	Guards string
	// Variant is handed to the suite's newCase unchanged: it names how the
	// row's case differs from the suite's default case (for the tierd
	// suites, the API its client speaks). Empty is the default case.
	Variant string
	// Timeout bounds the context Run gets; DefaultTimeout when zero.
	Timeout time.Duration
	// Run is a custom row's steps, with its checks. A declarative row has
	// Traffic instead.
	Run func(ctx context.Context, t *testing.T, c C)

	// Traffic makes the row declarative: it runs against the case while
	// the runner injects Faults (each a harness/fault value) as Timing
	// places them; the case type must be a Target or a fault.Stack.
	Traffic Traffic[C]
	// Timing places a declarative row's faults on its timeline.
	Timing Timing
	// Budgets are a declarative row's per-phase gates on the operations
	// its traffic recorded (steady, under each fault family, recovery).
	Budgets []nemesis.Budget
	// Checks run after a declarative row's traffic and faults.
	Checks []Check[C]
}

// timeout is the row's timeout, DefaultTimeout when unset.
func (s Scenario[C]) timeout() time.Duration {
	if s.Timeout == 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// ErrInvalid is wrapped by every error of Validate.
var ErrInvalid = errors.New("scenario: invalid table")

// Validate checks a table: at least one row, and for each row a non-empty
// name no other row has, a Run, guards, a non-negative timeout, and at
// least one fault, each with a kind and a description. The error names
// every bad row by index and name, and wraps ErrInvalid.
func Validate[C any](scenarios []Scenario[C]) error {
	if len(scenarios) == 0 {
		return fmt.Errorf("%w: no rows", ErrInvalid)
	}
	var errs []error
	bad := func(i int, s Scenario[C], format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: row %d %q: %s", ErrInvalid, i, s.Name, fmt.Sprintf(format, args...)))
	}
	first := map[string]int{}
	for i, s := range scenarios {
		if s.Name == "" {
			bad(i, s, "no name")
		} else if j, ok := first[s.Name]; ok {
			bad(i, s, "name already used by row %d", j)
		} else {
			first[s.Name] = i
		}
		switch {
		case s.Run == nil && !s.declared():
			bad(i, s, "no Run and no Traffic")
		case s.Run != nil && s.declared():
			bad(i, s, "both Run and Traffic: a row is custom or declarative")
		case s.declared():
			if !hasFaultStack(*new(C)) {
				bad(i, s, "declarative, but its case type %T has no FaultStack", *new(C))
			}
			if _, ok := s.faultValues(); !ok {
				bad(i, s, "declarative, but not every fault is a harness/fault value")
			} else if _, _, err := s.Steps(); err != nil {
				bad(i, s, "its faults cannot be placed: %v", err)
			}
			if len(s.Budgets) == 0 && len(s.Checks) == 0 {
				bad(i, s, "declarative, but no Budgets and no Checks: nothing would be judged")
			}
		default:
			if len(s.Budgets) > 0 || len(s.Checks) > 0 {
				bad(i, s, "Budgets and Checks need Traffic (a custom row asserts in its Run)")
			}
		}
		if s.Guards == "" {
			bad(i, s, "no Guards")
		}
		if s.Timeout < 0 {
			bad(i, s, "negative Timeout %s", s.Timeout)
		}
		if len(s.Faults) == 0 {
			bad(i, s, "no Faults (a row without faults says so with Described)")
		}
		for k, f := range s.Faults {
			switch {
			case f == nil:
				bad(i, s, "fault %d is nil", k)
			case f.Kind() == "":
				bad(i, s, "fault %d (%s) has no kind", k, f.String())
			case f.String() == "":
				bad(i, s, "fault %d of kind %s has no description", k, f.Kind())
			}
		}
	}
	return errors.Join(errs...)
}

// Run validates scenarios (a bad table fails t, naming its bad rows) and
// runs each row as a subtest of t named after the row: it logs the row's
// faults (kind and description), guards and variant, gives Run a context
// that ends after the row's timeout, makes the row's case with newCase,
// runs the row, and logs how long the case took and how it ended (also
// when it failed or skipped).
func Run[C any](t *testing.T, scenarios []Scenario[C], newCase func(t *testing.T, s Scenario[C]) C) {
	t.Helper()
	if err := Validate(scenarios); err != nil {
		t.Fatal(err)
	}
	for _, s := range scenarios {
		t.Run(s.Name, func(t *testing.T) { runOne(t, s, newCase) })
	}
}

// runOne runs one row in its subtest t.
func runOne[C any](t *testing.T, s Scenario[C], newCase func(t *testing.T, s Scenario[C]) C) {
	for _, f := range s.Faults {
		t.Logf("fault (%s): %s", f.Kind(), f.String())
	}
	t.Logf("guards: %s", s.Guards)
	if s.Variant != "" {
		t.Logf("variant: %s", s.Variant)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	t.Cleanup(cancel)
	start := time.Now()
	// Deferred, so that it is logged when the row fails or skips too
	// (FailNow and SkipNow run deferred calls).
	defer func() {
		t.Logf("case %s %s after %s (faults: %d, timeout %s)",
			s.Name, outcome(t), time.Since(start).Round(time.Millisecond), len(s.Faults), s.timeout())
	}()
	c := newCase(t, s)
	if s.Run != nil {
		s.Run(ctx, t, c)
		return
	}
	steps, length, err := s.Steps()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("traffic: %s; %d steps over %s", s.Traffic, len(steps), length)
	out, err := Execute(ctx, s, c, steps, length, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	report(t, out)
}

// report logs a declarative run's phases and fails t with its findings.
func report(t *testing.T, out Outcome) {
	t.Helper()
	for _, p := range out.Phases {
		t.Logf("phase %s: %d ops, %d ok, %d errors, p95 %s, codes %v", p.Phase, p.Ops, p.OK, p.Errors, p.P95.Round(time.Microsecond), p.Codes)
	}
	for _, n := range out.Notes {
		t.Logf("note: %s", n)
	}
	for _, f := range out.Findings {
		t.Error(f)
	}
}

// outcome says how t has ended so far.
func outcome(t *testing.T) string {
	switch {
	case t.Failed():
		return "failed"
	case t.Skipped():
		return "skipped"
	}
	return "passed"
}
