package report

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/hist"
)

// ErrMerge is returned (wrapped) when reports cannot be merged.
var ErrMerge = errors.New("report: cannot merge")

// Merge combines the reports of shards that ran at the same time against
// one target into one report. Counts (scheduled, sent, completed, errors
// by code, ...) and rates add up; latency and service-time summaries are
// computed from the merged HDR histograms, so they are exactly those of
// one histogram fed every shard's samples (never averaged percentiles).
// Start lag, intervals, the timeline, resources, profiles and budgets are
// per shard and stay in the shards' own reports; the merged report's
// Passed is true when every shard's budget passed. names label the
// inputs (RunInfo.MergedFrom).
func Merge(name string, names []string, reps ...*Report) (*Report, error) {
	if len(reps) == 0 {
		return nil, fmt.Errorf("%w: no reports", ErrMerge)
	}
	if len(names) != len(reps) {
		return nil, fmt.Errorf("%w: %d names for %d reports", ErrMerge, len(names), len(reps))
	}
	first := reps[0]
	out := &Report{Schema: Schema, Name: name, Target: first.Target, Started: first.Started, Passed: true}
	out.Run = RunInfo{Arrival: first.Run.Arrival, Pacing: first.Run.Pacing, LateAfterMS: first.Run.LateAfterMS,
		RampUpS: first.Run.RampUpS, Mix: first.Run.Mix, MergedFrom: names, API: first.Run.API}
	if first.Run.Shard != nil {
		out.Run.Seed = first.Run.Shard.RunSeed
	} else {
		out.Run.Seed = first.Run.Seed
	}
	seen := map[int]string{}
	ops := map[string][]Op{}
	for i, r := range reps {
		if r.Schema != Schema {
			return nil, fmt.Errorf("%w: %s: %w: %q", ErrMerge, names[i], ErrSchema, r.Schema)
		}
		if s := r.Run.Shard; s != nil {
			if prev, dup := seen[s.Index]; dup {
				return nil, fmt.Errorf("%w: %s and %s are both shard %d", ErrMerge, prev, names[i], s.Index)
			}
			seen[s.Index] = names[i]
			if f := first.Run.Shard; f != nil && (s.Count != f.Count || s.RunSeed != f.RunSeed) {
				return nil, fmt.Errorf("%w: %s is shard %d/%d of run seed %d, %s of %d/%d seed %d", ErrMerge,
					names[i], s.Index, s.Count, s.RunSeed, names[0], f.Index, f.Count, f.RunSeed)
			}
		}
		if APIOf(r) != APIOf(first) {
			return nil, fmt.Errorf("%w: %s spoke %s, %s spoke %s: shards of one run speak one API", ErrMerge,
				names[i], APIOf(r), names[0], APIOf(first))
		}
		if r.Started.Before(out.Started) {
			out.Started = r.Started
		}
		out.Run.Rate += r.Run.Rate
		out.Run.DurationS = max(out.Run.DurationS, r.Run.DurationS)
		out.Run.ElapsedS = max(out.Run.ElapsedS, r.Run.ElapsedS)
		out.Run.MaxInFlight += r.Run.MaxInFlight
		out.Run.PeakInFlight += r.Run.PeakInFlight
		out.Run.Interrupted = out.Run.Interrupted || r.Run.Interrupted
		out.Run.DriverCPUS += r.Run.DriverCPUS
		out.Passed = out.Passed && r.Passed
		for _, o := range r.Ops {
			ops[o.Name] = append(ops[o.Name], o)
		}
		ops[""] = append(ops[""], r.Overall)
	}
	var err error
	if out.Overall, err = mergeOps("all", ops[""]); err != nil {
		return nil, err
	}
	delete(ops, "")
	if out.Run.DriverCPUS > 0 && out.Overall.Sent > 0 {
		out.Run.DriverCPUPerRequestUS = out.Run.DriverCPUS * 1e6 / float64(out.Overall.Sent)
	}
	opNames := make([]string, 0, len(ops))
	for n := range ops {
		opNames = append(opNames, n)
	}
	// Keep the first report's op order, then any others by name.
	order := map[string]int{}
	for i, o := range first.Ops {
		order[o.Name] = i
	}
	sort.Slice(opNames, func(i, j int) bool {
		oi, iok := order[opNames[i]]
		oj, jok := order[opNames[j]]
		if iok != jok {
			return iok
		}
		if iok {
			return oi < oj
		}
		return opNames[i] < opNames[j]
	})
	for _, n := range opNames {
		m, err := mergeOps(n, ops[n])
		if err != nil {
			return nil, err
		}
		out.Ops = append(out.Ops, m)
	}
	return out, nil
}

func mergeOps(name string, parts []Op) (Op, error) {
	m := Op{Name: parts[0].Name, Errors: map[string]int64{}}
	lat, svc := hist.New(), hist.New()
	for _, p := range parts {
		m.Scheduled += p.Scheduled
		m.Sent += p.Sent
		m.Missed += p.Missed
		m.Late += p.Late
		m.Completed += p.Completed
		m.OK += p.OK
		for code, n := range p.Errors {
			m.Errors[code] += n
		}
		m.TargetRate += p.TargetRate
		m.AchievedRate += p.AchievedRate
		m.Throughput += p.Throughput
		if p.Completed > 0 && (p.LatencyHDR == "" || p.ServiceHDR == "") {
			return Op{}, fmt.Errorf("%w: op %q of a report has no histograms (written before they were kept?)", ErrMerge, name)
		}
		for _, x := range []struct {
			enc string
			to  *hist.Histogram
		}{{p.LatencyHDR, lat}, {p.ServiceHDR, svc}} {
			if x.enc == "" {
				continue
			}
			h, err := hist.Decode(x.enc)
			if err != nil {
				return Op{}, fmt.Errorf("%w: op %q: %w", ErrMerge, name, err)
			}
			x.to.Merge(h)
		}
	}
	if m.Completed > 0 {
		m.ErrorRate = float64(m.Completed-m.OK) / float64(m.Completed)
	}
	if m.Scheduled > 0 {
		m.RateRatio = float64(m.Sent) / float64(m.Scheduled)
	}
	m.Latency, m.Service = latency(lat.Summary()), latency(svc.Summary())
	var err error
	if m.LatencyHDR, err = lat.Encode(); err != nil {
		return Op{}, err
	}
	if m.ServiceHDR, err = svc.Encode(); err != nil {
		return Op{}, err
	}
	return m, nil
}

// Measured returns the op's figures for budget.CheckSpec.
func (o Op) Measured() budget.OpMeasured {
	d := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	l := o.Latency
	return budget.OpMeasured{Name: o.Name, Completed: o.Completed, P50: d(l.P50MS), P90: d(l.P90MS), P95: d(l.P95MS),
		P99: d(l.P99MS), P999: d(l.P999MS), Max: d(l.MaxMS), ErrorRate: o.ErrorRate}
}
