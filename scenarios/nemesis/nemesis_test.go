//go:build e2e

package nemesis

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/seed"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/harness/tierd/nemesis"
)

// row is one nemesis scenario: a profile of random faults, the traffic to
// run them under, and the budgets per phase.
type row struct {
	Name string
	// Guards says what the row guarantees beyond the checks of every run
	// (no acknowledged write lost, histories linearizable, no orphan left
	// in the bucket): what its budgets hold.
	Guards   string
	Profile  nemesis.Profile
	Traffic  nemesis.Traffic
	Duration time.Duration
	Budgets  []nemesis.Budget
	// PowerLoss: the row's schedule cuts tierd's power, which exists only
	// with tierd in the test process (the row turns the power-loss layer
	// on for itself); in a container the row checks that the fault is
	// refused and skips.
	PowerLoss bool
	// API is the API the row's traffic speaks (tierd.APIREST when
	// empty); the schedule records it, so a replay speaks it too.
	API tierd.API
}

func d(x time.Duration) fault.Duration { return fault.Duration(x) }

func w(f fault.Family, x float64) nemesis.Weight { return nemesis.Weight{Family: f, Weight: x} }

// Budgets shared by the rows.
var (
	hotOps = nemesis.Kinds(history.KindSearch, history.KindInsert)
	// hotPath: searches and inserts of hot collections never need S3, so
	// S3 being slow, failing or unreachable leaves them alone.
	hotPath = nemesis.Budget{Phase: nemesis.PhaseAnyFault, Ops: hotOps, Class: nemesis.ClassHot, P95: d(500 * time.Millisecond), MaxErrorRate: 0.01}
	// catalog: creating a collection and reading a collection's state or
	// its snapshot list never need S3, so none of them waits for S3 (an
	// S3 call that fails takes seconds: the suite's S3 timeout is 3 s).
	catalog = nemesis.Budget{Phase: nemesis.PhaseAnyFault, Ops: nemesis.Kinds(history.KindCreateCollection, history.KindGetCollection, history.KindListSnapshots),
		Max: d(2 * time.Second), MaxErrorRate: 0.01}
	// steady and recovery: the whole mix works without faults.
	steady = nemesis.Budget{Phase: nemesis.PhaseSteady, P95: d(500 * time.Millisecond), MaxErrorRate: 0.01}
	// recovery judges from one S3 operation timeout (the suite's 3 s) after
	// the last fault: an operation called earlier may join a promotion
	// whose S3 attempt began under the fault and share its failure.
	recovery = nemesis.Budget{Phase: nemesis.PhaseRecovery, Ops: hotOps, P95: d(time.Second), MaxErrorRate: 0.05, Grace: d(3 * time.Second)}
	// backSoon: after each fault of a family is removed, an ok search
	// comes within this bound.
	backSoon = func(f fault.Family, within time.Duration) nemesis.Budget {
		return nemesis.Budget{Phase: nemesis.FaultPhase(f), Ops: nemesis.Kinds(history.KindSearch), FirstOKWithin: d(within)}
	}
)

func rows() []row {
	tr := nemesis.Traffic{Rate: 100, Collections: 8, HotCollections: 2, Dimension: 8}
	base := func(name string, fams ...nemesis.Weight) nemesis.Profile {
		return nemesis.Profile{Name: name, Families: fams, MeanFault: d(2 * time.Second), MeanGap: d(2 * time.Second),
			MaxOverlap: 1, Quiet: d(3 * time.Second), Recovery: d(6 * time.Second)}
	}
	withKinds := func(p nemesis.Profile, kinds ...string) nemesis.Profile { p.Kinds = kinds; return p }
	withOverlap := func(p nemesis.Profile, n int) nemesis.Profile { p.MaxOverlap = n; return p }
	killRestart := row{Name: "kill-restart-loop",
		Guards:   "kills, restarts and reconfiguring restarts of tierd, with worker cycles, lose no acknowledged write; an ok search comes within 10 s of each process fault, and the mix recovers after the last one",
		Duration: 25 * time.Second, Traffic: tr,
		Profile: withKinds(base("kill-restart", w(fault.FamilyProcess, 3), w(fault.FamilyWorker, 3)),
			fault.KindProcessKill, fault.KindProcessRestart, fault.KindProcessReconfigure, fault.KindWorkerRunOnce),
		Budgets: []nemesis.Budget{steady, recovery, backSoon(fault.FamilyProcess, 10*time.Second)}}
	return []row{
		{Name: "s3-latency-under-load",
			Guards:   "S3 latency, thin links and slow S3 answers never reach the hot path (hot searches and inserts within p95 500 ms, at most 1% errors) nor the catalog (at most 2 s, 1% errors); the whole mix works without faults and again after them",
			Duration: 20 * time.Second, Traffic: tr,
			Profile: withKinds(base("s3-latency", w(fault.FamilyNet, 1), w(fault.FamilyS3, 1)),
				fault.KindNetLatency, fault.KindNetBandwidth, fault.KindNetSlicer, fault.KindS3Delay),
			Budgets: []nemesis.Budget{steady, hotPath, catalog, recovery}},
		{Name: "flaky-s3-under-load",
			Guards:   "failing, throttled, truncated, corrupted and misdirected S3 answers never reach the hot path nor the catalog (the same budgets as s3-latency-under-load); the mix works again after the faults",
			Duration: 20 * time.Second, Traffic: tr,
			Profile: withKinds(base("flaky-s3", w(fault.FamilyS3, 1)),
				fault.KindS3SlowDown, fault.KindS3InternalError, fault.KindS3AccessDenied, fault.KindS3TruncateGet,
				fault.KindS3FlipGet, fault.KindS3Misdirect, fault.KindS3CutPut, fault.KindS3CutPart),
			Budgets: []nemesis.Budget{steady, hotPath, catalog, recovery}},
		{Name: "partition-under-load",
			Guards:   "a partition from S3 (down, timeouts, resets, cut and slow-closing connections) never reaches the hot path nor the catalog; an ok search comes within 5 s of each fault ending",
			Duration: 20 * time.Second, Traffic: tr,
			Profile: withKinds(base("partition", w(fault.FamilyNet, 1)),
				fault.KindNetDown, fault.KindNetTimeout, fault.KindNetResetPeer, fault.KindNetLimitData, fault.KindNetSlowClose),
			Budgets: []nemesis.Budget{steady, hotPath, catalog, recovery, backSoon(fault.FamilyNet, 5*time.Second)}},
		killRestart,
		overGRPC(killRestart),
		{Name: "power-cut-loop",
			Guards:   "power cuts (torn or not) and kills of tierd lose no acknowledged write; an ok search comes within 10 s of each process fault, and the mix recovers after the last one",
			Duration: 25 * time.Second, Traffic: tr, PowerLoss: true,
			Profile: withKinds(base("power-cut", w(fault.FamilyProcess, 3), w(fault.FamilyWorker, 3)),
				fault.KindProcessKill, fault.KindPowerCut, fault.KindWorkerRunOnce),
			Budgets: []nemesis.Budget{steady, recovery, backSoon(fault.FamilyProcess, 10*time.Second)}},
		{Name: "pause-loop",
			Guards:   "a frozen tierd or a paused worker stalls requests but loses nothing; an ok search comes within 5 s of each pause ending, and the mix recovers after the last one",
			Duration: 20 * time.Second, Traffic: tr,
			Profile: withKinds(base("pause", w(fault.FamilyProcess, 1), w(fault.FamilyWorker, 1)),
				fault.KindProcessPause, fault.KindWorkerPause, fault.KindWorkerRunOnce),
			Budgets: []nemesis.Budget{steady, recovery, backSoon(fault.FamilyProcess, 5*time.Second)}},
		{Name: "disk-pressure",
			Guards:   "a full data volume never fails searches of hot collections (at most 1% errors while it is full), and the mix recovers once space is back",
			Duration: 20 * time.Second, Traffic: tr,
			Profile: base("disk", w(fault.FamilyDisk, 2), w(fault.FamilyWorker, 1)),
			Budgets: []nemesis.Budget{steady, recovery,
				{Phase: nemesis.FaultPhase(fault.FamilyDisk), Ops: nemesis.Kinds(history.KindSearch), Class: nemesis.ClassHot, MaxErrorRate: 0.01}}},
		{Name: "minio-restart",
			Guards:   "MinIO stopped or restarted never reaches the hot path nor the catalog, and the mix recovers once MinIO is back",
			Duration: 25 * time.Second, Traffic: tr,
			Profile: base("minio", w(fault.FamilyMinIO, 1)),
			Budgets: []nemesis.Budget{steady, hotPath, catalog, recovery}},
		{Name: "everything",
			Guards:   "up to three faults of every family at once lose no acknowledged write, and the mix works without faults and again after them",
			Duration: 30 * time.Second, Traffic: tr,
			Profile: withOverlap(base("everything", w(fault.FamilyNet, 2), w(fault.FamilyS3, 2), w(fault.FamilyProcess, 2),
				w(fault.FamilyWorker, 2), w(fault.FamilyDisk, 1), w(fault.FamilyMinIO, 1)), 3),
			Budgets: []nemesis.Budget{steady, recovery}},
	}
}

// overGRPC is r with its traffic over tierd's gRPC API: the same profile
// and budgets, every recorded call (and the client's reconnects after
// kills and restarts) over gRPC.
func overGRPC(r row) row {
	r.Guards = "as " + r.Name + ", the traffic over tierd's gRPC API (its client reconnects after every kill and restart)"
	r.Name += "-grpc"
	r.API = tierd.APIGRPC
	return r
}

// TestNemesis runs every row with a schedule generated from its case seed.
// With -chaos.replay=FILE it reruns that schedule file instead, exactly:
// the same steps at the same offsets and the same traffic seed, judged by
// the budgets of the row whose profile made it.
func TestNemesis(t *testing.T) {
	if *flagReplay != "" {
		stack.NewCase(t)
		sch, err := nemesis.ReadSchedule(*flagReplay)
		require.NoError(t, err)
		if slices.ContainsFunc(sch.Steps, func(st nemesis.Step) bool { return st.Fault.Kind() == fault.KindPowerCut }) {
			usePowerLoss(t)
		}
		runSchedule(t, sch, budgetsFor(sch.Profile.Name))
		return
	}
	powerLoss := map[string]bool{}
	var table []scenario.Scenario[*tierd.Case]
	for _, r := range rows() {
		powerLoss[r.Name] = r.PowerLoss
		table = append(table, scenario.Scenario[*tierd.Case]{
			Name: r.Name, Faults: drawnFaults(r), Guards: r.Guards,
			// The row's schedule runs on its own context (shrinking a
			// failure may take long), not on Run's.
			Run: func(_ context.Context, t *testing.T, c *tierd.Case) {
				p := r.Profile
				p.Length = d(r.Duration)
				if *flagDuration > 0 {
					p.Length = d(*flagDuration)
				}
				tr := r.Traffic
				if *flagRate > 0 {
					tr.Rate = *flagRate
				}
				tr.Seed = c.Seed.Seed
				tr.API = r.API
				sch, err := nemesis.Generate(c.Seed.Seed, p, tr)
				require.NoError(t, err)
				runSchedule(t, sch, r.Budgets)
			},
		})
	}
	scenario.Run(t, table, func(t *testing.T, s scenario.Scenario[*tierd.Case]) *tierd.Case {
		if powerLoss[s.Name] {
			usePowerLoss(t)
		}
		return stack.NewCase(t)
	})
}

// drawn is a fault kind a row's schedules draw from: a zero fault of the
// kind, whose parameters each schedule draws.
type drawn struct{ fault.Fault }

// String names the kind and says that its parameters are drawn.
func (f drawn) String() string { return f.Kind() + " with parameters drawn per schedule" }

// drawnFaults lists the fault kinds r's schedules draw from, as
// nemesis.Generate picks them: the kinds of the profile's families (with a
// positive weight), narrowed to the profile's Kinds when it names some;
// power cuts only when the Kinds name them.
func drawnFaults(r row) []scenario.Fault {
	fams := map[fault.Family]bool{}
	for _, w := range r.Profile.Families {
		fams[w.Family] = fams[w.Family] || w.Weight > 0
	}
	var out []scenario.Fault
	for _, k := range fault.Kinds() {
		v, ok := fault.New(k)
		if !ok {
			continue
		}
		f := v.(fault.Fault)
		named := slices.Contains(r.Profile.Kinds, k)
		switch {
		case !fams[f.Family()]:
		case len(r.Profile.Kinds) > 0 && !named:
		case k == fault.KindPowerCut && !named:
		default:
			out = append(out, drawn{f})
		}
	}
	return out
}

// TestNemesisRegressions replays every shrunk schedule kept under
// testdata/ with the budgets of the row that made it: each once found a
// defect, a lost write or a broken budget, now fixed.
func TestNemesisRegressions(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "testdata holds the shrunk schedules of the defects the nemesis found")
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			stack.NewCase(t)
			sch, err := nemesis.ReadSchedule(f)
			require.NoError(t, err)
			budgets := budgetsFor(sch.Profile.Name)
			require.NotNil(t, budgets, "no row has the profile %q of %s", sch.Profile.Name, f)
			runSchedule(t, sch, budgets)
		})
	}
}

// budgetsFor finds the budgets of the row whose profile made a schedule.
func budgetsFor(profile string) []nemesis.Budget {
	for _, r := range rows() {
		if r.Profile.Name == profile {
			return r.Budgets
		}
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// artifactDir is the folder of one run: <root>/<test name>-<seed>.
func artifactDir(t *testing.T, sch nemesis.Schedule) string {
	t.Helper()
	root := *flagArtifacts
	if root == "" {
		root = os.Getenv("TIERCHAOS_ARTIFACTS")
	}
	if root == "" {
		root = filepath.Join(os.TempDir(), "tierchaos-nemesis")
	}
	name := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-")
	dir := filepath.Join(root, fmt.Sprintf("%s-%d-%d", name, sch.Seed, time.Now().UnixNano()))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// runOnce runs one schedule and returns its result.
func runOnce(ctx context.Context, t *testing.T, sch nemesis.Schedule, budgets []nemesis.Budget, dir string, arm func(context.Context) error) *nemesis.Result {
	t.Helper()
	res, err := nemesis.Run(ctx, nemesis.Config{
		Stack: stack, Schedule: sch, Budgets: budgets, Dir: dir, Profiles: true, BaseEnv: suiteEnv,
		Prefix: fmt.Sprintf("n%x", time.Now().UnixNano()&0xffffffffff), BeforeTraffic: arm,
	})
	require.NoError(t, err, "nemesis run (artifacts in %s)", dir)
	return res
}

// runSchedule runs sch, reports it and, when it fails, prints how to replay
// it and shrinks it when -chaos.shrink is set.
func runSchedule(t *testing.T, sch nemesis.Schedule, budgets []nemesis.Budget) {
	t.Helper()
	for _, st := range sch.Steps {
		if st.Fault.Family() == fault.FamilyDisk {
			stack.RequireDataTmpfs(t) // disk faults fill tierd's data tmpfs
			break
		}
	}
	ctx := context.Background()
	dir := artifactDir(t, sch)
	res := runOnce(ctx, t, sch, budgets, dir, nil)
	t.Logf("nemesis: profile %s seed %d, %d steps, %d requests, start lag p99 %s; artifacts in %s",
		sch.Profile.Name, sch.Seed, len(sch.Steps), res.Requests, res.StartLag.P99, dir)
	for _, n := range res.Notes {
		t.Logf("nemesis: no verdict: %s", n)
	}
	if !res.Failed() {
		return
	}
	replay := filepath.Join(dir, "schedule.json")
	t.Logf("nemesis: replay this schedule with:\n\t%s", replayCommand(replay))
	if *flagShrink > 0 {
		shrink(ctx, t, sch, budgets, res)
	}
	t.Fatal(res.Summary())
}

// replayCommand is the command that replays a schedule file.
func replayCommand(file string) string {
	b := seed.Environment()
	cmd := seed.Command("TestNemesis", 0, b)
	cmd = strings.Replace(cmd, "-"+seed.FlagName+"=0", "-chaos.replay="+file, 1)
	return cmd
}

// shrink reduces a failing schedule and saves the smallest one found.
func shrink(ctx context.Context, t *testing.T, sch nemesis.Schedule, budgets []nemesis.Budget, orig *nemesis.Result) {
	t.Helper()
	checks := map[string]bool{}
	for _, f := range orig.Findings {
		checks[f.Check] = true
	}
	n := 0
	small, rep, err := nemesis.Shrink(ctx, sch, nemesis.ShrinkConfig{
		Budget: *flagShrink,
		Runs:   *flagShrinkRuns,
		SeenAt: orig.FirstSeen(),
		Try: func(ctx context.Context, cand nemesis.Schedule) (bool, error) {
			n++
			dir := artifactDir(t, cand)
			res, err := nemesis.Run(ctx, nemesis.Config{Stack: stack, Schedule: cand, Budgets: budgets, Dir: dir, BaseEnv: suiteEnv,
				Prefix: fmt.Sprintf("s%x", time.Now().UnixNano()&0xffffffffff)})
			if err != nil {
				return false, err
			}
			for _, f := range res.Findings {
				if checks[f.Check] {
					return true, nil
				}
			}
			return false, stack.ClearFaults(ctx)
		},
	})
	if err != nil {
		t.Errorf("nemesis: shrinking stopped: %v", err)
	}
	dir := artifactDir(t, small)
	file := filepath.Join(dir, "shrunk-schedule.json")
	require.NoError(t, small.WriteFile(file))
	var steps []string
	for _, st := range small.Steps {
		steps = append(steps, "\t"+st.String())
	}
	t.Logf("nemesis: %s; smallest failing schedule (%s):\n%s\nreplay it with:\n\t%s", rep, file, strings.Join(steps, "\n"), replayCommand(file))
}

// TestNemesisStackSupportsEveryFamily: the stack serves the disk and MinIO
// faults the rows draw (tierd's data on a tmpfs, a restartable MinIO).
func TestNemesisStackSupportsEveryFamily(t *testing.T) {
	stack.NewCase(t)
	require.NoError(t, stack.RestartMinIO(context.Background()), "MinIO faults need a restartable MinIO")
	stack.RequireDataTmpfs(t) // disk faults need tierd's data on a tmpfs of the harness
	n, err := stack.FillData(context.Background())
	require.NoError(t, err, "disk faults fill tierd's data tmpfs")
	require.Positive(t, n)
	require.NoError(t, stack.FreeData(context.Background()))
}

// usePowerLoss runs tierd on the power-loss layer for the rest of t; in
// container mode it checks that a power cut is refused with the stable
// code, then skips t with the reason.
func usePowerLoss(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if stack.Mode != tierd.SUTInProcess {
		err := fault.PowerCut{}.Run(ctx, stack)
		var fe *fault.Error
		require.ErrorAs(t, err, &fe)
		require.Equal(t, fault.CodeUnsupported, fe.Code)
		t.Skipf("a power cut needs tierd in the test process (TIERCHAOS_SUT=inprocess); refused here as it must be: %v", err)
	}
	require.NoError(t, stack.UsePowerLoss(ctx, true))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, stack.UsePowerLoss(ctx, false))
	})
}
