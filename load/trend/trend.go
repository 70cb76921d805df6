// Package trend compares two load reports (report.json of an older and a
// newer run) operation by operation and flags regressions past thresholds:
// latency percentiles that grew by more than a share (and by more than an
// absolute floor, so sub-millisecond noise does not count), an error rate
// that rose, an achieved rate that fell.
package trend

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/load/report"
)

// ErrThresholds is returned (wrapped) for invalid thresholds.
var ErrThresholds = errors.New("trend: invalid thresholds")

// Thresholds bound how much worse the newer run may be. A negative
// latency or rate share disables that check.
type Thresholds struct {
	// P50, P95 and P99 are the largest allowed relative increases of each
	// percentile (0.2 = +20%).
	P50, P95, P99 float64
	// MinLatencyDelta is the smallest absolute latency increase that can
	// count as a regression (noise floor).
	MinLatencyDelta time.Duration
	// ErrorRate is the largest allowed absolute increase of the error
	// rate (0.001 = +0.1 percentage points).
	ErrorRate float64
	// AchievedRate is the largest allowed relative drop of the achieved
	// rate (0.01 = -1%).
	AchievedRate float64
}

// DefaultThresholds are the nightly's: p50 and p95 +20%, p99 +50%, each
// only past +2 ms; error rate +0.1 points; achieved rate -1%.
func DefaultThresholds() Thresholds {
	return Thresholds{P50: 0.2, P95: 0.2, P99: 0.5, MinLatencyDelta: 2 * time.Millisecond, ErrorRate: 0.001, AchievedRate: 0.01}
}

// Validate reports thresholds that cannot be applied.
func (t Thresholds) Validate() error {
	for _, v := range []float64{t.P50, t.P95, t.P99, t.ErrorRate, t.AchievedRate} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %v is not a number", ErrThresholds, v)
		}
	}
	if t.MinLatencyDelta < 0 {
		return fmt.Errorf("%w: min latency delta %v must not be negative", ErrThresholds, t.MinLatencyDelta)
	}
	if t.ErrorRate < 0 {
		return fmt.Errorf("%w: error rate increase %v must not be negative", ErrThresholds, t.ErrorRate)
	}
	return nil
}

// Row is one compared figure of one operation.
type Row struct {
	Op     string `json:"op"`
	Metric string `json:"metric"`
	// Old and New are in milliseconds (latency), a fraction (error rate)
	// or requests per second (achieved rate).
	Old float64 `json:"old"`
	New float64 `json:"new"`
	// Limit describes the threshold ("+20%", "" when unchecked).
	Limit     string `json:"limit,omitempty"`
	Regressed bool   `json:"regressed"`
	// Note explains a row that could not be compared.
	Note string `json:"note,omitempty"`
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Old, New string
	Rows     []Row
}

// Regressions returns the rows past their threshold.
func (c Comparison) Regressions() []Row {
	var out []Row
	for _, r := range c.Rows {
		if r.Regressed {
			out = append(out, r)
		}
	}
	return out
}

// Compare compares every operation present in either report, and the
// whole mix ("all"). An operation present in only one report is listed
// with a note and never counts as a regression.
func Compare(old, new *report.Report, t Thresholds) Comparison {
	c := Comparison{Old: label(old), New: label(new)}
	olds, news := byName(old), byName(new)
	names := map[string]bool{}
	for n := range olds {
		names[n] = true
	}
	for n := range news {
		names[n] = true
	}
	var ops []string
	for n := range names {
		ops = append(ops, n)
	}
	sort.Strings(ops)
	for _, n := range ops {
		o, ook := olds[n]
		nw, nok := news[n]
		switch {
		case !ook:
			c.Rows = append(c.Rows, Row{Op: n, Metric: "-", Note: "only in the new report"})
		case !nok:
			c.Rows = append(c.Rows, Row{Op: n, Metric: "-", Note: "only in the old report"})
		default:
			c.Rows = append(c.Rows, compareOp(n, o, nw, t)...)
		}
	}
	o, nw := old.Overall, new.Overall
	c.Rows = append(c.Rows, compareOp("all", o, nw, t)...)
	return c
}

func label(r *report.Report) string {
	return fmt.Sprintf("%s (%s, seed %d, %.4g req/s, %s API)", r.Name, r.Started.Format("2006-01-02 15:04 UTC"), r.Run.Seed, r.Run.Rate, report.APIOf(r))
}

func byName(r *report.Report) map[string]report.Op {
	m := map[string]report.Op{}
	for _, o := range r.Ops {
		m[o.Name] = o
	}
	return m
}

func compareOp(name string, o, n report.Op, t Thresholds) []Row {
	floor := float64(t.MinLatencyDelta) / float64(time.Millisecond)
	lat := func(metric string, old, new, share float64) Row {
		r := Row{Op: name, Metric: metric, Old: old, New: new}
		if share >= 0 {
			r.Limit = fmt.Sprintf("+%.3g%%", 100*share)
			if floor > 0 {
				r.Limit += fmt.Sprintf(" and +%.3gms", floor)
			}
			r.Regressed = new > old*(1+share) && new-old > floor
		}
		return r
	}
	rows := []Row{
		lat("p50", o.Latency.P50MS, n.Latency.P50MS, t.P50),
		lat("p95", o.Latency.P95MS, n.Latency.P95MS, t.P95),
		lat("p99", o.Latency.P99MS, n.Latency.P99MS, t.P99),
		{Op: name, Metric: "error rate", Old: o.ErrorRate, New: n.ErrorRate, Limit: fmt.Sprintf("+%.3g points", 100*t.ErrorRate),
			Regressed: n.ErrorRate-o.ErrorRate > t.ErrorRate},
	}
	ar := Row{Op: name, Metric: "achieved rate", Old: o.AchievedRate, New: n.AchievedRate}
	if t.AchievedRate >= 0 {
		ar.Limit = fmt.Sprintf("-%.3g%%", 100*t.AchievedRate)
		ar.Regressed = n.AchievedRate < o.AchievedRate*(1-t.AchievedRate)
	}
	return append(rows, ar)
}

// Markdown renders the comparison as a table, regressions in bold.
func (c Comparison) Markdown() string {
	var b strings.Builder
	reg := c.Regressions()
	status := "no regression"
	if len(reg) > 0 {
		status = fmt.Sprintf("**%d regression(s)**", len(reg))
	}
	fmt.Fprintf(&b, "## Load trend: %s\n\nOld: %s  \nNew: %s\n\n", status, c.Old, c.New)
	b.WriteString("| op | metric | old | new | change | allowed | result |\n|---|---|---:|---:|---:|---|---|\n")
	for _, r := range c.Rows {
		if r.Note != "" {
			fmt.Fprintf(&b, "| %s | | | | | | %s |\n", r.Op, r.Note)
			continue
		}
		res := "ok"
		if r.Regressed {
			res = "**REGRESSED**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Op, r.Metric, r.value(r.Old), r.value(r.New), r.change(), r.Limit, res)
	}
	return b.String()
}

func (r Row) value(v float64) string {
	switch r.Metric {
	case "error rate":
		return fmt.Sprintf("%.3g%%", 100*v)
	case "achieved rate":
		return fmt.Sprintf("%.1f/s", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

func (r Row) change() string {
	if r.Metric == "error rate" {
		return fmt.Sprintf("%+.3g points", 100*(r.New-r.Old))
	}
	if r.Old == 0 {
		if r.New == 0 {
			return "0%"
		}
		return "new"
	}
	return fmt.Sprintf("%+.1f%%", 100*(r.New/r.Old-1))
}
