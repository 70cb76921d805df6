package budget

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/load"
)

// ErrSpec is the error class of every budget specification that cannot be
// parsed: errors.Is(err, ErrSpec) holds for all of them, and their
// ErrorCode is CodeSpec.
var ErrSpec = errors.New("budget: invalid budget specification")

// CodeSpec is the stable error code of a specification that cannot be
// parsed.
const CodeSpec = "budget_spec"

// Scope names in a specification besides operation names.
const (
	// EachOp applies a gate to every operation that has no gate of its own
	// for the same metric.
	EachOp = "*"
	// WholeMix applies a gate to the whole mix (all operations together).
	WholeMix = "all"
)

// Metric is one per-operation gate kind.
type Metric string

// Metrics a specification may name.
const (
	MetricP50    Metric = "p50"
	MetricP90    Metric = "p90"
	MetricP95    Metric = "p95"
	MetricP99    Metric = "p99"
	MetricP999   Metric = "p99.9"
	MetricMax    Metric = "max"
	MetricErrors Metric = "errors"
)

// metricOrder fixes the order of gates in reports.
var metricOrder = []Metric{MetricP50, MetricP90, MetricP95, MetricP99, MetricP999, MetricMax, MetricErrors}

func knownMetric(m Metric) bool {
	for _, k := range metricOrder {
		if k == m {
			return true
		}
	}
	return false
}

// SpecError is a specification that cannot be parsed: the offending clause
// (1-based), its text and why.
type SpecError struct {
	Clause int
	Text   string
	Reason string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("%s: clause %d %q: %s", CodeSpec, e.Clause, e.Text, e.Reason)
}

// Unwrap makes errors.Is(err, ErrSpec) hold.
func (e *SpecError) Unwrap() error { return ErrSpec }

// ErrorCode returns CodeSpec.
func (e *SpecError) ErrorCode() string { return CodeSpec }

// Gate is one per-operation limit: a latency percentile (Limit) or an error
// rate (MaxErrorRate, 0.001 = 0.1%).
type Gate struct {
	Scope        string        `json:"scope"`
	Metric       Metric        `json:"metric"`
	Limit        time.Duration `json:"limit,omitempty"`
	MaxErrorRate float64       `json:"max_error_rate,omitempty"`
}

// String renders the gate in ParseSpec's grammar.
func (g Gate) String() string {
	if g.Metric == MetricErrors {
		if g.MaxErrorRate == NoErrors {
			return g.Scope + ":errors=0%"
		}
		return g.Scope + ":errors=" + strconv.FormatFloat(100*g.MaxErrorRate, 'g', -1, 64) + "%"
	}
	return g.Scope + ":" + string(g.Metric) + "=" + g.Limit.String()
}

// Spec is a parsed per-operation budget: gates in the order given.
type Spec []Gate

// String renders the spec in ParseSpec's grammar (ParseSpec(s.String())
// gives s back).
func (s Spec) String() string {
	parts := make([]string, len(s))
	for i, g := range s {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

// ParseSpec parses a per-operation budget:
//
//	spec   = clause { "," clause }
//	clause = scope ":" metric "=" value
//	scope  = operation name | "*" (every operation without its own gate of that metric) | "all" (the whole mix)
//	metric = "p50" | "p90" | "p95" | "p99" | "p99.9" | "max" | "errors"
//	value  = a Go duration > 0 for latency metrics ("25ms", "1s");
//	         for errors a percentage ("0.1%") or a fraction ("0.001") in [0, 1]
//
// Spaces around tokens are ignored; an empty spec is an empty Spec. A scope
// may name each metric once. Every error is a *SpecError (errors.Is
// ErrSpec, code CodeSpec).
func ParseSpec(s string) (Spec, error) {
	var spec Spec
	if strings.TrimSpace(s) == "" {
		return spec, nil
	}
	seen := map[string]bool{}
	for i, raw := range strings.Split(s, ",") {
		text := strings.TrimSpace(raw)
		bad := func(format string, args ...any) error {
			return &SpecError{Clause: i + 1, Text: text, Reason: fmt.Sprintf(format, args...)}
		}
		if text == "" {
			return nil, bad("empty clause")
		}
		scope, rest, ok := strings.Cut(text, ":")
		if !ok {
			return nil, bad("want scope:metric=value")
		}
		scope = strings.TrimSpace(scope)
		if scope == "" {
			return nil, bad("empty scope (an operation name, %q or %q)", EachOp, WholeMix)
		}
		if scope != EachOp && !validOpName(scope) {
			return nil, bad("scope %q: want an operation name (letters, digits, '-', '_', '.'), %q or %q", scope, EachOp, WholeMix)
		}
		name, val, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, bad("want metric=value after %q", scope+":")
		}
		m := Metric(strings.TrimSpace(name))
		if !knownMetric(m) {
			return nil, bad("unknown metric %q (want p50, p90, p95, p99, p99.9, max or errors)", m)
		}
		key := scope + ":" + string(m)
		if seen[key] {
			return nil, bad("%s given twice", key)
		}
		seen[key] = true
		val = strings.TrimSpace(val)
		g := Gate{Scope: scope, Metric: m}
		if m == MetricErrors {
			r, err := parseRate(val)
			if err != nil {
				return nil, bad("%v", err)
			}
			g.MaxErrorRate = r
		} else {
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return nil, bad("%s wants a positive duration such as 25ms, got %q", m, val)
			}
			g.Limit = d
		}
		spec = append(spec, g)
	}
	return spec, nil
}

func validOpName(s string) bool {
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}

func parseRate(v string) (float64, error) {
	pct := strings.HasSuffix(v, "%")
	num := strings.TrimSpace(strings.TrimSuffix(v, "%"))
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("errors wants a percentage such as 0.1%% or a fraction such as 0.001, got %q", v)
	}
	if pct {
		x /= 100
	}
	if x < 0 || x > 1 {
		return 0, fmt.Errorf("error rate %q is outside 0..100%%", v)
	}
	if x == 0 {
		// A zero limit means "no failed request at all".
		x = NoErrors
	}
	return x, nil
}

// OpMeasured is one operation's (or the whole mix's) measured figures.
type OpMeasured struct {
	Name                     string
	Completed                int64
	P50, P90, P95, P99, P999 time.Duration
	Max                      time.Duration
	ErrorRate                float64
}

// OpsFromResult returns the per-operation figures of a run and the whole
// mix's (named WholeMix).
func OpsFromResult(r *load.Result) (ops []OpMeasured, all OpMeasured) {
	conv := func(o load.OpResult, name string) OpMeasured {
		l := o.Latency
		return OpMeasured{Name: name, Completed: o.Completed, P50: l.P50, P90: l.P90, P95: l.P95, P99: l.P99, P999: l.P999,
			Max: l.Max, ErrorRate: o.ErrorRate()}
	}
	for _, o := range r.Ops {
		ops = append(ops, conv(o, o.Name))
	}
	return ops, conv(r.Overall, WholeMix)
}

func (m OpMeasured) latency(metric Metric) time.Duration {
	switch metric {
	case MetricP50:
		return m.P50
	case MetricP90:
		return m.P90
	case MetricP95:
		return m.P95
	case MetricP99:
		return m.P99
	case MetricP999:
		return m.P999
	default:
		return m.Max
	}
}

// CheckSpec checks every gate of spec against the measured operations and
// whole mix. Gates of a named operation apply to it; "*" gates to every
// operation lacking its own gate of that metric; "all" gates to the whole
// mix. A gate naming an operation that did not run fails as "not run".
// Lines are ordered by operation (as in ops, then the whole mix), then
// metric.
func CheckSpec(spec Spec, ops []OpMeasured, all OpMeasured) []Line {
	if len(spec) == 0 {
		return nil
	}
	byScope := map[string]map[Metric]Gate{}
	for _, g := range spec {
		if byScope[g.Scope] == nil {
			byScope[g.Scope] = map[Metric]Gate{}
		}
		byScope[g.Scope][g.Metric] = g
	}
	var lines []Line
	check := func(m OpMeasured, own map[Metric]Gate, useDefault bool) {
		for _, metric := range metricOrder {
			g, ok := own[metric]
			if !ok && useDefault {
				g, ok = byScope[EachOp][metric]
			}
			if ok {
				lines = append(lines, checkGate(g, m))
			}
		}
	}
	known := map[string]bool{}
	for _, m := range ops {
		known[m.Name] = true
		check(m, byScope[m.Name], true)
	}
	scopes := make([]string, 0, len(byScope))
	for s := range byScope {
		if s != EachOp && s != WholeMix && !known[s] {
			scopes = append(scopes, s)
		}
	}
	sort.Strings(scopes)
	for _, s := range scopes {
		for _, metric := range metricOrder {
			if g, ok := byScope[s][metric]; ok {
				lines = append(lines, Line{Op: s, Name: string(metric), Budget: gateBudget(g), Measured: "not run"})
			}
		}
	}
	check(all, byScope[WholeMix], false)
	return lines
}

func gateBudget(g Gate) string {
	if g.Metric == MetricErrors {
		if g.MaxErrorRate == NoErrors {
			return "0 (none)"
		}
		return "≤ " + fmtPct(g.MaxErrorRate)
	}
	return "≤ " + fmtDur(g.Limit)
}

func checkGate(g Gate, m OpMeasured) Line {
	l := Line{Op: m.Name, Name: string(g.Metric), Budget: gateBudget(g)}
	if g.Metric == MetricErrors {
		l.Measured, l.OK = fmtPct(m.ErrorRate), m.ErrorRate <= g.MaxErrorRate
		if g.MaxErrorRate == NoErrors {
			l.OK = m.ErrorRate == 0
		}
		return l
	}
	if m.Completed == 0 {
		l.Measured = "nothing completed"
		return l
	}
	got := m.latency(g.Metric)
	l.Measured, l.OK = fmtDur(got), got <= g.Limit
	return l
}
