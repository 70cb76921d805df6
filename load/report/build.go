package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/hist"
)

// ErrSchema is returned (wrapped) when a report.json has another schema.
var ErrSchema = errors.New("report: unsupported schema")

// Input is what a run produced.
type Input struct {
	Name   string
	Target string
	Result *load.Result
	// Mix is each op's weight (normalised in the report).
	Mix       map[string]float64
	Budget    *budget.Report
	Resources *Resources
	Profiles  *Profiles
	Files     []string
	// Shard is set when the run drove one shard of a sharded run.
	Shard *Shard
	// API is the tierd API the load spoke ("rest" or "grpc").
	API string
}

// Build assembles the report of a run.
func Build(in Input) (*Report, error) {
	r := in.Result
	if r == nil {
		return nil, errors.New("report: no result")
	}
	rep := &Report{
		Schema:  Schema,
		Name:    in.Name,
		Target:  in.Target,
		Started: r.Start.UTC(),
		Run: RunInfo{
			Rate: r.Rate, DurationS: r.Duration.Seconds(), ElapsedS: r.Elapsed.Seconds(), RampUpS: r.RampUp.Seconds(),
			Arrival: string(r.Arrival), Pacing: string(r.Pacing), Seed: r.Seed, LateAfterMS: ms(r.LateAfter),
			MaxInFlight: r.MaxInFlight, PeakInFlight: r.PeakInFlight, Interrupted: r.Interrupted,
			Mix: normalise(in.Mix), Shard: in.Shard, API: in.API,
			DriverCPUS: r.DriverCPU.Seconds(), DriverCPUPerRequestUS: float64(r.DriverCPUPerRequest()) / float64(time.Microsecond),
		},
		Budget:    in.Budget,
		Passed:    in.Budget == nil || in.Budget.Passed(),
		Resources: in.Resources,
		Profiles:  in.Profiles,
		Files:     in.Files,
	}
	var err error
	if rep.Overall, err = op(r.Overall, true); err != nil {
		return nil, err
	}
	for _, o := range r.Ops {
		ro, err := op(o, true)
		if err != nil {
			return nil, err
		}
		rep.Ops = append(rep.Ops, ro)
	}
	for _, iv := range r.Intervals {
		o := iv.Overall
		rep.Intervals = append(rep.Intervals, Interval{
			StartS: iv.Start.Seconds(), EndS: iv.End.Seconds(), Drain: iv.Drain, Sent: o.Sent, Completed: o.Completed, OK: o.OK,
			Late: o.Late, Errors: o.Errors, TargetRate: o.TargetRate, AchievedRate: o.AchievedRate,
			Latency: latency(o.Latency),
		})
	}
	for _, p := range r.Timeline {
		rep.Timeline = append(rep.Timeline, Point{
			AtS: p.At.Seconds(), Sent: p.Sent, Completed: p.Completed, Errors: p.Errors, Rate: p.Rate,
			P50MS: ms(p.P50), P95MS: ms(p.P95), P99MS: ms(p.P99), MaxMS: ms(p.Max),
		})
	}
	return rep, nil
}

func op(o load.OpResult, withHist bool) (Op, error) {
	r := Op{
		Name: o.Name, Scheduled: o.Scheduled, Sent: o.Sent, Missed: o.Missed, Late: o.Late,
		Completed: o.Completed, OK: o.OK, Errors: o.Errors, ErrorRate: o.ErrorRate(),
		TargetRate: o.TargetRate, AchievedRate: o.AchievedRate, RateRatio: o.RateRatio(), Throughput: o.Throughput,
		Latency: latency(o.Latency), Service: latency(o.Service), StartLag: latency(o.StartLag),
	}
	if r.Errors == nil {
		r.Errors = map[string]int64{}
	}
	if withHist {
		var err error
		if r.LatencyHDR, err = encode(o.LatencyHist); err != nil {
			return Op{}, err
		}
		if r.ServiceHDR, err = encode(o.ServiceHist); err != nil {
			return Op{}, err
		}
	}
	return r, nil
}

func encode(h *hist.Histogram) (string, error) {
	if h == nil {
		return "", nil
	}
	return h.Encode()
}

func latency(s hist.Summary) Latency {
	return Latency{Count: s.Count, MinMS: ms(s.Min), MeanMS: ms(s.Mean), P50MS: ms(s.P50), P90MS: ms(s.P90),
		P95MS: ms(s.P95), P99MS: ms(s.P99), P999MS: ms(s.P999), MaxMS: ms(s.Max)}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func normalise(m map[string]float64) map[string]float64 {
	if len(m) == 0 {
		return nil
	}
	var sum float64
	for _, w := range m {
		sum += w
	}
	out := make(map[string]float64, len(m))
	for k, w := range m {
		out[k] = w / sum
	}
	return out
}

// Write writes report.json, report.md and latency.png into dir (created if
// needed) and returns their paths.
func Write(dir string, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	paths := []string{filepath.Join(dir, JSONFile), filepath.Join(dir, MDFile), filepath.Join(dir, PNGFile)}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: encode json: %w", err)
	}
	if err := os.WriteFile(paths[0], append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(paths[1], []byte(Markdown(r)), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := WritePNG(paths[2], r); err != nil {
		return nil, err
	}
	return paths, nil
}

// Read loads a report.json written by Write.
func Read(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report: decode %s: %w", path, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%w: %q in %s (want %q)", ErrSchema, r.Schema, path, Schema)
	}
	return &r, nil
}

// MergedLatency merges the overall latency histograms of several reports
// (runs or machines) and returns the combined summary.
func MergedLatency(reports ...*Report) (hist.Summary, error) {
	all := hist.New()
	for _, r := range reports {
		if r.Overall.LatencyHDR == "" {
			continue
		}
		h, err := hist.Decode(r.Overall.LatencyHDR)
		if err != nil {
			return hist.Summary{}, fmt.Errorf("report %q: %w", r.Name, err)
		}
		all.Merge(h)
	}
	return all.Summary(), nil
}
