package report

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/hist"
)

// shardResult builds a run's result from recorded samples per op: every
// sample is a completed request, those with failed[i] an error.
func shardResult(t *testing.T, rate float64, samples map[string][]time.Duration, errs map[string]int64) *load.Result {
	t.Helper()
	res := &load.Result{Rate: rate, Duration: 10 * time.Second, Elapsed: 10 * time.Second, Start: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)}
	all := load.OpResult{Name: "all", Errors: map[string]int64{}, LatencyHist: hist.New(), ServiceHist: hist.New()}
	for _, name := range []string{"search", "insert"} {
		o := load.OpResult{Name: name, Errors: map[string]int64{}, LatencyHist: hist.New(), ServiceHist: hist.New()}
		for _, d := range samples[name] {
			o.LatencyHist.Record(d)
			o.ServiceHist.Record(d / 2)
		}
		n := int64(len(samples[name]))
		o.Scheduled, o.Sent, o.Completed, o.OK = n+1, n, n, n-errs[name]
		o.Missed = 1
		if errs[name] > 0 {
			o.Errors["timeout"] = errs[name]
		}
		o.TargetRate, o.AchievedRate, o.Throughput = float64(n+1)/10, float64(n)/10, float64(o.OK)/10
		o.Latency, o.Service = o.LatencyHist.Summary(), o.ServiceHist.Summary()
		res.Ops = append(res.Ops, o)
		all.LatencyHist.Merge(o.LatencyHist)
		all.ServiceHist.Merge(o.ServiceHist)
		all.Scheduled += o.Scheduled
		all.Sent += o.Sent
		all.Missed += o.Missed
		all.Completed += o.Completed
		all.OK += o.OK
		for c, k := range o.Errors {
			all.Errors[c] += k
		}
		all.TargetRate += o.TargetRate
		all.AchievedRate += o.AchievedRate
		all.Throughput += o.Throughput
	}
	all.Latency, all.Service = all.LatencyHist.Summary(), all.ServiceHist.Summary()
	res.Overall = all
	return res
}

// TestMergeIsExact: three shards' reports (written and read back as
// report.json) merge into counts that are the sums and percentiles equal
// to those of one histogram fed every sample.
func TestMergeIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	whole := map[string]*hist.Histogram{"search": hist.New(), "insert": hist.New(), "all": hist.New()}
	wholeSvc := hist.New()
	var reps []*Report
	var names []string
	var sent int64
	for i := range 3 {
		samples := map[string][]time.Duration{}
		// Shards differ on purpose: shard 2 is ten times slower, so an
		// average of percentiles would be far from the truth.
		scale := 1.0
		if i == 2 {
			scale = 10
		}
		for _, op := range []string{"search", "insert"} {
			n := 500 + rng.IntN(500)
			for range n {
				d := time.Duration(scale * rng.ExpFloat64() * float64(3*time.Millisecond))
				samples[op] = append(samples[op], d)
				whole[op].Record(d)
				whole["all"].Record(d)
				wholeSvc.Record(d / 2)
			}
			sent += int64(n)
		}
		res := shardResult(t, 30, samples, map[string]int64{"insert": int64(i)})
		rep, err := Build(Input{Name: "shard", Result: res, Shard: &Shard{Index: i, Count: 3, RunSeed: 99}})
		require.NoError(t, err)
		dir := filepath.Join(t.TempDir(), "shard")
		_, err = Write(dir, rep)
		require.NoError(t, err)
		back, err := Read(filepath.Join(dir, JSONFile))
		require.NoError(t, err)
		reps = append(reps, back)
		names = append(names, dir)
	}

	m, err := Merge("merged", names, reps...)
	require.NoError(t, err)
	assert.Equal(t, sent, m.Overall.Sent)
	assert.Equal(t, sent+6, m.Overall.Scheduled)
	assert.Equal(t, int64(3), m.Overall.Errors["timeout"], "0+1+2 insert timeouts")
	assert.Equal(t, float64(3)/float64(m.Overall.Completed), m.Overall.ErrorRate)
	assert.Equal(t, 90.0, m.Run.Rate)
	assert.Equal(t, uint64(99), m.Run.Seed)
	assert.Equal(t, names, m.Run.MergedFrom)
	require.Len(t, m.Ops, 2)
	for _, o := range append(m.Ops, m.Overall) {
		name := o.Name
		var sum int64
		for _, r := range reps {
			for _, ro := range append(r.Ops, r.Overall) {
				if ro.Name == name {
					sum += ro.Completed
				}
			}
		}
		assert.Equal(t, sum, o.Completed, name)
		assert.Equal(t, whole[name].Count(), o.Latency.Count, name)
		assert.Equal(t, latency(whole[name].Summary()), o.Latency, "%s: merged percentiles equal those of all samples", name)
		h, err := hist.Decode(o.LatencyHDR)
		require.NoError(t, err)
		assert.Equal(t, whole[name].Summary(), h.Summary(), name)
	}
	assert.Equal(t, latency(wholeSvc.Summary()), m.Overall.Service)
	// Not an average of the shards' p95s.
	var avg float64
	for _, r := range reps {
		avg += r.Overall.Latency.P95MS / 3
	}
	assert.NotEqual(t, avg, m.Overall.Latency.P95MS)

	// A merged report is itself a valid report.
	dir := t.TempDir()
	_, err = Write(dir, m)
	require.NoError(t, err)
	_, err = Read(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
}

func TestMergeErrors(t *testing.T) {
	res := shardResult(t, 10, map[string][]time.Duration{"search": {time.Millisecond}, "insert": {time.Millisecond}}, nil)
	mk := func(s *Shard) *Report {
		r, err := Build(Input{Name: "s", Result: res, Shard: s})
		require.NoError(t, err)
		return r
	}
	_, err := Merge("m", nil)
	require.ErrorIs(t, err, ErrMerge)
	_, err = Merge("m", []string{"a"}, mk(nil), mk(nil))
	require.ErrorIs(t, err, ErrMerge)
	_, err = Merge("m", []string{"a", "b"}, mk(&Shard{Index: 1, Count: 2, RunSeed: 1}), mk(&Shard{Index: 1, Count: 2, RunSeed: 1}))
	require.ErrorContains(t, err, "both shard 1")
	_, err = Merge("m", []string{"a", "b"}, mk(&Shard{Index: 0, Count: 2, RunSeed: 1}), mk(&Shard{Index: 1, Count: 2, RunSeed: 2}))
	require.ErrorContains(t, err, "run seed")
	noHist := mk(nil)
	noHist.Ops[0].LatencyHDR = ""
	_, err = Merge("m", []string{"a"}, noHist)
	require.ErrorIs(t, err, ErrMerge)
	bad := mk(nil)
	bad.Ops[1].ServiceHDR = "garbage"
	_, err = Merge("m", []string{"a"}, bad)
	require.ErrorIs(t, err, hist.ErrDecode)
	overGRPC := mk(&Shard{Index: 1, Count: 2, RunSeed: 1})
	overGRPC.Run.API = "grpc"
	_, err = Merge("m", []string{"a", "b"}, mk(&Shard{Index: 0, Count: 2, RunSeed: 1}), overGRPC)
	require.ErrorContains(t, err, "b spoke grpc, a spoke rest: shards of one run speak one API")
	both := mk(&Shard{Index: 0, Count: 2, RunSeed: 1})
	both.Run.API = "grpc"
	m, err := Merge("m", []string{"a", "b"}, both, overGRPC)
	require.NoError(t, err)
	require.Equal(t, "grpc", m.Run.API)
	other := mk(nil)
	other.Schema = "other/v9"
	_, err = Merge("m", []string{"a"}, other)
	require.ErrorIs(t, err, ErrSchema)
}

// TestMergeSumsDriverCPU: the shards' driver CPU adds up, and the merged
// per-request figure is the sum over every request sent.
func TestMergeSumsDriverCPU(t *testing.T) {
	mk := func(i int, cpu time.Duration) *Report {
		res := shardResult(t, 10, map[string][]time.Duration{"search": {time.Millisecond}}, nil)
		res.DriverCPU = cpu
		r, err := Build(Input{Name: "s", Result: res, Shard: &Shard{Index: i, Count: 2, RunSeed: 1}})
		require.NoError(t, err)
		require.InDelta(t, cpu.Seconds(), r.Run.DriverCPUS, 1e-9)
		require.InDelta(t, cpu.Seconds()*1e6/float64(r.Overall.Sent), r.Run.DriverCPUPerRequestUS, 1e-6)
		return r
	}
	a, b := mk(0, 2*time.Second), mk(1, time.Second)
	m, err := Merge("m", []string{"a", "b"}, a, b)
	require.NoError(t, err)
	assert.InDelta(t, 3.0, m.Run.DriverCPUS, 1e-9)
	assert.InDelta(t, 3e6/float64(a.Overall.Sent+b.Overall.Sent), m.Run.DriverCPUPerRequestUS, 1e-6)
}
