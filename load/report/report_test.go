package report

import (
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
)

func run(t *testing.T) *load.Result {
	t.Helper()
	res, err := load.Run(context.Background(), load.Config{
		Ops: []load.Op{
			load.Simple("fast", 3, func(context.Context) error { return nil }),
			load.Simple("flaky", 1, func(context.Context) error {
				return load.WithCode("quota_exceeded", errors.New("full"))
			}),
		},
		Rate: 200, Duration: 400 * time.Millisecond, Tick: 100 * time.Millisecond, Interval: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	return res
}

func TestBuildWriteRead(t *testing.T) {
	res := run(t)
	b := budget.Check(budget.Budget{P95: time.Second, MaxErrorRate: 0.001}, budget.FromResult(res))
	rep, err := Build(Input{
		Name: "unit", Target: "in-process", Result: res, Mix: map[string]float64{"fast": 3, "flaky": 1}, Budget: &b,
		Resources: &Resources{Source: "proc", Samples: 3, CPUAvg: 0.5, RSSMaxBytes: 10 << 20},
		Profiles: &Profiles{HeapBaseBytes: 1 << 20, HeapEndBytes: 2 << 20, HeapGrowth: 1, CPUHotspots: []Hotspot{{"main.f", 50, 60}},
			MutexHotspots: []Hotspot{{"store.(*Store).commit", 80, 90}}, MutexDelayMS: 1500},
	})
	require.NoError(t, err)
	assert.Equal(t, Schema, rep.Schema)
	assert.False(t, rep.Passed, "25% errors break a 0.1% budget")
	assert.InDelta(t, 0.75, rep.Run.Mix["fast"], 1e-9)
	require.Len(t, rep.Ops, 2)
	assert.Equal(t, res.Overall.Sent, rep.Overall.Sent)
	assert.NotEmpty(t, rep.Overall.LatencyHDR)
	assert.NotEmpty(t, rep.Timeline)
	assert.NotEmpty(t, rep.Intervals)

	dir := t.TempDir()
	paths, err := Write(dir, rep)
	require.NoError(t, err)
	require.Len(t, paths, 3)

	back, err := Read(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Equal(t, rep.Overall.Latency, back.Overall.Latency)
	assert.Equal(t, rep.Ops[1].Errors, back.Ops[1].Errors)

	md, err := os.ReadFile(filepath.Join(dir, MDFile))
	require.NoError(t, err)
	for _, want := range []string{"(FAILED)", "| flaky |", "quota_exceeded", "## Budget", "**FAIL**", "## Target resources", "`main.f`",
		"### Mutex hotspots (time waiting on contended locks)\n\n1.50s waited in all", "| `store.(*Store).commit` | 80.0% | 90.0% |",
		"### Block hotspots (time blocked)\n\nNone recorded (the target's block profile rate is 0", "![latency and rate over time](latency.png)"} {
		assert.Contains(t, string(md), want)
	}

	f, err := os.Open(filepath.Join(dir, PNGFile))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 500)
}

func TestMergedLatencyAcrossRuns(t *testing.T) {
	a, err := Build(Input{Name: "a", Result: run(t)})
	require.NoError(t, err)
	b, err := Build(Input{Name: "b", Result: run(t)})
	require.NoError(t, err)
	s, err := MergedLatency(a, b)
	require.NoError(t, err)
	assert.Equal(t, a.Overall.Latency.Count+b.Overall.Latency.Count, s.Count)

	a.Overall.LatencyHDR = "garbage"
	_, err = MergedLatency(a)
	require.Error(t, err)
}

func TestReadRejectsOtherSchema(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	raw, err := json.Marshal(map[string]string{"schema": "other/v9"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, raw, 0o644))
	_, err = Read(p)
	require.ErrorIs(t, err, ErrSchema)
	_, err = Read(filepath.Join(t.TempDir(), "missing.json"))
	require.Error(t, err)
	_, err = Build(Input{})
	require.Error(t, err)
}

func TestPNGWithEmptyTimeline(t *testing.T) {
	require.NoError(t, WritePNG(filepath.Join(t.TempDir(), "x.png"), &Report{Name: "empty"}))
}
