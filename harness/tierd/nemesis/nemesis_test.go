package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
)

func testProfile() Profile {
	all := []Weight{{Family: fault.FamilyNet, Weight: 2}, {Family: fault.FamilyS3, Weight: 2}, {Family: fault.FamilyProcess, Weight: 2}, {Family: fault.FamilyWorker, Weight: 1},
		{Family: fault.FamilyDisk, Weight: 1}, {Family: fault.FamilyMinIO, Weight: 1}}
	return Profile{Name: "everything", Families: all, MeanFault: fault.Duration(2 * time.Second),
		MeanGap: fault.Duration(time.Second), MaxOverlap: 3, Length: fault.Duration(2 * time.Minute),
		Quiet: fault.Duration(3 * time.Second), Recovery: fault.Duration(5 * time.Second)}
}

var testTraffic = Traffic{Rate: 100, Collections: 8, HotCollections: 2, Dimension: 8}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate(42, testProfile(), testTraffic)
	require.NoError(t, err)
	b, err := Generate(42, testProfile(), testTraffic)
	require.NoError(t, err)
	ab, err := a.Marshal()
	require.NoError(t, err)
	bb, err := b.Marshal()
	require.NoError(t, err)
	assert.Equal(t, string(ab), string(bb), "same seed and profile give a byte-identical schedule")
	c, err := Generate(43, testProfile(), testTraffic)
	require.NoError(t, err)
	cb, err := c.Marshal()
	require.NoError(t, err)
	assert.NotEqual(t, string(ab), string(cb), "another seed gives another schedule")

	// The file written is those bytes, and reads back to the same schedule.
	path := filepath.Join(t.TempDir(), "schedule.json")
	require.NoError(t, a.WriteFile(path))
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, ab, onDisk)
	back, err := ReadSchedule(path)
	require.NoError(t, err)
	again, err := back.Marshal()
	require.NoError(t, err)
	assert.Equal(t, string(ab), string(again))
}

func TestGenerateRespectsTheProfile(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		p := testProfile()
		sch, err := Generate(seed, p, testTraffic)
		require.NoError(t, err)
		require.NoError(t, sch.Validate())
		require.NotEmpty(t, sch.Steps, "seed %d", seed)
		type span struct{ from, to time.Duration }
		groups := map[string][]span{}
		for _, st := range sch.Steps {
			assert.GreaterOrEqual(t, st.At.D(), p.Quiet.D(), "seed %d: %s in the quiet head", seed, st)
			assert.LessOrEqual(t, st.End(), p.Length.D()-p.Recovery.D(), "seed %d: %s in the recovery tail", seed, st)
			if g := fault.Exclusive(st.Fault); g != "" {
				for _, o := range groups[g] {
					assert.False(t, st.At.D() < o.to && o.from <= st.At.D(),
						"seed %d: %s overlaps another %s fault", seed, st, g)
				}
				to := st.End()
				if fault.IsInstant(st.Fault) {
					to = st.At.D() + time.Second // an instant keeps its group busy a second
				}
				groups[g] = append(groups[g], span{st.At.D(), to})
			}
		}
		// At most MaxOverlap windows at any step's start.
		for _, st := range sch.Steps {
			n := 0
			for _, o := range sch.Steps {
				if !fault.IsInstant(o.Fault) && o.At <= st.At && st.At.D() < o.End() {
					n++
				}
			}
			assert.LessOrEqual(t, n, p.MaxOverlap, "seed %d at %s", seed, st.At.D())
		}
	}
}

func TestGenerateKinds(t *testing.T) {
	p := testProfile()
	p.Families = []Weight{{Family: fault.FamilyS3, Weight: 1}}
	p.Kinds = []string{fault.KindS3Delay}
	sch, err := Generate(9, p, testTraffic)
	require.NoError(t, err)
	require.NotEmpty(t, sch.Steps)
	for _, st := range sch.Steps {
		assert.Equal(t, fault.KindS3Delay, st.Fault.Kind())
	}
	p.Kinds = []string{fault.KindNetDown}
	_, err = Generate(9, p, testTraffic)
	require.ErrorIs(t, err, ErrSchedule, "a family without an allowed kind is an error")
}

// TestGeneratePowerCuts: a profile draws power cuts only when its kinds
// name them (other profiles' schedules do not change), then with seeds
// of their own and both ways of tearing.
func TestGeneratePowerCuts(t *testing.T) {
	p := testProfile()
	p.Families = []Weight{{Family: fault.FamilyProcess, Weight: 1}}
	for seed := uint64(1); seed <= 20; seed++ {
		sch, err := Generate(seed, p, testTraffic)
		require.NoError(t, err)
		for _, st := range sch.Steps {
			require.NotEqual(t, fault.KindPowerCut, st.Fault.Kind(), "seed %d: no power cut unless asked for", seed)
		}
	}
	p.Kinds = []string{fault.KindProcessKill, fault.KindPowerCut}
	cuts, kills, torn := 0, 0, 0
	seeds := map[uint64]bool{}
	for seed := uint64(1); seed <= 20; seed++ {
		sch, err := Generate(seed, p, testTraffic)
		require.NoError(t, err)
		for _, st := range sch.Steps {
			switch f := st.Fault.Fault.(type) {
			case fault.PowerCut:
				cuts++
				seeds[f.Seed] = true
				if f.Torn {
					torn++
				}
			case fault.Process:
				require.Equal(t, "kill", f.Action)
				kills++
			default:
				require.Failf(t, "unexpected fault", "%v", st.Fault)
			}
		}
	}
	assert.Positive(t, kills)
	assert.Positive(t, cuts)
	assert.Len(t, seeds, cuts, "every cut has its own seed")
	assert.True(t, torn > 0 && torn < cuts, "torn and clean cuts both drawn (%d of %d torn)", torn, cuts)
	assert.True(t, isCrash(Applied{Kind: fault.KindPowerCut}), "a power cut replaces tierd's process")
}

func TestScheduleRejectsBadInput(t *testing.T) {
	good, err := Generate(1, testProfile(), testTraffic)
	require.NoError(t, err)
	b, err := good.Marshal()
	require.NoError(t, err)
	tests := []struct {
		name   string
		mangle func(s *Schedule)
	}{
		{"wrong format", func(s *Schedule) { s.Format = "v0" }},
		{"steps out of order", func(s *Schedule) { s.Steps[0], s.Steps[1] = s.Steps[1], s.Steps[0] }},
		{"step past the end", func(s *Schedule) { s.Steps[len(s.Steps)-1].At = s.Profile.Length + 1 }},
		{"instant with a length", func(s *Schedule) {
			s.Steps[0] = Step{At: s.Steps[0].At, For: fault.Duration(time.Second), Fault: fault.Spec{Fault: fault.Process{Action: "kill"}}}
		}},
		{"window without a length", func(s *Schedule) {
			s.Steps[0] = Step{At: s.Steps[0].At, Fault: fault.Spec{Fault: fault.Net{Toxic: "down"}}}
		}},
		{"no rate", func(s *Schedule) { s.Traffic.Rate = 0 }},
		{"without an unknown operation", func(s *Schedule) { s.Traffic.Without = []string{"insert", "compact"} }},
		{"without every operation", func(s *Schedule) { s.Traffic.Without = OpNames() }},
		{"an API tierd does not have", func(s *Schedule) { s.Traffic.API = "soap" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSchedule(b)
			require.NoError(t, err)
			tt.mangle(&s)
			require.ErrorIs(t, s.Validate(), ErrSchedule)
		})
	}
	_, err = ParseSchedule([]byte(`{"format":"` + ScheduleFormat + `","bogus":1}`))
	require.ErrorIs(t, err, ErrSchedule, "unknown fields are refused")
}

// A shrinker whose candidates fail exactly when they hold steps 3 and 7
// ends with those two steps.
func TestShrinkFindsTheMinimalSteps(t *testing.T) {
	sch, err := Generate(5, testProfile(), testTraffic)
	require.NoError(t, err)
	require.Greater(t, len(sch.Steps), 10)
	culprits := []fault.Fault{sch.Steps[3].Fault.Fault, sch.Steps[7].Fault.Fault}
	at3, at7 := sch.Steps[3].At, sch.Steps[7].At
	has := func(c Schedule, at fault.Duration, f fault.Fault) bool {
		for _, st := range c.Steps {
			if st.At == at && fmt.Sprint(st.Fault.Fault) == fmt.Sprint(f) {
				return true
			}
		}
		return false
	}
	runs := 0
	small, rep, err := Shrink(context.Background(), sch, ShrinkConfig{
		Runs: 2,
		Try: func(_ context.Context, c Schedule) (bool, error) {
			runs++
			return has(c, at3, culprits[0]) && has(c, at7, culprits[1]), nil
		},
	})
	require.NoError(t, err)
	require.Len(t, small.Steps, 2, rep.String())
	assert.Less(t, small.Length(), sch.Length(), "the run is cut after the last step")
	assert.Less(t, small.Traffic.Rate, sch.Traffic.Rate)
	assert.Equal(t, 1, small.Traffic.Collections)
	assert.Equal(t, runs, rep.Runs)
	assert.Equal(t, len(sch.Steps), rep.StepsBefore)
	require.NoError(t, small.Validate())
}

// A flaky failure (one run in three) is still kept with Runs=3.
func TestShrinkKeepsFlakyFailures(t *testing.T) {
	sch, err := Generate(6, testProfile(), testTraffic)
	require.NoError(t, err)
	n := 0
	small, _, err := Shrink(context.Background(), sch, ShrinkConfig{Runs: 3, Try: func(context.Context, Schedule) (bool, error) {
		n++
		return n%3 == 0, nil
	}})
	require.NoError(t, err)
	assert.Empty(t, small.Steps, "every candidate fails in one of three runs")
}

func op(i int, kind history.Kind, coll string, call, ret int64, out history.Outcome, code string) history.Op {
	return history.Op{Index: i, Kind: kind, Collection: coll, Call: call, Return: ret, Outcome: out, Code: code}
}

func TestPhaseBudgetsFail(t *testing.T) {
	ms := int64(time.Millisecond)
	sch := Schedule{Profile: Profile{Length: fault.Duration(10 * time.Second)}}
	applied := []Applied{{Step: 0, Kind: fault.KindS3Delay, Family: fault.FamilyS3, Start: 2 * time.Second, End: 4 * time.Second}}
	var ops []history.Op
	add := func(kind history.Kind, coll string, at, lat int64, out history.Outcome, code string) {
		ops = append(ops, op(len(ops), kind, coll, at*ms, (at+lat)*ms, out, code))
	}
	for i := int64(0); i < 20; i++ {
		add(history.KindSearch, "x-hot0", 100+i*50, 2, history.OK, "")    // steady, fast
		add(history.KindSearch, "x-hot0", 2100+i*50, 900, history.OK, "") // under S3 faults: slow
		add(history.KindInsert, "x-c3", 2100+i*50, 5, history.Failed, "storage_unavailable")
		add(history.KindSearch, "x-hot0", 5000+i*50, 3, history.OK, "") // recovery
	}
	add(history.KindCreateCollection, "x-c4", 2000, 1500, history.OK, "") // one create waits under S3 faults
	for i := int64(0); i < 30; i++ {
		add(history.KindCreateCollection, "x-c5", 2200+i*20, 1, history.OK, "")
	}
	budgets := []Budget{
		{Phase: PhaseSteady, P95: fault.Duration(10 * time.Millisecond), MaxErrorRate: 0.01},
		{Phase: PhaseAnyFault, Ops: Kinds(history.KindSearch), Class: ClassHot, P95: fault.Duration(100 * time.Millisecond)},
		{Phase: PhaseAnyFault, AllowedCodes: []string{"unknown"}},
		{Phase: FaultPhase(fault.FamilyS3), Ops: Kinds(history.KindInsert), FirstOKWithin: fault.Duration(time.Second)},
		{Phase: PhaseRecovery, P95: fault.Duration(10 * time.Millisecond), MaxErrorRate: -1},
		{Phase: PhaseAnyFault, Ops: Kinds(history.KindCreateCollection), P95: fault.Duration(time.Second), Max: fault.Duration(time.Second)},
	}
	reps := phaseReports(ops, applied, 0, sch, budgets)
	byName := map[string]PhaseReport{}
	for _, r := range reps {
		byName[r.Phase] = r
	}
	require.Contains(t, byName, PhaseSteady)
	require.Contains(t, byName, "fault:s3")
	require.Contains(t, byName, PhaseRecovery)
	assert.Empty(t, byName[PhaseSteady].Failed)
	assert.Empty(t, byName[PhaseRecovery].Failed)
	f := byName["fault:s3"].Failed
	require.Len(t, f, 4, "%v", f)
	assert.Contains(t, f[0], "search hot p95")
	assert.Contains(t, f[1], "storage_unavailable")
	assert.Contains(t, f[2], "first ok")
	assert.Contains(t, f[3], "create_collection max: 1.5s (create_collection x-c4, 31 ops)", "one slow create fails max though the p95 holds")
	assert.Equal(t, 20, byName["fault:s3"].Errors)
	md := Markdown(&Result{Phases: reps})
	assert.Contains(t, md, "**FAIL**")
}

func TestCutMakesInFlightOperationsUnknown(t *testing.T) {
	before := []history.Op{
		op(0, history.KindInsert, "c", 1, 2, history.OK, ""),
		op(1, history.KindInsert, "c", 3, 9, history.Unknown, ""),
	}
	before[1].Error = inFlightMarker
	after := []history.Op{
		op(0, history.KindInsert, "c", 1, 2, history.OK, ""),
		op(1, history.KindInsert, "c", 3, 12, history.OK, ""),
		op(2, history.KindInsert, "c", 10, 11, history.OK, ""),
	}
	out := cut(before, after)
	assert.Equal(t, history.OK, out[0].Outcome)
	assert.Equal(t, history.Unknown, out[1].Outcome)
	assert.Equal(t, history.Unknown, out[2].Outcome)
	assert.Greater(t, out[2].Return, out[1].Return, "timestamps stay distinct")
	require.NoError(t, history.Validate(out))
}

func TestJudgeJournal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	e := func(ms int, op s3fault.Op, key string, status int, code string) s3fault.Entry {
		return s3fault.Entry{At: at(ms), Op: op, Key: key, Status: status, Code: code}
	}
	tests := []struct {
		name  string
		j     []s3fault.Entry
		wants []string
	}{
		{"clean", []s3fault.Entry{e(0, s3fault.OpPutObject, "k", 200, "")}, nil},
		{"403 retried", []s3fault.Entry{e(0, s3fault.OpPutObject, "k", 403, "AccessDenied"), e(120, s3fault.OpPutObject, "k", 200, "")},
			[]string{"non-retryable 403"}},
		{"403 not retried", []s3fault.Entry{e(0, s3fault.OpPutObject, "k", 403, "AccessDenied"), e(5000, s3fault.OpPutObject, "k", 200, "")}, nil},
		{"hammering", []s3fault.Entry{e(0, s3fault.OpGetObject, "k", 503, "SlowDown"), e(10, s3fault.OpGetObject, "k", 503, "SlowDown"),
			e(20, s3fault.OpGetObject, "k", 503, "SlowDown"), e(30, s3fault.OpGetObject, "k", 503, "SlowDown")}, []string{"hammering"}},
	}
	// Constant 50 ms waits between retries, five chains: no backoff.
	var flat []s3fault.Entry
	var grow []s3fault.Entry
	for c := range 5 {
		key := fmt.Sprintf("k%d", c)
		for i := range 5 {
			flat = append(flat, e(c*10000+i*50, s3fault.OpPutObject, key, 503, "SlowDown"))
			grow = append(grow, e(c*10000+(1<<i)*40, s3fault.OpPutObject, key, 503, "SlowDown"))
		}
	}
	tests = append(tests, struct {
		name  string
		j     []s3fault.Entry
		wants []string
	}{"no backoff", flat, []string{"do not back off"}}, struct {
		name  string
		j     []s3fault.Entry
		wants []string
	}{"backoff", grow, nil})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeJournal(tt.j)
			require.Len(t, got, len(tt.wants), "%v", got)
			for i, w := range tt.wants {
				assert.Contains(t, got[i].Message, w)
			}
		})
	}
}

// The working set shifts: within one period some collections see almost
// no traffic, and the busiest collection changes between periods.
func TestTrafficWorkingSetShifts(t *testing.T) {
	tr := newTraffic(nil, Traffic{Rate: 100, Collections: 8, HotCollections: 2, Dimension: 4, Seed: 3}, "p")
	period := uint64(100 * workingSetPeriod)
	busiest := func(epoch uint64) (int, []int) {
		counts := make([]int, 8)
		for seq := epoch * period; seq < (epoch+1)*period; seq++ {
			counts[tr.pick(rand.New(rand.NewPCG(3, seq)), seq)]++
		}
		best := 2
		for i := 2; i < 8; i++ {
			if counts[i] > counts[best] {
				best = i
			}
		}
		return best, counts
	}
	b0, c0 := busiest(0)
	b1, _ := busiest(1)
	assert.NotEqual(t, b0, b1, "the busiest collection rotates")
	assert.InDelta(t, 0.3*float64(period), float64(c0[0]+c0[1]), 0.08*float64(period), "hot collections get their share")
	idle := 0
	for _, n := range c0[2:] {
		if n == 0 {
			idle++
		}
	}
	assert.Equal(t, 3, idle, "half the other collections sit idle for a whole period: %v", c0)
	assert.True(t, isHot(tr.names[0]) && isHot(tr.names[1]) && !isHot(tr.names[2]))
}

func TestProfileGates(t *testing.T) {
	tests := []struct {
		name string
		r    ProfileReport
		want string
	}{
		{"steady", ProfileReport{HeapStart: 10 << 20, HeapEnd: 12 << 20, GoroutinesStart: 12, GoroutinesEnd: 20}, ""},
		{"heap leak", ProfileReport{HeapStart: 10 << 20, HeapEnd: 40 << 20, GoroutinesStart: 12, GoroutinesEnd: 20}, "heap grew"},
		{"goroutine leak", ProfileReport{HeapStart: 10 << 20, HeapEnd: 10 << 20, GoroutinesStart: 12, GoroutinesEnd: 100}, "goroutines grew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := profileFindings(&tt.r)
			if tt.want == "" {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Contains(t, got[0].Message, tt.want)
		})
	}
}

func TestBoundByCrashes(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	ops := []history.Op{
		op(0, history.KindInsert, "c", ms(10), ms(20), history.Unknown, ""),             // sent before the crash: bounded by its end
		op(1, history.KindInsert, "c", ms(105), ms(230), history.Unknown, ""),           // sent during the crash, failed after it: may have reached the new process
		op(2, history.KindInsert, "c", ms(10), ms(20), history.OK, ""),                  // known: untouched
		op(3, history.KindDeleteCollection, "c", ms(300), ms(310), history.Unknown, ""), // after every crash: unbounded
		op(4, history.KindCreateCollection, "c", ms(120), ms(150), history.Unknown, ""), // sent and failed during the crash
		// Called before the crash, unanswered until after it (a gRPC call
		// waiting for the connection, sent to the new process): unbounded.
		op(5, history.KindDeleteCollection, "c", ms(50), ms(240), history.Unknown, ""),
	}
	crashes := crashesOf([]Applied{
		{Kind: fault.KindProcessKill, Start: 100 * time.Millisecond, End: 200 * time.Millisecond},
		{Kind: fault.KindWorkerRunOnce, Start: 150 * time.Millisecond, End: 160 * time.Millisecond},
		{Kind: fault.KindProcessRestart, Start: 250 * time.Millisecond, End: 280 * time.Millisecond, Error: "failed"}, // did not happen
	}, ms(1))
	require.Len(t, crashes, 1)
	out := boundByCrashes(ops, crashes)
	assert.Equal(t, ms(201), out[0].EffectBy)
	assert.Zero(t, out[1].EffectBy)
	assert.Zero(t, out[2].EffectBy)
	assert.Zero(t, out[3].EffectBy)
	assert.Equal(t, ms(201), out[4].EffectBy)
	assert.Zero(t, out[5].EffectBy, "an operation answered after the crash may have reached the new process")
	assert.Zero(t, ops[0].EffectBy, "the input is not changed")
}

func TestTrafficHasReadOnlyLulls(t *testing.T) {
	tr := newTraffic(nil, Traffic{Rate: 100, Collections: 4, Dimension: 4, Seed: 1}, "p")
	var lulls int
	for seq := uint64(0); seq < 1000; seq++ {
		if tr.lull(seq) {
			lulls++
		}
	}
	assert.Equal(t, 200, lulls, "2 s of every 10 s")
	assert.False(t, tr.lull(0))
	assert.True(t, tr.lull(999))
	assert.True(t, isWrite("restore"))
	assert.False(t, isWrite("list_vectors"))
}

func TestTrafficWithoutLeavesOperationsOut(t *testing.T) {
	tr := Traffic{Rate: 1, Collections: 1, Dimension: 2, Without: []string{"restore", "delete"}}
	require.NoError(t, tr.Validate())
	var names []string
	for _, m := range tr.mix() {
		names = append(names, m.name)
	}
	assert.NotContains(t, names, "restore")
	assert.NotContains(t, names, "delete")
	assert.Len(t, names, len(OpNames())-2)
	assert.Equal(t, OpNames(), func() []string {
		var all []string
		for _, m := range (Traffic{}).mix() {
			all = append(all, m.name)
		}
		return all
	}(), "no Without: the whole mix")
}

func TestRecoveryGraceLeavesOutOperationsRightAfterTheLastFault(t *testing.T) {
	ms := int64(time.Millisecond)
	sch := Schedule{Profile: Profile{Length: fault.Duration(10 * time.Second)}}
	applied := []Applied{{Step: 0, Kind: fault.KindMinIOStop, Family: fault.FamilyMinIO, Start: 2 * time.Second, End: 4 * time.Second}}
	var ops []history.Op
	for i := int64(0); i < 10; i++ { // right after the removal: they share a failure begun under the fault
		ops = append(ops, op(len(ops), history.KindInsert, "x-c1", (4000+i*100)*ms, (7000+i)*ms, history.Failed, "storage_unavailable"))
	}
	for i := int64(0); i < 40; i++ { // later: all fine
		ops = append(ops, op(len(ops), history.KindInsert, "x-c1", (7100+i*50)*ms, (7102+i*50)*ms, history.OK, ""))
	}
	tests := []struct {
		name   string
		grace  time.Duration
		failed bool
	}{
		{"no grace: the early failures count", 0, true},
		{"a grace shorter than the early failures", 500 * time.Millisecond, true},
		{"a grace covering them", 3 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Budget{Phase: PhaseRecovery, MaxErrorRate: 0.05, Grace: fault.Duration(tt.grace)}
			for _, r := range phaseReports(ops, applied, 0, sch, []Budget{b}) {
				if r.Phase == PhaseRecovery {
					assert.Equal(t, tt.failed, len(r.Failed) > 0, "%v", r.Failed)
					return
				}
			}
			t.Fatal("no recovery phase")
		})
	}
}
