package scenario

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/nemesis"
)

// Target is a case whose faults go to a stack: a declarative row's case
// type implements it (*tierd.Case does), or is itself a fault.Stack
// (*stack.Case is).
type Target interface {
	// FaultStack is the stack the row's faults are injected into.
	FaultStack() fault.Stack
}

// hasFaultStack reports whether values of c's type name a stack, without
// calling anything on c (a zero case is a nil pointer).
func hasFaultStack(c any) bool {
	switch c.(type) {
	case Target, fault.Stack:
		return true
	}
	return false
}

// faultStack is the stack a case's faults go to, and whether it has one.
func faultStack(c any) (fault.Stack, bool) {
	switch v := c.(type) {
	case Target:
		return v.FaultStack(), true
	case fault.Stack:
		return v, true
	}
	return nil, false
}

// Traffic is the load a declarative row runs against its case while its
// faults happen. It records what it does where its checks can read it
// (in the case: a case type of the suite's own holds the recorder).
type Traffic[C any] interface {
	// String describes the traffic on one line.
	String() string
	// Start starts the traffic against c; it runs until the returned
	// Load's Stop.
	Start(ctx context.Context, c C) (Load, error)
}

// Load is traffic running.
type Load interface {
	// Stop ends the traffic and waits until its operations have ended.
	Stop()
	// Now reads the clock of Ops, in nanoseconds.
	Now() int64
	// Ops are the operations recorded so far, as the budgets judge them.
	Ops() []nemesis.Op
}

// Check judges a case once a declarative row's traffic has stopped and
// its faults are removed: it reads real state back from the service and
// the history the traffic recorded.
type Check[C any] struct {
	// Name names the check in findings.
	Name string
	// Check returns an error describing what it found wrong in c after
	// the run e.
	Check func(ctx context.Context, c C, e Execution) error
}

// Execution is what a check is told of the run it judges.
type Execution struct {
	// Applied is what happened to each step.
	Applied []nemesis.Applied
	// Start is the traffic's clock (Load.Now) at the steps' time zero: a
	// step's Start and End added to it are on the clock of the traffic's
	// operations.
	Start int64
}

// Timing places a declarative row's faults on its timeline. Zero fields
// take the defaults in brackets.
type Timing struct {
	// Quiet is the fault-free head of the row: the steady phase [2s].
	Quiet time.Duration
	// Hold is how long each window fault stays in effect [3s].
	Hold time.Duration
	// Gap is the fault-free time between two faults in sequence [2s].
	Gap time.Duration
	// Recovery is the fault-free tail after the last fault [3s].
	Recovery time.Duration
	// Together puts every window fault in effect at once, from Quiet for
	// Hold, and every instant fault in the middle of that window (a kill
	// while writes are held); otherwise the faults come one after
	// another, in the order listed, Gap apart.
	Together bool
}

func (tm Timing) withDefaults() Timing {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&tm.Quiet, 2*time.Second)
	def(&tm.Hold, 3*time.Second)
	def(&tm.Gap, 2*time.Second)
	def(&tm.Recovery, 3*time.Second)
	return tm
}

// declared reports whether the row is declarative: it has Traffic.
func (s Scenario[C]) declared() bool { return s.Traffic != nil }

// faultValues are the row's faults as injectable values; ok is false when
// one of them is not (a Described fault).
func (s Scenario[C]) faultValues() ([]fault.Spec, bool) {
	var out []fault.Spec
	for _, f := range s.Faults {
		ff, ok := f.(fault.Fault)
		if !ok {
			return nil, false
		}
		out = append(out, fault.Spec{Fault: ff})
	}
	return out, true
}

// Steps is the row's fixed schedule: its faults placed by its Timing, and
// the run's length. It is what the table runner injects.
func (s Scenario[C]) Steps() ([]nemesis.Step, time.Duration, error) {
	faults, ok := s.faultValues()
	if !ok {
		return nil, 0, fmt.Errorf("%w: row %q: a declarative row's faults must be harness/fault values", ErrInvalid, s.Name)
	}
	tm := s.Timing.withDefaults()
	var steps []nemesis.Step
	at := tm.Quiet
	end := tm.Quiet
	if tm.Together {
		for _, f := range faults {
			st := nemesis.Step{At: fault.Duration(tm.Quiet), Fault: f}
			if fault.IsInstant(f) {
				st.At = fault.Duration(tm.Quiet + tm.Hold/2)
			} else {
				st.For = fault.Duration(tm.Hold)
			}
			steps = append(steps, st)
		}
		end = tm.Quiet + tm.Hold
		// Steps in order of At: windows first, then the instants.
		var ordered []nemesis.Step
		for _, st := range steps {
			if st.For > 0 {
				ordered = append(ordered, st)
			}
		}
		for _, st := range steps {
			if st.For == 0 {
				ordered = append(ordered, st)
			}
		}
		steps = ordered
	} else {
		for i, f := range faults {
			if i > 0 {
				at += tm.Gap
			}
			st := nemesis.Step{At: fault.Duration(at), Fault: f}
			if !fault.IsInstant(f) {
				st.For = fault.Duration(tm.Hold)
				at += tm.Hold
			}
			steps = append(steps, st)
			end = at
		}
	}
	length := end + tm.Recovery
	if err := nemesis.ValidateSteps(steps, length); err != nil {
		return nil, 0, err
	}
	return steps, length, nil
}

// Outcome is what a declarative run of a row found.
type Outcome struct {
	// Applied is what happened to each step.
	Applied []nemesis.Applied
	// Phases are the per-phase statistics and budget verdicts.
	Phases []nemesis.PhaseReport
	// Findings are the reasons the run failed: a step that could not be
	// injected, a broken budget, a failed check.
	Findings []string
	// Notes are what the run saw that is not a failure: a step that could
	// not be applied because a process fault had the service down at the
	// time (nemesis.Excused).
	Notes []string
	// Ops is how many operations the traffic recorded.
	Ops int
}

// Failed reports whether the run found anything.
func (o Outcome) Failed() bool { return len(o.Findings) > 0 }

// Execute runs a declarative row's traffic against c while steps (applied
// at their offsets from the traffic's start) inject its faults into c's
// stack, stops the traffic length after its start, judges the row's
// budgets on the recorded operations, phase by phase, and runs its
// checks. The error is for a run that could not be carried out (the
// traffic did not start); what the run found is in the Outcome.
func Execute[C any](ctx context.Context, s Scenario[C], c C, steps []nemesis.Step, length time.Duration, log *slog.Logger) (Outcome, error) {
	if !s.declared() {
		return Outcome{}, fmt.Errorf("%w: row %q has no Traffic", ErrInvalid, s.Name)
	}
	fs, ok := faultStack(c)
	if !ok {
		return Outcome{}, fmt.Errorf("%w: row %q: its case type %T has no FaultStack", ErrInvalid, s.Name, c)
	}
	if err := nemesis.ValidateSteps(steps, length); err != nil {
		return Outcome{}, err
	}
	if log == nil {
		log = slog.Default()
	}
	load, err := s.Traffic.Start(ctx, c)
	if err != nil {
		return Outcome{}, fmt.Errorf("scenario %s: start the traffic: %w", s.Name, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			load.Stop()
		}
	}()
	runStart, start := load.Now(), time.Now()
	var out Outcome
	out.Applied = nemesis.Execute(ctx, fs, steps, start, log, nemesis.Hooks{})
	nemesis.SleepUntil(ctx, start.Add(length))
	load.Stop()
	stopped = true
	if err := ctx.Err(); err != nil {
		return Outcome{}, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	for i, a := range out.Applied {
		if a.Error == "" {
			continue
		}
		msg := fmt.Sprintf("inject: step %d (%s) at %s: %s", a.Step, a.Fault, a.Start.Round(time.Millisecond), a.Error)
		if nemesis.Excused(out.Applied, i) {
			out.Notes = append(out.Notes, msg+" (the service was down for a process fault)")
			continue
		}
		out.Findings = append(out.Findings, msg)
	}
	ops := load.Ops()
	out.Ops = len(ops)
	out.Phases = nemesis.Judge(ops, out.Applied, runStart, length, s.Budgets)
	for _, p := range out.Phases {
		for _, l := range p.Failed {
			out.Findings = append(out.Findings, "budget: "+p.Phase+": "+l)
		}
	}
	for _, ck := range s.Checks {
		if err := ck.Check(ctx, c, Execution{Applied: out.Applied, Start: runStart}); err != nil {
			if ctx.Err() != nil {
				return Outcome{}, errors.Join(fmt.Errorf("scenario %s: check %s", s.Name, ck.Name), err)
			}
			out.Findings = append(out.Findings, "check "+ck.Name+": "+err.Error())
		}
	}
	return out, nil
}
