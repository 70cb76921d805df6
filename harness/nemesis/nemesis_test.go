package nemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tierchaos/tierchaos/harness/fault"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rate is a minimal traffic: a rate that must be positive.
type rate struct {
	Rate float64 `json:"rate"`
}

func (r rate) Validate() error {
	if !(r.Rate > 0) {
		return fmt.Errorf("%w: rate %v", ErrSchedule, r.Rate)
	}
	return nil
}

func d(x time.Duration) fault.Duration { return fault.Duration(x) }

// ownFaults are a scenario's own fault values.
func ownFaults() []fault.Spec {
	return []fault.Spec{
		{Fault: fault.Net{Toxic: "down"}},
		{Fault: fault.S3{Action: "internal_error", Probability: 0.3, Seed: 7}},
		{Fault: fault.Process{Action: "kill"}},
	}
}

func ownProfile() Profile {
	return Profile{Name: "own", Families: []Weight{{Family: fault.FamilyNet, Weight: 1}, {Family: fault.FamilyS3, Weight: 1},
		{Family: fault.FamilyProcess, Weight: 1}}, Faults: ownFaults(), MeanFault: d(time.Second), MeanGap: d(time.Second),
		MaxOverlap: 2, Length: d(40 * time.Second), Quiet: d(2 * time.Second), Recovery: d(3 * time.Second)}
}

// TestGenerateDrawsTheProfilesFaults: with Faults set, every step is one
// of them exactly, each family is drawn, and the same seed gives the same
// bytes.
func TestGenerateDrawsTheProfilesFaults(t *testing.T) {
	p := ownProfile()
	a, err := Generate(5, p, rate{50}, GenerateOptions{})
	require.NoError(t, err)
	b, err := Generate(5, p, rate{50}, GenerateOptions{})
	require.NoError(t, err)
	ab, err := a.Marshal()
	require.NoError(t, err)
	bb, err := b.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(ab), string(bb))
	require.NotEmpty(t, a.Steps)
	seen := map[fault.Family]bool{}
	for _, st := range a.Steps {
		assert.True(t, slices.ContainsFunc(p.Faults, func(f fault.Spec) bool { return f.String() == st.Fault.String() }),
			"%s is one of the profile's faults", st)
		seen[st.Fault.Family()] = true
	}
	assert.Len(t, seen, 3, "every family drawn in %d steps", len(a.Steps))
	require.NoError(t, a.Validate())

	path := filepath.Join(t.TempDir(), "schedule.json")
	require.NoError(t, a.WriteFile(path))
	back, err := ReadSchedule[rate](path)
	require.NoError(t, err)
	again, err := back.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(ab), string(again))
}

// TestGenerateWithoutSettingsDrawsNoReconfiguration: a service that gives
// no settings gets no reconfiguring restart; one that does gets its own.
func TestGenerateWithoutSettingsDrawsNoReconfiguration(t *testing.T) {
	p := Profile{Name: "proc", Families: []Weight{{Family: fault.FamilyProcess, Weight: 1}}, MeanFault: d(time.Second),
		MeanGap: d(500 * time.Millisecond), Length: d(5 * time.Minute), Recovery: d(time.Second)}
	count := func(opts GenerateOptions) (n int) {
		sch, err := Generate(3, p, rate{1}, opts)
		require.NoError(t, err)
		for _, st := range sch.Steps {
			if st.Fault.Kind() == fault.KindProcessReconfigure {
				n++
				require.Equal(t, map[string]string{"SVC_X": "1"}, st.Fault.Fault.(fault.Process).Env)
			}
		}
		return n
	}
	assert.Zero(t, count(GenerateOptions{}))
	assert.Positive(t, count(GenerateOptions{Settings: func(*rand.Rand) map[string]string { return map[string]string{"SVC_X": "1"} }}))
}

func TestProfileAndScheduleRejectBadInput(t *testing.T) {
	bad := []struct {
		name string
		edit func(*Profile)
		want string
	}{
		{"no family", func(p *Profile) { p.Families = nil }, "no fault family"},
		{"family without a fault", func(p *Profile) { p.Faults = p.Faults[:2] }, `no fault of family "process"`},
		{"invalid fault", func(p *Profile) { p.Faults[1] = fault.Spec{Fault: fault.S3{Action: "internal_error", Probability: 2}} }, "probability"},
		{"no time for faults", func(p *Profile) { p.Quiet = p.Length }, "leave no time"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			p := ownProfile()
			c.edit(&p)
			err := p.Validate()
			require.ErrorIs(t, err, ErrSchedule)
			require.ErrorContains(t, err, c.want)
		})
	}
	steps := []Step{{At: d(time.Second), For: d(time.Second), Fault: fault.Spec{Fault: fault.Net{Toxic: "down"}}},
		{At: d(500 * time.Millisecond), Fault: fault.Spec{Fault: fault.Process{Action: "kill"}}}}
	require.ErrorContains(t, ValidateSteps(steps, time.Minute), "starts before")
	require.ErrorContains(t, ValidateSteps(steps[:1], 1500*time.Millisecond), "outside the run")
	steps[1].At, steps[1].For = d(2*time.Second), d(time.Second)
	require.ErrorContains(t, ValidateSteps(steps, time.Minute), "instant fault process.kill has a length")
	_, err := ParseSchedule[rate]([]byte(`{"format":"` + ScheduleFormat + `","profile":{"length":"10s"},"traffic":{"rate":0},"steps":[]}`))
	require.ErrorContains(t, err, "rate 0")
	_, err = ParseSchedule[rate]([]byte(`{"format":"` + ScheduleFormat + `","bogus":1}`))
	require.ErrorIs(t, err, ErrSchedule)
}

// TestShrinkUsesTheTrafficsReductions: after the steps, the traffic's own
// reductions run while the failure persists.
func TestShrinkUsesTheTrafficsReductions(t *testing.T) {
	sch, err := Generate(11, ownProfile(), rate{80}, GenerateOptions{})
	require.NoError(t, err)
	require.Greater(t, len(sch.Steps), 3)
	culprit := sch.Steps[len(sch.Steps)/2].Fault.String()
	fails := func(c Schedule[rate]) bool {
		return c.Traffic.Rate >= 20 && slices.ContainsFunc(c.Steps, func(st Step) bool { return st.Fault.String() == culprit })
	}
	small, rep, err := Shrink(context.Background(), sch, ShrinkConfig[rate]{Runs: 1,
		Try:    func(_ context.Context, c Schedule[rate]) (bool, error) { return fails(c), nil },
		Reduce: []func(rate) (rate, bool){func(r rate) (rate, bool) { r.Rate /= 2; return r, r.Rate >= 1 }}})
	require.NoError(t, err)
	require.True(t, fails(small))
	assert.Len(t, small.Steps, 1, rep.String())
	assert.Equal(t, 20.0, small.Traffic.Rate, "halved while it failed: 80, 40, 20 (10 passes)")
}

// testFault is a window or instant fault that records when it was in
// effect, so Execute can be tested without a stack.
type testFault struct {
	Name    string `json:"name"`
	instant bool
	log     *eventLog
	fail    bool
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (f testFault) Kind() string {
	if f.instant {
		return "process.kill"
	}
	return "net.down"
}
func (f testFault) Family() fault.Family {
	if f.instant {
		return fault.FamilyProcess
	}
	return fault.FamilyNet
}
func (testFault) Validate() error   { return nil }
func (f testFault) String() string  { return f.Name }
func (f testFault) IsInstant() bool { return f.instant }
func (f testFault) Run(context.Context, fault.Stack) error {
	f.log.add("run " + f.Name)
	if f.fail {
		return errors.New("refused")
	}
	return nil
}
func (f testFault) Apply(context.Context, fault.Stack) (fault.Active, error) {
	f.log.add("apply " + f.Name)
	return removeOnce{f}, nil
}

type removeOnce struct{ f testFault }

func (r removeOnce) Remove(context.Context) error {
	r.f.log.add("remove " + r.f.Name)
	return nil
}

// TestExecuteAppliesAtOffsets: windows are applied and removed, instants
// run, in time order; hooks see them; a failed instant is recorded.
func TestExecuteAppliesAtOffsets(t *testing.T) {
	log := &eventLog{}
	steps := []Step{
		{At: d(10 * time.Millisecond), For: d(80 * time.Millisecond), Fault: fault.Spec{Fault: testFault{Name: "w", log: log}}},
		{At: d(40 * time.Millisecond), Fault: fault.Spec{Fault: testFault{Name: "i", instant: true, log: log, fail: true}}},
	}
	var injected []int
	var done []Applied
	var mu sync.Mutex
	start := time.Now()
	applied := Execute(context.Background(), nil, steps, start, nil, Hooks{
		Injecting:   func(_ context.Context, i int, _ Step) { mu.Lock(); injected = append(injected, i); mu.Unlock() },
		InstantDone: func(_ int, a Applied) { mu.Lock(); done = append(done, a); mu.Unlock() },
	})
	require.Equal(t, []string{"apply w", "run i", "remove w"}, log.all())
	require.ElementsMatch(t, []int{0, 1}, injected)
	require.Len(t, done, 1)
	assert.Contains(t, done[0].Error, "refused")
	assert.GreaterOrEqual(t, applied[0].Start, 10*time.Millisecond)
	assert.GreaterOrEqual(t, applied[0].End, 90*time.Millisecond)
	assert.Equal(t, "w", applied[0].Fault)
	assert.Equal(t, fault.FamilyProcess, applied[1].Family)

	// A cancelled run skips what has not started and removes what is in
	// effect at once.
	log2 := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	late := []Step{
		{At: 0, For: d(time.Hour), Fault: fault.Spec{Fault: testFault{Name: "long", log: log2}}},
		{At: d(time.Hour), Fault: fault.Spec{Fault: testFault{Name: "never", instant: true, log: log2}}},
	}
	go func() {
		require.Eventually(t, func() bool { return len(log2.all()) == 1 }, 5*time.Second, time.Millisecond)
		cancel()
	}()
	applied = Execute(ctx, nil, late, time.Now(), nil, Hooks{})
	assert.Equal(t, []string{"apply long", "remove long"}, log2.all())
	assert.Empty(t, applied[1].Kind, "never applied")
}

// TestJudgeFailsBrokenBudgets: each kind of gate fails on a history that
// breaks it and passes on one that keeps it.
func TestJudgeFailsBrokenBudgets(t *testing.T) {
	ms := int64(time.Millisecond)
	applied := []Applied{{Kind: "net.down", Family: fault.FamilyNet, Start: 1000 * time.Millisecond, End: 2000 * time.Millisecond}}
	var ops []Op
	for i := range int64(20) {
		ops = append(ops, Op{Kind: "get", Call: (100 + i*10) * ms, Return: (101 + i*10) * ms, OK: true, Class: "local"})            // steady
		ops = append(ops, Op{Kind: "put", Call: (1100 + i*10) * ms, Return: (1150 + i*10) * ms, Code: "unavailable"})               // under the fault
		ops = append(ops, Op{Kind: "get", Call: (1100 + i*10) * ms, Return: (1400 + i*10) * ms, OK: true, Class: "local"})          // slow under it
		ops = append(ops, Op{Kind: "get", Call: (1105 + i*10) * ms, Return: (1106 + i*10) * ms, Code: "not_found", Expected: true}) // expected
	}
	ops = append(ops, Op{Kind: "put", Call: 2500 * ms, Return: 2510 * ms, OK: true}) // first ok put, 500 ms after
	// Called before the fault, failed by it: in the fault's phase, not in
	// the steady one (whose budget allows no error).
	ops = append(ops, Op{Kind: "get", Call: 990 * ms, Return: 1010 * ms, Code: "unavailable"})
	budgets := []Budget{
		{Phase: PhaseSteady, P95: d(5 * time.Millisecond), MaxErrorRate: -1},
		{Phase: PhaseAnyFault, Ops: []string{"get"}, Class: "local", P95: d(100 * time.Millisecond)},
		{Phase: FaultPhase(fault.FamilyNet), Ops: []string{"put"}, MaxErrorRate: 0.5, FirstOKWithin: d(100 * time.Millisecond)},
		{Phase: FaultPhase(fault.FamilyNet), Ops: []string{"get"}, MaxErrorRate: -1},
	}
	reps := Judge(ops, applied, 0, 3*time.Second, budgets)
	var failed []string
	for _, r := range reps {
		failed = append(failed, r.Failed...)
	}
	joined := strings.Join(failed, "\n")
	assert.Contains(t, joined, "get local p95: 300.")
	assert.Contains(t, joined, "put error rate: 100.00%")
	assert.Contains(t, joined, "first ok after the fault ending at 2s: 510ms")
	assert.Len(t, failed, 4, joined)
	assert.Equal(t, []string{PhaseSteady, FaultPhase(fault.FamilyNet), PhaseRecovery}, phasesOf(reps))
	assert.Equal(t, 20, reps[0].Ops, "the steady phase: the 20 operations before the fault, not the one it met")
	assert.Contains(t, joined, "get error rate: 2.44% (1 of 41)", "the one it met is judged with the fault")

	relaxed := []Budget{{Phase: PhaseAnyFault, Ops: []string{"get"}, P95: d(time.Second), MaxErrorRate: 0.05}, {Phase: PhaseSteady, MaxErrorRate: -1}}
	for _, r := range Judge(ops, applied, 0, 3*time.Second, relaxed) {
		assert.Empty(t, r.Failed, r.Phase)
	}
}

func phasesOf(reps []PhaseReport) []string {
	var out []string
	for _, r := range reps {
		out = append(out, r.Phase)
	}
	return out
}
