package scenario

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/nemesis"
)

// Seeded is a case with a seed: the nemesis draws a row's schedule from
// it (*stack.Case and *tierd.Case are Seeded).
type Seeded interface {
	// CaseSeed is the case's seed.
	CaseSeed() uint64
}

// RowTraffic is the traffic of a scenario schedule file: the declarative
// row whose traffic (and budgets and checks) the schedule runs under, and
// the seed of the case it was drawn for.
type RowTraffic struct {
	Row  string `json:"row"`
	Seed uint64 `json:"seed"`
}

// Validate requires a row.
func (r RowTraffic) Validate() error {
	if r.Row == "" {
		return fmt.Errorf("%w: traffic names no scenario row", nemesis.ErrSchedule)
	}
	return nil
}

// Schedule is a nemesis schedule of a scenario row.
type Schedule = nemesis.Schedule[RowTraffic]

// NemesisOptions shape RunNemesis. Zero fields take the defaults in
// brackets.
type NemesisOptions struct {
	// Length is each schedule's length [30s].
	Length time.Duration
	// MaxOverlap is how many of a row's faults may be in effect at once
	// [2]; process, MinIO and disk faults never overlap their own family.
	MaxOverlap int
	// Replay, when set, is a schedule file to run instead of generating
	// one: only its row runs, with exactly its steps.
	Replay string
	// Dir receives each run's schedule.json (and a shrunk one) [the
	// system's temporary folder].
	Dir string
	// Shrink, when positive, is the time a failing schedule may spend
	// being shrunk; ShrinkRuns is how often a candidate runs before it
	// counts as passing [3].
	Shrink     time.Duration
	ShrinkRuns int
}

// Profile is the nemesis profile of a declarative row: the families of
// its own faults, weighted equally, drawn as they are (never with other
// parameters), windows of mean Timing.Hold, a new fault every Hold+Gap on
// average, the row's quiet head and recovery tail.
func (s Scenario[C]) Profile(length time.Duration, maxOverlap int) (nemesis.Profile, error) {
	faults, ok := s.faultValues()
	if !ok || len(faults) == 0 {
		return nemesis.Profile{}, fmt.Errorf("%w: row %q: the nemesis draws from fault values only", ErrInvalid, s.Name)
	}
	tm := s.Timing.withDefaults()
	var fams []nemesis.Weight
	var kinds []string
	for _, f := range faults {
		if !slices.ContainsFunc(fams, func(w nemesis.Weight) bool { return w.Family == f.Family() }) {
			fams = append(fams, nemesis.Weight{Family: f.Family(), Weight: 1})
		}
		if !slices.Contains(kinds, f.Kind()) {
			kinds = append(kinds, f.Kind())
		}
	}
	p := nemesis.Profile{Name: s.Name, Families: fams, Kinds: kinds, Faults: faults,
		MeanFault: fault.Duration(tm.Hold), MeanGap: fault.Duration(tm.Hold + tm.Gap), MaxOverlap: max(maxOverlap, 1),
		Length: fault.Duration(length), Quiet: fault.Duration(tm.Quiet), Recovery: fault.Duration(tm.Recovery)}
	return p, p.Validate()
}

// RunNemesis runs every declarative row of scenarios (custom rows are
// left out) under a random schedule drawn from the row's own faults and
// the case's seed, as a subtest named after the row: the row's traffic,
// budgets and checks judge it as they judge the fixed schedule Run uses,
// except the budgets' MinErrors: a drawn window may be too short for the
// service to notice the fault, which is no defect.
// A failing schedule is written to a file whose replay command is logged
// and, with o.Shrink, shrunk to a smaller one that still fails. With
// o.Replay only the file's row runs, with the file's steps.
func RunNemesis[C any](t *testing.T, scenarios []Scenario[C], newCase func(t *testing.T, s Scenario[C]) C, o NemesisOptions) {
	t.Helper()
	if err := Validate(scenarios); err != nil {
		t.Fatal(err)
	}
	if o.Length == 0 {
		o.Length = 30 * time.Second
	}
	if o.MaxOverlap == 0 {
		o.MaxOverlap = 2
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(os.TempDir(), "tierchaos-scenario-nemesis")
	}
	var replay *Schedule
	if o.Replay != "" {
		sch, err := nemesis.ReadSchedule[RowTraffic](o.Replay)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(scenarios, func(s Scenario[C]) bool { return s.Name == sch.Traffic.Row && s.declared() }) {
			t.Fatalf("schedule %s is of row %q, which is not a declarative row of this table", o.Replay, sch.Traffic.Row)
		}
		replay = &sch
	}
	ran := 0
	for _, s := range scenarios {
		if !s.declared() || (replay != nil && s.Name != replay.Traffic.Row) {
			continue
		}
		ran++
		t.Run(s.Name, func(t *testing.T) { runNemesisOne(t, s, newCase, o, replay) })
	}
	if ran == 0 {
		t.Fatal("no declarative row to run under the nemesis")
	}
}

func runNemesisOne[C any](t *testing.T, s Scenario[C], newCase func(t *testing.T, s Scenario[C]) C, o NemesisOptions, replay *Schedule) {
	c := newCase(t, s)
	var sch Schedule
	if replay != nil {
		sch = *replay
	} else {
		sd, ok := any(c).(Seeded)
		if !ok {
			t.Fatalf("the nemesis draws from the case's seed, and %T has no CaseSeed", c)
		}
		p, err := s.Profile(o.Length, o.MaxOverlap)
		if err != nil {
			t.Fatal(err)
		}
		sch, err = nemesis.Generate(sd.CaseSeed(), p, RowTraffic{Row: s.Name, Seed: sd.CaseSeed()}, nemesis.GenerateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range sch.Steps {
		t.Logf("step %s", st)
	}
	s.Budgets = withoutMinErrors(s.Budgets)
	timeout := s.timeout() + sch.Length()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := Execute(ctx, s, c, sch.Steps, sch.Length(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !out.Failed() {
		report(t, out)
		return
	}
	file := filepath.Join(o.Dir, fmt.Sprintf("%s-%d-%d", safeName(s.Name), sch.Seed, time.Now().UnixNano()), "schedule.json")
	if err := sch.WriteFile(file); err != nil {
		t.Error(err)
	} else {
		t.Logf("nemesis: the failing schedule is %s; replay it with RunNemesis's Replay option set to that file and the case seed pinned to %d", file, sch.Traffic.Seed)
	}
	if o.Shrink > 0 {
		shrink(t, s, c, sch, o, file)
	}
	report(t, out)
}

// shrink reduces a failing schedule and writes the smallest failing one
// next to it.
func shrink[C any](t *testing.T, s Scenario[C], c C, sch Schedule, o NemesisOptions, file string) {
	t.Helper()
	small, rep, err := nemesis.Shrink(context.Background(), sch, nemesis.ShrinkConfig[RowTraffic]{
		Budget: o.Shrink, Runs: o.ShrinkRuns,
		Try: func(ctx context.Context, cand Schedule) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, s.timeout()+cand.Length())
			defer cancel()
			out, err := Execute(ctx, s, c, cand.Steps, cand.Length(), slog.Default())
			return out.Failed(), err
		},
	})
	if err != nil {
		t.Errorf("nemesis: shrinking stopped: %v", err)
	}
	shrunk := filepath.Join(filepath.Dir(file), "shrunk-schedule.json")
	if err := small.WriteFile(shrunk); err != nil {
		t.Error(err)
		return
	}
	var steps []string
	for _, st := range small.Steps {
		steps = append(steps, "\t"+st.String())
	}
	t.Logf("nemesis: %s; smallest failing schedule (%s):\n%s", rep, shrunk, strings.Join(steps, "\n"))
}

// withoutMinErrors is budgets with no MinErrors gate.
func withoutMinErrors(budgets []nemesis.Budget) []nemesis.Budget {
	out := slices.Clone(budgets)
	for i := range out {
		out[i].MinErrors = 0
	}
	return out
}

// safeName makes a row name safe as a folder name.
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
}
