// Package budget checks a load run against release gates written as code:
// latency percentiles, error rate, achieved-rate ratio, the target's CPU
// and its heap growth. A failed check renders a readable table of budget
// versus measured for every gate.
package budget

import (
	"fmt"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tierchaos/tierchaos/load"
)

// NoErrors is a MaxErrorRate that allows no failed request at all (a zero
// MaxErrorRate means "not checked").
const NoErrors = math.SmallestNonzeroFloat64

// Budget is a set of gates. A zero field is not checked.
type Budget struct {
	P50, P95, P99, P999, Max time.Duration
	// MaxErrorRate is the largest allowed failed/completed ratio (0.001 = 0.1%).
	MaxErrorRate float64
	// MinRateRatio is the smallest allowed sent/scheduled ratio (0.99).
	MinRateRatio float64
	// MaxLateRatio is the largest allowed share of late starts.
	MaxLateRatio float64
	// MaxCPU is the largest allowed average CPU use of the target, in cores
	// (0.8 = 80% of one core).
	MaxCPU float64
	// MaxHeapGrowth is the largest allowed relative growth of the target's
	// in-use heap between the end of warm-up and the end of the run (0.1 = 10%).
	MaxHeapGrowth float64
	// HeapSlackBytes lets the heap gate hold whenever the absolute growth
	// is at most this many bytes: a small heap's share of live data (which
	// collections are in memory at the moment of the profile) swings by
	// tens of percent without any leak.
	HeapSlackBytes int64
}

// Measured is what a run produced. CPU and heap figures are optional: a
// budget on an unmeasured figure fails as "not measured".
type Measured struct {
	P50, P95, P99, P999, Max time.Duration
	ErrorRate, RateRatio     float64
	LateRatio                float64
	// CPU is the target's average CPU use in cores; HasCPU says it was measured.
	CPU    float64
	HasCPU bool
	// HeapGrowth is the relative in-use heap growth, from HeapBase to
	// HeapEnd bytes; HasHeap says it was measured.
	HeapGrowth        float64
	HeapBase, HeapEnd int64
	HasHeap           bool
}

// FromResult fills the latency, error, rate and lateness figures of a run.
func FromResult(r *load.Result) Measured {
	o := r.Overall
	m := Measured{
		P50: o.Latency.P50, P95: o.Latency.P95, P99: o.Latency.P99, P999: o.Latency.P999, Max: o.Latency.Max,
		ErrorRate: o.ErrorRate(), RateRatio: o.RateRatio(),
	}
	if o.Sent > 0 {
		m.LateRatio = float64(o.Late) / float64(o.Sent)
	}
	return m
}

// Line is one checked gate.
type Line struct {
	// Op is the operation a per-operation gate applies to ("all" for the
	// whole mix); empty for whole-run gates (CPU, heap, rate, ...).
	Op       string `json:"op,omitempty"`
	Name     string `json:"name"`
	Budget   string `json:"budget"`
	Measured string `json:"measured"`
	OK       bool   `json:"ok"`
}

// Report is the outcome of Check.
type Report struct {
	// Spec is the per-operation budget checked (ParseSpec's grammar), if any.
	Spec  string `json:"spec,omitempty"`
	Lines []Line `json:"lines"`
}

// Passed reports whether every gate held.
func (r Report) Passed() bool {
	for _, l := range r.Lines {
		if !l.OK {
			return false
		}
	}
	return true
}

// Failed returns the gates that did not hold.
func (r Report) Failed() []Line {
	var f []Line
	for _, l := range r.Lines {
		if !l.OK {
			f = append(f, l)
		}
	}
	return f
}

// Table renders the report as an aligned text table.
func (r Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "op\tgate\tbudget\tmeasured\tresult")
	for _, l := range r.Lines {
		res := "ok"
		if !l.OK {
			res = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", l.scope(), l.Name, l.Budget, l.Measured, res)
	}
	_ = w.Flush()
	return b.String()
}

// Markdown renders the report as a Markdown table.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| op | gate | budget | measured | result |\n|---|---|---:|---:|---|\n")
	for _, l := range r.Lines {
		res := "ok"
		if !l.OK {
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", l.scope(), l.Name, l.Budget, l.Measured, res)
	}
	return b.String()
}

// scope names what a line gates in tables: its operation, or "(run)" for
// whole-run gates.
func (l Line) scope() string {
	if l.Op == "" {
		return "(run)"
	}
	return l.Op
}

// Check compares m with b.
func Check(b Budget, m Measured) Report {
	var r Report
	lat := func(name string, limit, got time.Duration) {
		if limit > 0 {
			r.Lines = append(r.Lines, Line{Name: name, Budget: "≤ " + fmtDur(limit), Measured: fmtDur(got), OK: got <= limit})
		}
	}
	lat("p50", b.P50, m.P50)
	lat("p95", b.P95, m.P95)
	lat("p99", b.P99, m.P99)
	lat("p99.9", b.P999, m.P999)
	lat("max", b.Max, m.Max)
	if b.MaxErrorRate > 0 {
		r.Lines = append(r.Lines, Line{Name: "error rate", Budget: "≤ " + fmtPct(b.MaxErrorRate), Measured: fmtPct(m.ErrorRate), OK: m.ErrorRate <= b.MaxErrorRate})
	}
	if b.MinRateRatio > 0 {
		r.Lines = append(r.Lines, Line{Name: "achieved/target rate", Budget: "≥ " + fmtPct(b.MinRateRatio), Measured: fmtPct(m.RateRatio), OK: m.RateRatio >= b.MinRateRatio})
	}
	if b.MaxLateRatio > 0 {
		r.Lines = append(r.Lines, Line{Name: "late starts", Budget: "≤ " + fmtPct(b.MaxLateRatio), Measured: fmtPct(m.LateRatio), OK: m.LateRatio <= b.MaxLateRatio})
	}
	if b.MaxCPU > 0 {
		l := Line{Name: "target CPU (avg)", Budget: "≤ " + fmtPct(b.MaxCPU) + " of a core", Measured: "not measured"}
		if m.HasCPU {
			l.Measured, l.OK = fmtPct(m.CPU), m.CPU <= b.MaxCPU
		}
		r.Lines = append(r.Lines, l)
	}
	if b.MaxHeapGrowth > 0 {
		l := Line{Name: "heap growth", Budget: "≤ " + fmtPct(b.MaxHeapGrowth), Measured: "not measured"}
		if b.HeapSlackBytes > 0 {
			l.Budget += " or ≤ +" + fmtBytes(b.HeapSlackBytes)
		}
		if m.HasHeap {
			delta := m.HeapEnd - m.HeapBase
			l.Measured = fmt.Sprintf("%s (%s%s)", fmtPct(m.HeapGrowth), sign(delta), fmtBytes(abs(delta)))
			l.OK = m.HeapGrowth <= b.MaxHeapGrowth || (b.HeapSlackBytes > 0 && delta <= b.HeapSlackBytes)
		}
		r.Lines = append(r.Lines, l)
	}
	return r
}

// T is the part of testing.TB that Require uses.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	FailNow()
}

// Require checks m against b, logs the table, and fails the test (stopping
// it) with the table when a gate does not hold.
func Require(t T, b Budget, m Measured) Report {
	t.Helper()
	r := Check(b, m)
	if !r.Passed() {
		t.Errorf("load budget failed (%d of %d gates):\n%s", len(r.Failed()), len(r.Lines), r.Table())
		t.FailNow()
		return r
	}
	t.Logf("load budget held:\n%s", r.Table())
	return r
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 100*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
	}
}

func fmtPct(x float64) string {
	switch {
	case x == 0:
		return "0%"
	case x < 1e-6:
		return fmt.Sprintf("%.2g%%", 100*x)
	default:
		return fmt.Sprintf("%.4g%%", 100*x)
	}
}

func fmtBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.3g GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.3g MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.3g KiB", float64(b)/(1<<10))
	default:
		return fmt.Sprintf("%d B", b)
	}
}

func sign(x int64) string {
	if x < 0 {
		return "-"
	}
	return "+"
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
