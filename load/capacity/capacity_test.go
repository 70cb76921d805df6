package capacity

import (
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load/budget"
)

// fakeTarget is a target whose search p95 is flat (10 ms) up to knee
// req/s and rises with the cube of the rate beyond it; inserts stay at
// 5 ms. Stages are judged by the real per-operation budget check.
type fakeTarget struct {
	knee  float64
	spec  budget.Spec
	rates []float64
}

func (f *fakeTarget) p95(rate float64) time.Duration {
	base := 10 * time.Millisecond
	if rate <= f.knee {
		return base
	}
	return time.Duration(float64(base) * math.Pow(rate/f.knee, 3))
}

func (f *fakeTarget) stage(_ context.Context, _ int, rate float64) (Stage, error) {
	f.rates = append(f.rates, rate)
	search := f.p95(rate)
	ops := []budget.OpMeasured{
		{Name: "search", Completed: 100, P95: search},
		{Name: "insert", Completed: 100, P95: 5 * time.Millisecond},
	}
	br := budget.Report{Lines: budget.CheckSpec(f.spec, ops, budget.OpMeasured{Name: "all", Completed: 200, P95: search})}
	st := Stage{Held: br.Passed(), AchievedRate: rate, P95MS: map[string]float64{
		"search": float64(search) / 1e6, "insert": 5, "all": float64(search) / 1e6}}
	for _, l := range br.Failed() {
		st.Failed = append(st.Failed, l.Op+" "+l.Name)
	}
	return st, nil
}

// capacityOf is the true highest rate within a p95 limit for the fake.
func (f *fakeTarget) capacityOf(limit time.Duration) float64 {
	return f.knee * math.Cbrt(float64(limit)/float64(10*time.Millisecond))
}

func TestFindRaisesThenBisects(t *testing.T) {
	spec, err := budget.ParseSpec("search:p95=25ms")
	require.NoError(t, err)
	f := &fakeTarget{knee: 300, spec: spec}
	truth := f.capacityOf(25 * time.Millisecond) // ≈ 407 req/s
	res, err := Find(context.Background(), Plan{Start: 50, Factor: 2, Max: 5000, Resolution: 0.05}, f.stage)
	require.NoError(t, err)

	// 50, 100, 200, 400 hold; 800 fails; then midpoints: 600, 500, 450,
	// 425, 412.5 (each fails) until the gap is ≤ 5% of 400.
	assert.Equal(t, []float64{50, 100, 200, 400, 800, 600, 500, 450, 425, 412.5}, f.rates)
	assert.Equal(t, 400.0, res.MaxHeld)
	assert.Equal(t, 412.5, res.MinFailed)
	assert.False(t, res.ReachedMax)
	assert.LessOrEqual(t, res.MaxHeld, truth)
	assert.Greater(t, res.MinFailed, truth)
	assert.LessOrEqual(t, res.MinFailed-res.MaxHeld, 0.05*res.MaxHeld)
	for _, s := range res.Stages {
		assert.Equal(t, s.Rate <= truth, s.Held, "stage at %v", s.Rate)
		if !s.Held {
			assert.Equal(t, []string{"search p95"}, s.Failed)
		}
	}
	assert.Equal(t, []string{"insert", "search", "all"}, res.Ops())
}

func TestFindTable(t *testing.T) {
	spec, err := budget.ParseSpec("search:p95=25ms")
	require.NoError(t, err)
	tests := []struct {
		name      string
		knee      float64
		plan      Plan
		rates     []float64
		held      float64
		failed    float64
		reached   bool
		verdictRe string
	}{
		{"capacity above max", 10000, Plan{Start: 100, Factor: 3, Max: 1000}, []float64{100, 300, 900, 1000}, 1000, 0, true, "at least"},
		{"start fails", 10, Plan{Start: 100, Max: 1000}, []float64{100}, 0, 100, false, "start rate 100 req/s already failed"},
		{"stage limit ends the raise", 10000, Plan{Start: 1, Factor: 2, Max: 1e6, MaxStages: 3}, []float64{1, 2, 4}, 4, 0, false, "no stage failed"},
		{"stage limit ends the bisection", 300, Plan{Start: 100, Factor: 4, Max: 1e4, MaxStages: 4, Resolution: 0.01}, []float64{100, 400, 1600, 1000}, 400, 1000, false, "lowest failed: 1000"},
		{"default factor and resolution", 300, Plan{Start: 300, Max: 1e4}, []float64{300, 600, 450, 375, 412.5}, 375, 412.5, false, "375 req/s (lowest failed: 412.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTarget{knee: tt.knee, spec: spec}
			res, err := Find(context.Background(), tt.plan, f.stage)
			require.NoError(t, err)
			assert.Equal(t, tt.rates, f.rates)
			assert.Equal(t, tt.held, res.MaxHeld)
			assert.Equal(t, tt.failed, res.MinFailed)
			assert.Equal(t, tt.reached, res.ReachedMax)
			assert.Contains(t, res.Verdict(), tt.verdictRe)
		})
	}
}

func TestFindErrors(t *testing.T) {
	ok := func(context.Context, int, float64) (Stage, error) { return Stage{Held: true}, nil }
	for _, p := range []Plan{
		{Start: 0, Max: 10}, {Start: -1, Max: 10}, {Start: math.NaN(), Max: 10}, {Start: 10, Max: 5},
		{Start: 1, Max: 10, Factor: 1}, {Start: 1, Max: 10, Resolution: 1}, {Start: 1, Max: 10, Resolution: -0.1},
		{Start: 1, Max: 10, MaxStages: -1}, {Start: 1, Max: math.Inf(1)},
	} {
		_, err := Find(context.Background(), p, ok)
		require.ErrorIs(t, err, ErrPlan, "%+v", p)
	}

	boom := errors.New("tierd went away")
	calls := 0
	res, err := Find(context.Background(), Plan{Start: 10, Max: 100}, func(context.Context, int, float64) (Stage, error) {
		calls++
		if calls == 3 {
			return Stage{}, boom
		}
		return Stage{Held: true}, nil
	})
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "stage 2 at 40 req/s")
	assert.Len(t, res.Stages, 2, "the stages before the error are kept")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Find(ctx, Plan{Start: 10, Max: 100}, ok)
	require.ErrorIs(t, err, context.Canceled)
}

func TestWrite(t *testing.T) {
	spec, err := budget.ParseSpec("search:p95=25ms")
	require.NoError(t, err)
	f := &fakeTarget{knee: 300, spec: spec}
	res, err := Find(context.Background(), Plan{Start: 100, Max: 2000}, f.stage)
	require.NoError(t, err)
	res.StageDuration = 20 * time.Second
	dir := t.TempDir()
	paths, err := Write(dir, res)
	require.NoError(t, err)
	require.Len(t, paths, 3)

	md, err := os.ReadFile(filepath.Join(dir, MDFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "highest rate that held every budget: 400 req/s")
	assert.Contains(t, string(md), "| stage | rate | achieved/s | errors | insert p95 | search p95 | all p95 | result |")
	assert.Contains(t, string(md), "| 2 | 400 | 400.0 | 0% | 5.00ms | 23.70ms | 23.70ms | held |")
	assert.Contains(t, string(md), "**failed**: search p95")
	assert.Contains(t, string(md), "of 20s each")

	fh, err := os.Open(filepath.Join(dir, PNGFile))
	require.NoError(t, err)
	t.Cleanup(func() { fh.Close() })
	img, err := png.Decode(fh)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 500)
	assert.FileExists(t, filepath.Join(dir, JSONFile))
}
