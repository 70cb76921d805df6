package budget

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/hist"
)

var seedGate = Budget{P95: 25 * time.Millisecond, MaxErrorRate: 0.001, MinRateRatio: 0.99, MaxCPU: 0.8, MaxHeapGrowth: 0.1}

func withSlack(b int64) Budget {
	g := seedGate
	g.HeapSlackBytes = b
	return g
}

func good() Measured {
	return Measured{P95: 10 * time.Millisecond, ErrorRate: 0.0005, RateRatio: 0.999, CPU: 0.3, HasCPU: true, HeapGrowth: 0.02, HasHeap: true}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		b      Budget
		mutate func(*Measured)
		failed []string
	}{
		{"all hold", seedGate, func(*Measured) {}, nil},
		{"p95 over", seedGate, func(m *Measured) { m.P95 = 30 * time.Millisecond }, []string{"p95"}},
		{"p95 exactly at limit holds", seedGate, func(m *Measured) { m.P95 = 25 * time.Millisecond }, nil},
		{"errors", seedGate, func(m *Measured) { m.ErrorRate = 0.01 }, []string{"error rate"}},
		{"rate", seedGate, func(m *Measured) { m.RateRatio = 0.9 }, []string{"achieved/target rate"}},
		{"cpu and heap", seedGate, func(m *Measured) { m.CPU = 1.5; m.HeapGrowth = 0.5 }, []string{"target CPU (avg)", "heap growth"}},
		{"cpu not measured", seedGate, func(m *Measured) { m.HasCPU = false }, []string{"target CPU (avg)"}},
		{"small heap within slack", withSlack(8 << 20), func(m *Measured) { m.HeapGrowth, m.HeapBase, m.HeapEnd = 0.6, 3<<20, 5<<20 }, nil},
		{"heap beyond slack", withSlack(1 << 20), func(m *Measured) { m.HeapGrowth, m.HeapBase, m.HeapEnd = 0.6, 3<<20, 5<<20 }, []string{"heap growth"}},
		{"no errors allowed", Budget{MaxErrorRate: NoErrors}, func(*Measured) {}, []string{"error rate"}},
		{"zero budget checks nothing", Budget{}, func(m *Measured) { m.ErrorRate = 1 }, nil},
		{"tail and late", Budget{P99: time.Millisecond, P999: time.Millisecond, Max: time.Second, MaxLateRatio: 0.01},
			func(m *Measured) { m.P99 = 2 * time.Millisecond; m.LateRatio = 0.5 }, []string{"p99", "late starts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good()
			tt.mutate(&m)
			r := Check(tt.b, m)
			var names []string
			for _, l := range r.Failed() {
				names = append(names, l.Name)
			}
			assert.Equal(t, tt.failed, names)
			assert.Equal(t, len(tt.failed) == 0, r.Passed())
		})
	}
}

// fakeT records what Require does to a test.
type fakeT struct {
	errors, logs []string
	stopped      bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Logf(format string, args ...any) {
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeT) FailNow() { f.stopped = true }

func TestRequireFailsWithTable(t *testing.T) {
	m := good()
	m.P95 = 40 * time.Millisecond
	ft := &fakeT{}
	Require(ft, seedGate, m)
	require.True(t, ft.stopped)
	require.Len(t, ft.errors, 1)
	msg := ft.errors[0]
	assert.Contains(t, msg, "1 of 5 gates")
	assert.Regexp(t, `p95\s+≤ 25ms\s+40ms\s+FAIL`, msg)
	assert.Regexp(t, `error rate\s+≤ 0.1%\s+0.05%\s+ok`, msg)
	assert.Regexp(t, `heap growth\s+≤ 10%\s+2%`, msg)

	ok := &fakeT{}
	Require(ok, seedGate, good())
	assert.False(t, ok.stopped)
	assert.Empty(t, ok.errors)
	require.Len(t, ok.logs, 1)
	assert.Contains(t, ok.logs[0], "load budget held")
}

func TestFromResultAndMarkdown(t *testing.T) {
	h := hist.New()
	h.Record(5 * time.Millisecond)
	r := &load.Result{Overall: load.OpResult{
		Scheduled: 100, Sent: 99, Missed: 1, Late: 9, Completed: 99, OK: 98,
		Latency: h.Summary(),
	}}
	m := FromResult(r)
	assert.InDelta(t, 0.99, m.RateRatio, 1e-9)
	assert.InDelta(t, 1.0/99, m.ErrorRate, 1e-9)
	assert.InDelta(t, 9.0/99, m.LateRatio, 1e-9)
	assert.InDelta(t, float64(5*time.Millisecond), float64(m.P95), float64(10*time.Microsecond))
	assert.False(t, m.HasCPU)
	md := Check(Budget{P95: time.Millisecond}, m).Markdown()
	assert.Contains(t, md, "| (run) | p95 | ≤ 1ms | 5ms | **FAIL** |", md)
}
