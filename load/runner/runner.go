// Package runner runs a workload end to end against a running service (a
// load.System: tierd's is load/workload.System): it prepares the workload,
// starts the resource monitor and the pprof captures, drives the
// open-loop load with progress display, checks the budget, and writes the
// report folder. It knows no service of its own. cmd/tierload is its
// command line for tierd.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/monitor"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
	"github.com/tierchaos/tierchaos/profiling"
)

// ErrOptions is returned (wrapped) for invalid options.
var ErrOptions = errors.New("runner: invalid options")

// Files written into Options.OutDir besides the report's own.
const (
	ResourcesCSV = "resources.csv"
	ProfilesDir  = "profiles"
)

// Options describes one run.
type Options struct {
	// Name labels the report (default "tierload").
	Name string
	// OutDir receives report.json, report.md, latency.png, resources.csv
	// and profiles/ (default "load-report").
	OutDir string
	// System is the service under load and its workload (required). The
	// caller owns it: the run neither dials nor closes it.
	System load.System
	// Seed seeds the driver's arrivals and operation choices (the
	// workload has its own).
	Seed uint64
	// PprofURL is the service's pprof base (…/debug/pprof); empty: no
	// profiles, no heap budget.
	PprofURL string
	// Sampler reads the service's CPU and memory; nil: no resource monitor.
	Sampler monitor.Sampler
	// Rate, Duration, RampUp, Arrival, MaxInFlight, Timeout configure the driver.
	Rate        float64
	Duration    time.Duration
	RampUp      time.Duration
	Arrival     load.Arrival
	MaxInFlight int
	// Timeout bounds each request (default 10 s).
	Timeout time.Duration
	// WarmUp is when the base heap profile is taken and from when the CPU
	// average is computed (default 10% of Duration, at most 30 s).
	WarmUp time.Duration
	// CPUWindow and CPUEvery schedule CPU profiles (defaults 10 s and 60 s).
	CPUWindow, CPUEvery time.Duration
	// Budget holds the whole-run gates checked at the end; a zero Budget
	// checks nothing.
	Budget budget.Budget
	// OpBudget holds per-operation gates (budget.ParseSpec), checked at the
	// end before the whole-run gates.
	OpBudget budget.Spec
	// Progress selects the live display, written to ProgressOut (default os.Stderr).
	Progress    progress.Mode
	ProgressOut io.Writer
	// KeepData leaves the workload's data in the service after the run
	// (no Workload.Cleanup).
	KeepData bool
	// Target describes where the service runs, for the report (default
	// System.Where()).
	Target string
	// Shard is set when this run drives one shard of a sharded run (the
	// caller has already divided the rate and set the shard's seed and
	// collection prefix; see ShardSeed).
	Shard  *report.Shard
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "tierload"
	}
	if o.OutDir == "" {
		o.OutDir = "load-report"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.WarmUp == 0 {
		o.WarmUp = min(o.Duration/10, 30*time.Second)
	}
	if o.ProgressOut == nil {
		o.ProgressOut = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 512
	}
	return o
}

// Outcome is a finished run.
type Outcome struct {
	Report *report.Report
	Result *load.Result
	Budget budget.Report
	// Files are every artifact written.
	Files []string
}

// Passed reports whether the budget held.
func (o *Outcome) Passed() bool { return o.Budget.Passed() }

// Run executes the run described by o.
func Run(ctx context.Context, o Options) (*Outcome, error) {
	o = o.withDefaults()
	if o.System == nil {
		return nil, fmt.Errorf("%w: no system to drive", ErrOptions)
	}
	if err := load.ValidateSchedule(o.Rate, o.Duration, o.RampUp); err != nil {
		return nil, err
	}
	if o.WarmUp < 0 || o.WarmUp >= o.Duration {
		return nil, fmt.Errorf("%w: warm-up %v must be within [0, duration %v)", ErrOptions, o.WarmUp, o.Duration)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	log := o.Logger
	sys := o.System
	if o.Target == "" {
		o.Target = sys.Where()
	}
	if err := load.WaitReady(ctx, sys, time.Minute); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}

	log.Info("preparing the workload", "api", sys.API(), "at", sys.Where(), "seed", o.Seed)
	seedStart := time.Now()
	w, err := sys.Setup(ctx)
	if err != nil {
		return nil, err
	}
	attrs := []any{"duration", time.Since(seedStart).Round(time.Millisecond)}
	if d, ok := w.(fmt.Stringer); ok {
		attrs = append(attrs, "workload", d.String())
	}
	log.Info("prepared", attrs...)
	if !o.KeepData {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := w.Cleanup(cctx); err != nil {
				log.Warn("cleanup of the workload's data", "err", err)
			}
		}()
	}

	var files []string
	runCtx, stopAux := context.WithCancel(ctx)
	defer stopAux()

	// Resource monitor.
	var mon *monitor.Monitor
	monDone := make(chan error, 1)
	if o.Sampler != nil {
		path := filepath.Join(o.OutDir, ResourcesCSV)
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
		defer f.Close()
		files = append(files, path)
		mopts := monitor.Options{CSV: f, Logger: log}
		if o.PprofURL != "" {
			mopts.Goroutines = monitor.PprofGoroutines{BaseURL: o.PprofURL}
		}
		mon = monitor.New(o.Sampler, mopts)
		go func() { monDone <- mon.Run(runCtx) }()
	} else {
		monDone <- nil
	}

	// Profiles.
	var sess *profiling.Session
	if o.PprofURL != "" {
		pc, err := profiling.New(o.PprofURL, filepath.Join(o.OutDir, ProfilesDir), nil)
		if err != nil {
			return nil, err
		}
		sess = pc.Start(runCtx, profiling.Plan{WarmUp: o.WarmUp, Duration: o.Duration, CPUWindow: o.CPUWindow, CPUEvery: o.CPUEvery}, log)
	}

	ops := w.Ops()
	mix := map[string]float64{}
	for _, op := range ops {
		mix[op.Name] = op.Weight
	}
	prog := progress.New(o.ProgressOut, o.Name, o.Duration, o.Progress)
	lc := load.Config{
		Ops: ops, Rate: o.Rate, Duration: o.Duration, RampUp: o.RampUp, Arrival: o.Arrival,
		Seed: o.Seed, MaxInFlight: o.MaxInFlight, DrainTimeout: o.Timeout, Timeout: o.Timeout,
		OnTick: prog.OnTick, OnInterval: prog.OnInterval, Logger: log,
	}
	res, err := load.Run(ctx, lc)
	prog.Close()
	if err != nil {
		return nil, err
	}

	measured := budget.FromResult(res)
	in := report.Input{Name: o.Name, Target: o.Target, Result: res, Mix: mix, Shard: o.Shard, API: sys.API()}
	if sess != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		sum, err := sess.Finish(fctx)
		cancel()
		if sum != nil {
			files = append(files, sum.Files...)
			in.Profiles = profilesOf(sum, o.OutDir)
		}
		if err != nil {
			log.Warn("profiles incomplete", "err", err)
		} else if sum.HasBase() {
			measured.HeapGrowth, measured.HasHeap = sum.HeapGrowth, true
			measured.HeapBase, measured.HeapEnd = sum.HeapBase, sum.HeapEnd
		}
	}
	stopAux()
	if err := <-monDone; err != nil {
		log.Warn("resource monitor", "err", err)
	}
	if mon != nil {
		s := mon.Summarize(o.WarmUp)
		if s.Samples > 0 {
			measured.CPU, measured.HasCPU = s.CPUAvg, true
		}
		in.Resources = &report.Resources{
			Source: s.Source, Samples: s.Samples, CPUAvg: s.CPUAvg, CPUMax: s.CPUMax,
			RSSStartBytes: s.RSSStart, RSSEndBytes: s.RSSEnd, RSSMaxBytes: s.RSSMax,
			GoroutinesMax: s.GoroutinesMax, GoroutinesEnd: s.GoroutinesEnd, CSV: ResourcesCSV,
		}
	}
	br := budget.Check(o.Budget, measured)
	opsM, allM := budget.OpsFromResult(res)
	br.Lines = append(budget.CheckSpec(o.OpBudget, opsM, allM), br.Lines...)
	br.Spec = o.OpBudget.String()
	in.Budget = &br
	for _, f := range files {
		if rel, err := filepath.Rel(o.OutDir, f); err == nil {
			in.Files = append(in.Files, rel)
		}
	}
	in.Files = append(in.Files, report.JSONFile, report.MDFile, report.PNGFile)
	rep, err := report.Build(in)
	if err != nil {
		return nil, err
	}
	written, err := report.Write(o.OutDir, rep)
	if err != nil {
		return nil, err
	}
	return &Outcome{Report: rep, Result: res, Budget: br, Files: append(files, written...)}, nil
}

func profilesOf(s *profiling.Summary, outDir string) *report.Profiles {
	p := &report.Profiles{HeapBaseBytes: s.HeapBase, HeapEndBytes: s.HeapEnd, HeapGrowth: s.HeapGrowth}
	hot := func(fs []profiling.Func) []report.Hotspot {
		var out []report.Hotspot
		for _, h := range fs {
			out = append(out, report.Hotspot{Function: h.Name, FlatPct: h.FlatPct, CumPct: h.CumPct})
		}
		return out
	}
	p.CPUHotspots = hot(s.CPUHotspots)
	p.BlockHotspots, p.MutexHotspots = hot(s.BlockHotspots), hot(s.MutexHotspots)
	p.BlockDelayMS = float64(s.BlockDelay) / float64(time.Millisecond)
	p.MutexDelayMS = float64(s.MutexDelay) / float64(time.Millisecond)
	for _, d := range s.HeapGrowthBy {
		p.HeapGrowthBy = append(p.HeapGrowthBy, report.HeapGrowth{Function: d.Name, DeltaBytes: d.Delta})
	}
	for _, f := range s.Files {
		if rel, err := filepath.Rel(outDir, f); err == nil {
			p.Files = append(p.Files, rel)
		}
	}
	return p
}

// ShardSeed derives shard i's seed from the run's seed (a SplitMix64 step
// of run and i), so shards draw independent data, arrivals and op
// sequences that one run seed reproduces.
func ShardSeed(run uint64, i int) uint64 {
	z := run + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
