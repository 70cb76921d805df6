package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tierchaos/tierchaos/harness/fault"
	core "github.com/tierchaos/tierchaos/harness/nemesis"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// Config is one nemesis run.
type Config struct {
	// Stack is the system under test.
	Stack *tierd.Stack
	// Schedule is what to inject, and the traffic to inject it under.
	Schedule Schedule
	// Budgets are the per-phase gates (see Budget).
	Budgets []Budget
	// Dir receives the artifacts: schedule.json, history.json, applied
	// steps, report.json, report.md, latency.png, profiles.
	Dir string
	// Prefix makes the run's collection names unique in the stack.
	Prefix string
	// Profiles captures pprof CPU per phase and heap and goroutines at
	// start and end of tierd, and gates their growth.
	Profiles bool
	// BeforeTraffic, if set, runs after the collections are set up and
	// before traffic starts (a test arms a defect here).
	BeforeTraffic func(ctx context.Context) error
	// BaseEnv are tierd's TIERD_* settings of the stack: a run that
	// reconfigured tierd restarts it with these at the end.
	BaseEnv map[string]string
	// SettleTimeout bounds the wait for tierd to sweep up after the faults
	// (default 90 s).
	SettleTimeout time.Duration
	// Logger receives progress (default slog.Default()).
	Logger *slog.Logger
}

// tierTimeout bounds porcupine's search of the tier histories.
const tierTimeout = 10 * time.Second

// Applied is what happened to one step (core's).
type Applied = core.Applied

// Finding is one reason a run failed.
type Finding struct {
	// Check names what found it: "history", "readback", "orphans",
	// "s3client", "budget", "profile", "inject".
	Check   string `json:"check"`
	Message string `json:"message"`
	// At is when the defect was seen, for findings made during the run
	// (a read-back: the end of the restart before it); 0 otherwise.
	At time.Duration `json:"at,omitempty"`
}

// FirstSeen is the earliest moment a finding was made during the run, or
// 0 when every finding came from the end of the run.
func (r *Result) FirstSeen() time.Duration {
	var first time.Duration
	for _, f := range r.Findings {
		if f.At > 0 && (first == 0 || f.At < first) {
			first = f.At
		}
	}
	return first
}

// Result is a finished run.
type Result struct {
	Schedule Schedule  `json:"schedule"`
	Applied  []Applied `json:"applied"`
	Findings []Finding `json:"findings"`
	// Notes are checks that reached no verdict (the tier linearizability
	// search running out of time on a long history).
	Notes    []string      `json:"notes,omitempty"`
	Phases   []PhaseReport `json:"phases"`
	StartLag struct {
		P50 time.Duration `json:"p50"`
		P99 time.Duration `json:"p99"`
		Max time.Duration `json:"max"`
	} `json:"start_lag"`
	Requests int64          `json:"requests"`
	Ops      int            `json:"ops"`
	Lost     []string       `json:"lost,omitempty"`
	Profiles *ProfileReport `json:"profiles,omitempty"`
	Dir      string         `json:"dir"`
	Elapsed  time.Duration  `json:"elapsed"`
	// Load is the driver's result; History the recorded operations.
	Load    *load.Result `json:"-"`
	History []history.Op `json:"-"`
}

// Failed reports whether any check failed.
func (r *Result) Failed() bool { return len(r.Findings) > 0 }

// Summary is a readable account of the findings.
func (r *Result) Summary() string {
	if !r.Failed() {
		return fmt.Sprintf("nemesis: passed (%d steps, %d operations)", len(r.Schedule.Steps), r.Ops)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nemesis: %d finding(s) (%d steps, %d operations; artifacts in %s)", len(r.Findings),
		len(r.Schedule.Steps), r.Ops, r.Dir)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n  [%s] %s", f.Check, f.Message)
	}
	return b.String()
}

// Run executes cfg's schedule under its traffic and judges the run. The
// error is for a run that could not be carried out (the stack broke in a
// way no check explains); a run that found defects returns a Result whose
// Failed is true.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Schedule.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SettleTimeout == 0 {
		cfg.SettleTimeout = 90 * time.Second
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("nem%x", cfg.Schedule.Seed&0xffffff)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("nemesis: artifact folder: %w", err)
	}
	sch := cfg.Schedule
	res := &Result{Schedule: sch, Dir: cfg.Dir}
	if err := sch.WriteFile(filepath.Join(cfg.Dir, "schedule.json")); err != nil {
		return nil, err
	}
	s := cfg.Stack
	if err := s.ClearFaults(ctx); err != nil {
		return nil, fmt.Errorf("nemesis: clear faults before the run: %w", err)
	}
	if err := s.S3Faults.ResetStats(ctx); err != nil {
		return nil, fmt.Errorf("nemesis: reset the S3 fault layer's counters: %w", err)
	}
	rec := history.NewRecorder()
	tc, release, err := s.APIClient(sch.Traffic.API)
	if err != nil {
		return nil, fmt.Errorf("nemesis: tierd's %s client: %w", sch.Traffic.API, err)
	}
	defer func() {
		if err := release(); err != nil {
			cfg.Logger.Warn("nemesis: close tierd's client", "api", sch.Traffic.API, "err", err)
		}
	}()
	rc := history.NewRecordingClient(tc, rec)
	tr := newTraffic(rc, sch.Traffic, cfg.Prefix)
	if err := tr.setup(ctx); err != nil {
		return nil, err
	}
	if cfg.BeforeTraffic != nil {
		if err := cfg.BeforeTraffic(ctx); err != nil {
			return nil, err
		}
	}
	var prof *profiler
	if cfg.Profiles {
		prof = newProfiler(s, filepath.Join(cfg.Dir, "profiles"), cfg.Logger)
		prof.snapshot(ctx, "start")
	}

	start := time.Now()
	runStart := rec.Now()
	rb := newReadbacks(rc, rec, tr.names, runStart, cfg.Logger)
	hooks := core.Hooks{
		Injecting: func(ctx context.Context, i int, st Step) {
			if prof != nil && !fault.IsInstant(st.Fault) {
				prof.cpu(ctx, fmt.Sprintf("step%02d-%s", i, strings.ReplaceAll(st.Fault.Kind(), ".", "-")), st.For.D())
			}
		},
		InstantDone: func(i int, a Applied) {
			if a.Family == fault.FamilyProcess && a.Error == "" {
				rb.trigger(fmt.Sprintf("step %d (%s)", i, a.Kind), a)
			}
		},
	}
	var applied []Applied
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		applied = core.Execute(ctx, s, sch.Steps, start, cfg.Logger, hooks)
	}()
	lres, lerr := load.Run(ctx, load.Config{
		Ops:         tr.ops(),
		Rate:        sch.Traffic.Rate,
		Duration:    sch.Length(),
		Seed:        sch.Traffic.Seed,
		MaxInFlight: sch.Traffic.MaxInFlight,
		Timeout:     30 * time.Second,
		Logger:      cfg.Logger,
	})
	wg.Wait()
	res.Applied = applied
	if lerr != nil {
		return nil, fmt.Errorf("nemesis: traffic: %w", lerr)
	}
	res.Load = lres
	res.Requests = lres.Overall.Sent
	res.StartLag.P50, res.StartLag.P99, res.StartLag.Max = lres.Overall.StartLag.P50, lres.Overall.StartLag.P99, lres.Overall.StartLag.Max
	for _, a := range applied {
		// A worker request can meet tierd killed, paused or starting: that
		// is the faults at work, not a step the harness failed to inject.
		if a.Error != "" && a.Family != fault.FamilyWorker {
			res.Findings = append(res.Findings, Finding{Check: "inject", Message: fmt.Sprintf("step %d (%s) at %s: %s", a.Step, a.Fault, a.Start, a.Error)})
		}
	}

	// Everything off, then let tierd recover and sweep. tierd keeps the
	// schedule's settings until restoreSettings, after the checks.
	if err := s.ClearFaultsKeepSettings(ctx); err != nil {
		return nil, fmt.Errorf("nemesis: clear faults after the run: %w", err)
	}
	rb.wait()
	res.Findings = append(res.Findings, rb.findings...)
	settleErr := settle(ctx, s, cfg.SettleTimeout)

	ops := rec.Ops()
	final, err := rc.ReadFinal(ctx, tr.names...)
	if err != nil {
		return nil, err
	}
	ops = boundByCrashes(rec.Ops(), crashesOf(applied, runStart))
	res.History, res.Ops = ops, len(ops)
	if err := history.WriteFile(filepath.Join(cfg.Dir, "history.json"), ops); err != nil {
		return nil, err
	}
	checker, err := check.New(ops, check.Config{ArtifactDir: cfg.Dir, AutoDemote: true, TierTimeout: tierTimeout})
	if err != nil {
		return nil, err
	}
	if err := checker.All(final); err != nil {
		var f *check.Failure
		if !errors.As(err, &f) {
			return nil, err
		}
		for _, v := range f.Violations {
			if v.Checker == check.TiersName && strings.HasPrefix(v.Message, "inconclusive") {
				// Long runs with many kills leave porcupine too many
				// unknown tier changes to search: no verdict, not a defect.
				res.Notes = append(res.Notes, v.String())
				continue
			}
			res.Findings = append(res.Findings, Finding{Check: "history", Message: v.String()})
			if v.Checker == check.LostWritesName {
				res.Lost = append(res.Lost, v.ID)
			}
		}
	}
	if settleErr != nil {
		res.Findings = append(res.Findings, Finding{Check: "orphans", Message: settleErr.Error()})
	} else {
		res.Findings = append(res.Findings, Orphans(ctx, s, tr.names)...)
	}
	res.Findings = append(res.Findings, s3Client(ctx, s, applied)...)
	res.Phases = phaseReports(ops, applied, runStart, sch, cfg.Budgets)
	for _, p := range res.Phases {
		for _, l := range p.Failed {
			res.Findings = append(res.Findings, Finding{Check: "budget", Message: p.Phase + ": " + l})
		}
	}
	if prof != nil {
		prof.snapshot(ctx, "end")
		res.Profiles = prof.report()
		res.Findings = append(res.Findings, prof.findings()...)
	}
	if err := restoreSettings(ctx, s, sch, cfg.BaseEnv); err != nil {
		return nil, err
	}
	dropCollections(ctx, s, tr.names)
	res.Elapsed = time.Since(start)
	if err := writeReport(cfg.Dir, res); err != nil {
		cfg.Logger.Warn("nemesis: report", "err", err)
	}
	return res, nil
}

// settle runs worker cycles (run_once works while the worker is paused)
// until one runs without errors (after faults the
// first cycles may still see the damage), so that the orphan sweep has run
// on a healthy stack.
func settle(ctx context.Context, s *tierd.Stack, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		st, err := s.Tierd.Worker(ctx, "run_once")
		switch {
		case err != nil:
			last = err.Error()
		case st.Last != nil && len(st.Last.Errors) == 0:
			return nil
		case st.Last != nil:
			last = strings.Join(st.Last.Errors, "; ")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tierd's worker did not complete a clean cycle within %s after the faults (last: %s)", timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Orphans compares each collection's objects in MinIO with what tierd
// references (the cold copy and the snapshots), and lists incomplete
// multipart uploads, after the worker's sweep.
func Orphans(ctx context.Context, s *tierd.Stack, names []string) []Finding {
	var out []Finding
	refs := map[string]bool{}
	for _, name := range names {
		c, err := s.Tierd.GetCollection(ctx, name)
		if err == nil && c.Object != "" {
			refs[c.Object] = true
		}
		snaps, err := s.Tierd.ListSnapshots(ctx, name)
		if err != nil && !isNotFound(err) {
			out = append(out, Finding{Check: "orphans", Message: fmt.Sprintf("list the snapshots of %s: %v", name, err)})
			continue
		}
		for _, sn := range snaps {
			if sn.Object != "" {
				refs[sn.Object] = true
			}
		}
	}
	for _, name := range names {
		for o := range s.S3.ListObjects(ctx, tierd.Bucket, minioListOptions(name)) {
			if o.Err != nil {
				out = append(out, Finding{Check: "orphans", Message: fmt.Sprintf("list objects of %s: %v", name, o.Err)})
				break
			}
			if !refs[o.Key] {
				out = append(out, Finding{Check: "orphans", Message: fmt.Sprintf("object %s (%d bytes) is referenced by no collection or snapshot", o.Key, o.Size)})
			}
		}
	}
	for u := range s.S3.ListIncompleteUploads(ctx, tierd.Bucket, "", true) {
		if u.Err != nil {
			out = append(out, Finding{Check: "orphans", Message: fmt.Sprintf("list incomplete uploads: %v", u.Err)})
			break
		}
		for _, name := range names {
			if strings.HasPrefix(u.Key, objectPrefix(name)) {
				out = append(out, Finding{Check: "orphans", Message: fmt.Sprintf("incomplete upload %s of %s (started %s)", u.UploadID, u.Key, u.Initiated.Format(time.RFC3339))})
			}
		}
	}
	return out
}

func isNotFound(err error) bool { return client.CodeOf(err) == api.CodeNotFound }

// objectPrefix is where tierd keeps a collection's objects.
// (the harness starts tierd without an S3 prefix).
func objectPrefix(name string) string { return "collections/" + name + "/" }

func minioListOptions(name string) minio.ListObjectsOptions {
	return minio.ListObjectsOptions{Prefix: objectPrefix(name), Recursive: true}
}

// restoreSettings restarts tierd with the stack's settings when the
// schedule reconfigured it.
func restoreSettings(ctx context.Context, s *tierd.Stack, sch Schedule, base map[string]string) error {
	env := map[string]string{}
	for _, st := range sch.Steps {
		if p, ok := st.Fault.Fault.(fault.Process); ok && p.Action == "reconfigure" {
			for k := range p.Env {
				env[k] = base[k] // "" removes a setting the stack did not have
			}
		}
	}
	if len(env) == 0 {
		return nil
	}
	if err := s.ReconfigureTierd(ctx, env); err != nil {
		return fmt.Errorf("nemesis: restore tierd's settings: %w", err)
	}
	return nil
}

// dropCollections deletes the run's collections so that later runs in the
// same stack do not carry them (best effort: the verdict is already made).
func dropCollections(ctx context.Context, s *tierd.Stack, names []string) {
	for _, name := range names {
		if err := s.Tierd.DeleteCollection(ctx, name); err != nil && !isNotFound(err) {
			slog.Debug("nemesis: drop collection", "name", name, "err", err)
		}
	}
}
