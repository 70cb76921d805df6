package scenario_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/nemesis"
	"github.com/tierchaos/tierchaos/harness/scenario"
)

// system is a fake service: it answers while it is up and not cut off,
// and counts its restarts.
type system struct {
	cutOff   atomic.Bool
	down     atomic.Bool
	restarts atomic.Int32
}

// declCase is a declarative row's case: the fake service and the record
// of the current run.
type declCase struct {
	sys  *system
	seed uint64
	mu   sync.Mutex
	ops  []nemesis.Op
}

func (*declCase) FaultStack() fault.Stack { return nil } // the fake faults need no stack
func (c *declCase) CaseSeed() uint64      { return c.seed }

func (c *declCase) record(op nemesis.Op) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops = append(c.ops, op)
}

func (c *declCase) recorded() []nemesis.Op {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]nemesis.Op(nil), c.ops...)
}

// cut is a window fault that cuts the fake service off.
type cut struct{ sys *system }

func (cut) Kind() string                 { return fault.KindNetDown }
func (cut) Family() fault.Family         { return fault.FamilyNet }
func (cut) Validate() error              { return nil }
func (cut) String() string               { return "fake cut" }
func (cut) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }

func (f cut) Apply(context.Context, fault.Stack) (fault.Active, error) {
	f.sys.cutOff.Store(true)
	return removeFunc(func() { f.sys.cutOff.Store(false) }), nil
}

// restart is an instant fault: the service is down for 50 ms.
type restart struct{ sys *system }

func (restart) Kind() string                 { return fault.KindProcessKill }
func (restart) Family() fault.Family         { return fault.FamilyProcess }
func (restart) Validate() error              { return nil }
func (restart) String() string               { return "fake restart" }
func (restart) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }
func (f restart) Run(ctx context.Context, _ fault.Stack) error {
	sys := f.sys
	sys.down.Store(true)
	defer sys.down.Store(false)
	sys.restarts.Add(1)
	select {
	case <-time.After(50 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type removeFunc func()

func (r removeFunc) Remove(context.Context) error { r(); return nil }

// traffic does an operation every 2 ms, failing while the service is cut
// off or down.
type traffic struct{}

func (traffic) String() string { return "fake traffic every 2 ms" }

func (traffic) Start(ctx context.Context, c *declCase) (scenario.Load, error) {
	c.mu.Lock()
	c.ops = nil // a run records afresh
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	l := &load{c: c, cancel: cancel, epoch: time.Now()}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			call := l.Now()
			ok := !c.sys.cutOff.Load() && !c.sys.down.Load()
			op := nemesis.Op{Kind: "put", Call: call, Return: call + int64(100*time.Microsecond), OK: ok}
			if !ok {
				op.Code = "unavailable"
			}
			c.record(op)
		}
	}()
	return l, nil
}

type load struct {
	c      *declCase
	cancel context.CancelFunc
	wg     sync.WaitGroup
	epoch  time.Time
}

func (l *load) Stop()             { l.cancel(); l.wg.Wait() }
func (l *load) Now() int64        { return int64(time.Since(l.epoch)) }
func (l *load) Ops() []nemesis.Op { return l.c.recorded() }

// declRow is a declarative row: the fake faults under the fake traffic,
// with budgets that hold only if the faults happened and the service came
// back, and a check of the restarts.
func declRow(name string, faults ...scenario.Fault) scenario.Scenario[*declCase] {
	return scenario.Scenario[*declCase]{
		Name: name, Faults: faults, Guards: "puts fail only while the service is cut off or down",
		Traffic: traffic{},
		Timing:  scenario.Timing{Quiet: 100 * time.Millisecond, Hold: 150 * time.Millisecond, Gap: 100 * time.Millisecond, Recovery: 150 * time.Millisecond},
		Budgets: []nemesis.Budget{
			{Phase: nemesis.PhaseSteady, MaxErrorRate: -1},
			{Phase: nemesis.PhaseRecovery, MaxErrorRate: -1, Grace: fault.Duration(10 * time.Millisecond)},
			{Phase: nemesis.FaultPhase(fault.FamilyNet), MinErrors: 5},
		},
		Checks: []scenario.Check[*declCase]{{Name: "restarted", Check: func(_ context.Context, c *declCase, _ scenario.Execution) error {
			if c.sys.restarts.Load() == 0 {
				return errors.New("the service never restarted")
			}
			return nil
		}}},
	}
}

func newDeclCase(sys *system) func(*testing.T, scenario.Scenario[*declCase]) *declCase {
	return func(*testing.T, scenario.Scenario[*declCase]) *declCase { return &declCase{sys: sys, seed: 42} }
}

// TestStepsPlaceTheFaults: in sequence, Gap apart; together, windows at
// once and instants in their middle.
func TestStepsPlaceTheFaults(t *testing.T) {
	sys := &system{}
	r := declRow("r", cut{sys}, restart{sys}, cut{sys})
	steps, length, err := r.Steps()
	require.NoError(t, err)
	var got []string
	for _, st := range steps {
		got = append(got, st.String())
	}
	assert.Equal(t, []string{"@100ms for 150ms: fake cut", "@350ms fake restart", "@450ms for 150ms: fake cut"}, got)
	assert.Equal(t, 750*time.Millisecond, length)
	r.Timing.Together = true
	steps, length, err = r.Steps()
	require.NoError(t, err)
	got = nil
	for _, st := range steps {
		got = append(got, st.String())
	}
	assert.Equal(t, []string{"@100ms for 150ms: fake cut", "@100ms for 150ms: fake cut", "@175ms fake restart"}, got)
	assert.Equal(t, 400*time.Millisecond, length)
}

// TestExecuteJudgesBudgetsAndChecks: a run with the faults passes; the
// same row without them fails its fault-phase budget (no errors: the
// fault had no effect would go unnoticed otherwise) and its check.
func TestExecuteJudgesBudgetsAndChecks(t *testing.T) {
	sys := &system{}
	ctx := context.Background()
	r := declRow("r", cut{sys}, restart{sys})
	c := &declCase{sys: sys}
	steps, length, err := r.Steps()
	require.NoError(t, err)
	out, err := scenario.Execute(ctx, r, c, steps, length, nil)
	require.NoError(t, err)
	assert.Empty(t, out.Findings)
	assert.Positive(t, out.Ops)
	assert.EqualValues(t, 1, sys.restarts.Load())

	// Steps that never inject: the fault phase is missing, so its
	// MinErrors budget has nothing to judge, and the check fails.
	sys2 := &system{}
	out, err = scenario.Execute(ctx, r, &declCase{sys: sys2}, nil, length, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"check restarted: the service never restarted"}, out.Findings)

	// A cut off service during the recovery phase breaks its budget.
	sys3 := &system{}
	late := []nemesis.Step{{At: fault.Duration(length - 100*time.Millisecond), For: fault.Duration(50 * time.Millisecond), Fault: fault.Spec{Fault: restartless{sys3}}}}
	sys3.cutOff.Store(true)
	out, err = scenario.Execute(ctx, r, &declCase{sys: sys3}, late, length, nil)
	require.NoError(t, err)
	joined := strings.Join(out.Findings, "\n")
	assert.Contains(t, joined, "budget: steady: all error rate")
	assert.Contains(t, joined, "check restarted")
}

// restartless is a window fault that ends the fake service's cut: the
// fault phase then has no errors, which its MinErrors budget catches.
type restartless struct{ sys *system }

func (restartless) Kind() string                 { return fault.KindNetDown }
func (restartless) Family() fault.Family         { return fault.FamilyNet }
func (restartless) Validate() error              { return nil }
func (restartless) String() string               { return "heal" }
func (restartless) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }
func (f restartless) Apply(context.Context, fault.Stack) (fault.Active, error) {
	f.sys.cutOff.Store(false)
	return removeFunc(func() {}), nil
}

// TestExecuteFaultPhaseNeedsErrors: a fault that had no effect fails the
// row's MinErrors budget.
func TestExecuteFaultPhaseNeedsErrors(t *testing.T) {
	sys := &system{}
	ctx := context.Background()
	r := declRow("r", restartless{sys}, restart{sys})
	steps, length, err := r.Steps()
	require.NoError(t, err)
	out, err := scenario.Execute(ctx, r, &declCase{sys: sys}, steps, length, nil)
	require.NoError(t, err)
	require.Len(t, out.Findings, 1)
	assert.Contains(t, out.Findings[0], "budget: fault:net: all errors: 0 of")
}

// poke is a worker-family instant fault: a request to the fake service,
// which fails while it is down (or always, when broken).
type poke struct {
	sys    *system
	broken bool
}

func (poke) Kind() string                 { return "worker.run_once" }
func (poke) Family() fault.Family         { return fault.FamilyWorker }
func (poke) Validate() error              { return nil }
func (poke) String() string               { return "fake worker cycle" }
func (poke) MarshalJSON() ([]byte, error) { return []byte(`{}`), nil }
func (f poke) Run(context.Context, fault.Stack) error {
	if f.broken || f.sys.down.Load() {
		return errors.New("connection refused")
	}
	return nil
}

// TestExecuteNotesStepsThatMetTheServiceDown: a worker cycle that fails
// while a restart has the service down is a note; one that fails with the
// service up is a finding.
func TestExecuteNotesStepsThatMetTheServiceDown(t *testing.T) {
	ctx := context.Background()
	at := func(d time.Duration, f fault.Fault) nemesis.Step {
		return nemesis.Step{At: fault.Duration(d), Fault: fault.Spec{Fault: f}}
	}
	tests := []struct {
		name             string
		steps            func(sys *system) []nemesis.Step
		findings, notes  int
		findingSubstring string
	}{
		{"during the restart", func(sys *system) []nemesis.Step {
			return []nemesis.Step{at(100*time.Millisecond, restart{sys}), at(120*time.Millisecond, poke{sys: sys}), at(300*time.Millisecond, poke{sys: sys})}
		}, 0, 1, ""},
		{"with the service up", func(sys *system) []nemesis.Step {
			return []nemesis.Step{at(100*time.Millisecond, restart{sys}), at(300*time.Millisecond, poke{sys: sys, broken: true})}
		}, 1, 0, "step 1 (fake worker cycle)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := &system{}
			r := declRow("r", restart{sys})
			r.Budgets = []nemesis.Budget{{Phase: nemesis.PhaseSteady, MaxErrorRate: -1}}
			out, err := scenario.Execute(ctx, r, &declCase{sys: sys}, tt.steps(sys), 500*time.Millisecond, nil)
			require.NoError(t, err)
			assert.Len(t, out.Findings, tt.findings, "findings: %v", out.Findings)
			assert.Len(t, out.Notes, tt.notes, "notes: %v", out.Notes)
			if tt.findingSubstring != "" && len(out.Findings) > 0 {
				assert.Contains(t, out.Findings[0], tt.findingSubstring)
			}
		})
	}
}

// TestValidateDeclarativeRows: a declarative row needs value faults, a
// Target case, something to judge, and no Run.
func TestValidateDeclarativeRows(t *testing.T) {
	good := declRow("good", cut{&system{}})
	require.NoError(t, scenario.Validate([]scenario.Scenario[*declCase]{good}))
	prose := declRow("prose", scenario.Described("a cut"))
	both := declRow("both", cut{&system{}})
	both.Run = func(context.Context, *testing.T, *declCase) {}
	nothing := declRow("nothing", cut{&system{}})
	nothing.Budgets, nothing.Checks = nil, nil
	err := scenario.Validate([]scenario.Scenario[*declCase]{prose, both, nothing})
	require.ErrorIs(t, err, scenario.ErrInvalid)
	for _, want := range []string{`"prose": declarative, but not every fault`, `"both": both Run and Traffic`, `"nothing": declarative, but no Budgets and no Checks`} {
		assert.Contains(t, err.Error(), want)
	}
	err = scenario.Validate([]scenario.Scenario[*plain]{{Name: "p", Faults: []scenario.Fault{cut{&system{}}}, Guards: "g",
		Traffic: plainTraffic{}, Checks: []scenario.Check[*plain]{{Name: "x", Check: func(context.Context, *plain, scenario.Execution) error { return nil }}}}})
	require.ErrorContains(t, err, "has no FaultStack")
}

// plain is a case type without FaultStack.
type plain struct{}

type plainTraffic struct{}

func (plainTraffic) String() string { return "none" }
func (plainTraffic) Start(context.Context, *plain) (scenario.Load, error) {
	return nil, errors.New("never started")
}

// TestRunNemesisDrawsFromTheRowsFaults: the nemesis runs a declarative
// row under a schedule of its own faults and judges it by the row's
// budgets and checks; a failing one leaves its schedule file. The failing
// run happens in a child process.
func TestRunNemesisDrawsFromTheRowsFaults(t *testing.T) {
	const env = "SCENARIO_TEST_NEMESIS_DIR"
	if dir := os.Getenv(env); dir != "" {
		sys := &system{}
		sys.cutOff.Store(true) // broken from the start: the steady budget fails
		row := declRow("broken", cut{sys}, restart{sys})
		scenario.RunNemesis(t, []scenario.Scenario[*declCase]{row}, newDeclCase(sys), scenario.NemesisOptions{Length: time.Second, Dir: dir})
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunNemesisDrawsFromTheRowsFaults$", "-test.v")
	cmd.Env = append(os.Environ(), env+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child fails: %s", out)
	assert.Contains(t, string(out), "budget: steady")
	files, _ := filepath.Glob(filepath.Join(dir, "broken-42-*", "schedule.json"))
	require.Len(t, files, 1, "%s", out)
	sch, err := nemesis.ReadSchedule[scenario.RowTraffic](files[0])
	require.NoError(t, err)
	assert.Equal(t, scenario.RowTraffic{Row: "broken", Seed: 42}, sch.Traffic)
	require.NotEmpty(t, sch.Steps)
	for _, st := range sch.Steps {
		assert.Contains(t, []string{fault.KindNetDown, fault.KindProcessKill}, st.Fault.Kind(), "drawn from the row's own faults")
	}
}

// derefCase reads its receiver in FaultStack, as *tierd.Case does.
type derefCase struct{ s fault.Stack }

func (c *derefCase) FaultStack() fault.Stack { return c.s }

type derefTraffic struct{}

func (derefTraffic) String() string { return "none" }
func (derefTraffic) Start(context.Context, *derefCase) (scenario.Load, error) {
	return nil, errors.New("never started")
}

// TestValidateCallsNothingOnTheCase: Validate learns from the case type
// alone that it names a stack; it never calls FaultStack on a nil case.
func TestValidateCallsNothingOnTheCase(t *testing.T) {
	row := scenario.Scenario[*derefCase]{Name: "r", Faults: []scenario.Fault{cut{&system{}}}, Guards: "g", Traffic: derefTraffic{},
		Checks: []scenario.Check[*derefCase]{{Name: "x", Check: func(context.Context, *derefCase, scenario.Execution) error { return nil }}}}
	require.NotPanics(t, func() { require.NoError(t, scenario.Validate([]scenario.Scenario[*derefCase]{row})) })
}
