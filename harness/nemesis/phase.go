package nemesis

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/load/hist"
)

// Op is one recorded operation as the phase budgets see it; a service's
// adapter maps its history onto it.
type Op struct {
	// Kind is the operation's name ("search", "put").
	Kind string `json:"kind"`
	// Call and Return are when it was called and answered, in nanoseconds
	// on the clock of the runStart given to Judge (an unanswered operation
	// returns when the history ends).
	Call   int64 `json:"call"`
	Return int64 `json:"return"`
	// OK: the operation succeeded.
	OK bool `json:"ok"`
	// Code is a failure's stable error code; "" when the answer had none
	// (a timeout, a transport error, no answer).
	Code string `json:"code,omitempty"`
	// Expected marks a failure that concurrent traffic always produces (a
	// read of what another client just deleted): never counted as an
	// error by a budget.
	Expected bool `json:"expected,omitempty"`
	// Class is the adapter's label of the operation's target, selected by
	// Budget.Class (tierd's: "hot" for collections its traffic never
	// demotes).
	Class string `json:"class,omitempty"`
	// Subject names what the operation acted on (a collection, a key), for
	// the reports.
	Subject string `json:"subject,omitempty"`
}

// Phase names. A fault phase is "fault:" followed by a family; it holds
// every operation in flight at some moment while a fault of the family was
// in effect. The others hold the operations no fault touched, by when
// they were called.
const (
	// PhaseSteady: no fault has started yet.
	PhaseSteady = "steady"
	// PhaseBetween: between faults, none in effect.
	PhaseBetween = "between"
	// PhaseRecovery: after the last fault ended.
	PhaseRecovery = "recovery"
	// PhaseAnyFault matches every fault phase in a Budget.
	PhaseAnyFault = "fault:*"
)

// FaultPhase is the phase of operations called while a fault of the family
// is in effect.
func FaultPhase(f fault.Family) string { return "fault:" + string(f) }

// Budget is a gate on the operations of one phase, kept as data in a row.
// Zero fields are not checked.
type Budget struct {
	// Phase is PhaseSteady, PhaseBetween, PhaseRecovery, a FaultPhase or
	// PhaseAnyFault.
	Phase string `json:"phase"`
	// Ops are the operation kinds judged (Op.Kind, e.g. "search"); empty
	// means all.
	Ops []string `json:"ops,omitempty"`
	// Class, when set, judges only the operations of that class (Op.Class;
	// tierd's "hot": the collections the traffic never demotes, whose path
	// never needs S3).
	Class string `json:"class,omitempty"`
	// P95 is the largest allowed 95th percentile of latency.
	P95 fault.Duration `json:"p95,omitempty"`
	// Max is the largest allowed latency of any one operation: the gate
	// for operations that must never wait (a percentile lets a few slow
	// ones through).
	Max fault.Duration `json:"max,omitempty"`
	// MaxErrorRate is the largest allowed share of errors: unknown
	// outcomes and failures that are not Expected. Use a negative value to
	// require no error at all.
	MaxErrorRate float64 `json:"max_error_rate,omitempty"`
	// AllowedCodes, when set, are the only error codes allowed (besides
	// the always-expected ones); "unknown" stands for answers without a
	// code (timeouts, transport errors).
	AllowedCodes []string `json:"allowed_codes,omitempty"`
	// Grace, for the recovery phase, leaves out operations called within
	// this long of the last fault's removal: they may join work that began
	// under the fault (a promotion whose S3 attempt started while S3 was
	// down) and share its failure. Zero judges every recovery operation.
	Grace fault.Duration `json:"grace,omitempty"`
	// MinErrors requires at least this many errors among the judged
	// operations of the phase: the fault had an effect (a fault the
	// service never noticed would let every other gate pass vacuously).
	MinErrors int `json:"min_errors,omitempty"`
	// FirstOKWithin bounds, for a fault phase, the time from each fault's
	// removal to the first ok operation of the judged kinds.
	FirstOKWithin fault.Duration `json:"first_ok_within,omitempty"`
}

// PhaseReport is the statistics of one phase and its budget verdicts.
type PhaseReport struct {
	Phase  string         `json:"phase"`
	Ops    int            `json:"ops"`
	OK     int            `json:"ok"`
	Errors int            `json:"errors"`
	P50    time.Duration  `json:"p50"`
	P95    time.Duration  `json:"p95"`
	P99    time.Duration  `json:"p99"`
	Codes  map[string]int `json:"codes,omitempty"`
	Kinds  []KindStats    `json:"kinds"`
	Lines  []BudgetLine   `json:"budget,omitempty"`
	Failed []string       `json:"failed,omitempty"`
}

// KindStats are one operation kind's figures in a phase.
type KindStats struct {
	Kind   string        `json:"kind"`
	Ops    int           `json:"ops"`
	Errors int           `json:"errors"`
	P95    time.Duration `json:"p95"`
}

// BudgetLine is one checked gate.
type BudgetLine struct {
	Gate     string `json:"gate"`
	Budget   string `json:"budget"`
	Measured string `json:"measured"`
	OK       bool   `json:"ok"`
}

// isError says whether an operation counts against an error budget, and
// its code for the report ("unknown" for answers without one).
func isError(op Op) (bool, string) {
	if op.OK {
		return false, ""
	}
	code := op.Code
	if code == "" {
		code = "unknown"
	}
	return !op.Expected, code
}

// Judge splits the operations called during a run of the given length
// into phases by the applied steps (steady before the first fault, a fault
// phase per family in effect, between faults, recovery after the last),
// and checks the budgets. runStart is the operations' clock at the run's
// time zero; operations called before it or after the run's length (set-up
// and final reads) are left out.
func Judge(ops []Op, applied []Applied, runStart int64, length time.Duration, budgets []Budget) []PhaseReport {
	return phaseReports(ops, applied, runStart, int64(length), budgets)
}

func phaseReports(ops []Op, applied []Applied, runStart int64, length int64, budgets []Budget) []PhaseReport {
	type win struct {
		fam        fault.Family
		start, end int64
	}
	var wins []win
	first, last := length, int64(0)
	for _, a := range applied {
		if a.Kind == "" {
			continue
		}
		w := win{a.Family, int64(a.Start), int64(max(a.End, a.Start+time.Millisecond))}
		wins = append(wins, w)
		first, last = min(first, w.start), max(last, w.end)
	}
	if len(wins) == 0 {
		first, last = length, length
	}
	// An operation is in the phase of every fault in effect at some
	// moment between its call and its return (one in flight when a fault
	// begins meets it); an operation no fault touched is in the phase its
	// call falls in.
	phaseOf := func(call, ret int64) []string {
		var out []string
		for _, w := range wins {
			if call < w.end && ret >= w.start {
				out = append(out, FaultPhase(w.fam))
			}
		}
		if len(out) > 0 {
			slices.Sort(out)
			return slices.Compact(out)
		}
		switch {
		case call < first:
			return []string{PhaseSteady}
		case call >= last:
			return []string{PhaseRecovery}
		}
		return []string{PhaseBetween}
	}
	byPhase := map[string][]Op{}
	for _, op := range ops {
		t := op.Call - runStart
		if t < 0 || t > length {
			continue // set-up, settle and final reads
		}
		for _, p := range phaseOf(t, op.Return-runStart) {
			byPhase[p] = append(byPhase[p], op)
		}
	}
	var reports []PhaseReport
	names := make([]string, 0, len(byPhase))
	for p := range byPhase {
		names = append(names, p)
	}
	sort.Slice(names, func(i, j int) bool {
		return phaseOrder(names[i]) < phaseOrder(names[j]) || phaseOrder(names[i]) == phaseOrder(names[j]) && names[i] < names[j]
	})
	for _, p := range names {
		rep := summarize(p, byPhase[p])
		for _, b := range budgets {
			if b.Phase != p && !(b.Phase == PhaseAnyFault && strings.HasPrefix(p, "fault:")) {
				continue
			}
			judged := byPhase[p]
			if b.Grace > 0 && p == PhaseRecovery {
				judged = slices.DeleteFunc(slices.Clone(judged), func(op Op) bool {
					return op.Call-runStart < last+int64(b.Grace)
				})
			}
			judge(&rep, b, judged)
			if b.FirstOKWithin > 0 && strings.HasPrefix(p, "fault:") {
				for _, w := range wins {
					if FaultPhase(w.fam) != p {
						continue
					}
					firstOK(&rep, b, ops, runStart, w.end, length)
				}
			}
		}
		reports = append(reports, rep)
	}
	return reports
}

func phaseOrder(p string) int {
	switch {
	case p == PhaseSteady:
		return 0
	case strings.HasPrefix(p, "fault:"):
		return 1
	case p == PhaseBetween:
		return 2
	}
	return 3
}

func summarize(phase string, ops []Op) PhaseReport {
	rep := PhaseReport{Phase: phase, Codes: map[string]int{}}
	all := hist.New()
	kinds := map[string]*hist.Histogram{}
	kstats := map[string]*KindStats{}
	for _, op := range ops {
		d := time.Duration(op.Return - op.Call)
		all.Record(d)
		if kinds[op.Kind] == nil {
			kinds[op.Kind] = hist.New()
			kstats[op.Kind] = &KindStats{Kind: op.Kind}
		}
		kinds[op.Kind].Record(d)
		ks := kstats[op.Kind]
		ks.Ops++
		rep.Ops++
		if op.OK {
			rep.OK++
		}
		if bad, code := isError(op); code != "" {
			rep.Codes[code]++
			if bad {
				rep.Errors++
				ks.Errors++
			}
		}
	}
	rep.P50, rep.P95, rep.P99 = all.Quantile(50), all.Quantile(95), all.Quantile(99)
	for k, ks := range kstats {
		ks.P95 = kinds[k].Quantile(95)
		rep.Kinds = append(rep.Kinds, *ks)
	}
	sort.Slice(rep.Kinds, func(i, j int) bool { return rep.Kinds[i].Kind < rep.Kinds[j].Kind })
	return rep
}

func selectOps(b Budget, ops []Op) []Op {
	var out []Op
	for _, op := range ops {
		if len(b.Ops) > 0 && !slices.Contains(b.Ops, op.Kind) {
			continue
		}
		if b.Class != "" && op.Class != b.Class {
			continue
		}
		out = append(out, op)
	}
	return out
}

func scope(b Budget) string {
	var parts []string
	if len(b.Ops) > 0 {
		var ks []string
		for _, k := range b.Ops {
			ks = append(ks, k)
		}
		parts = append(parts, strings.Join(ks, "+"))
	} else {
		parts = append(parts, "all")
	}
	if b.Class != "" {
		parts = append(parts, b.Class)
	}
	return strings.Join(parts, " ")
}

func judge(rep *PhaseReport, b Budget, ops []Op) {
	sel := selectOps(b, ops)
	sc := scope(b)
	add := func(gate, budget, measured string, ok bool) {
		rep.Lines = append(rep.Lines, BudgetLine{Gate: sc + " " + gate, Budget: budget, Measured: measured, OK: ok})
		if !ok {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s %s: %s, budget %s", sc, gate, measured, budget))
		}
	}
	if len(sel) == 0 {
		return
	}
	if b.P95 > 0 {
		h := hist.New()
		for _, op := range sel {
			h.Record(time.Duration(op.Return - op.Call))
		}
		p95 := h.Quantile(95)
		add("p95", "≤ "+b.P95.D().String(), fmt.Sprintf("%s (%d ops)", p95.Round(time.Microsecond), len(sel)), p95 <= b.P95.D())
	}
	if b.Max > 0 {
		slowest := sel[0]
		for _, op := range sel[1:] {
			if op.Return-op.Call > slowest.Return-slowest.Call {
				slowest = op
			}
		}
		took := time.Duration(slowest.Return - slowest.Call)
		add("max", "≤ "+b.Max.D().String(), fmt.Sprintf("%s (%s %s, %d ops)", took.Round(time.Microsecond), slowest.Kind, slowest.Subject, len(sel)), took <= b.Max.D())
	}
	if b.MinErrors > 0 {
		var errs int
		for _, op := range sel {
			if bad, _ := isError(op); bad {
				errs++
			}
		}
		add("errors", fmt.Sprintf("≥ %d", b.MinErrors), fmt.Sprintf("%d of %d", errs, len(sel)), errs >= b.MinErrors)
	}
	if b.MaxErrorRate != 0 || len(b.AllowedCodes) > 0 {
		var errs int
		codes := map[string]int{}
		for _, op := range sel {
			if bad, code := isError(op); bad {
				errs++
				codes[code]++
			}
		}
		if b.MaxErrorRate != 0 {
			limit := max(b.MaxErrorRate, 0)
			rate := float64(errs) / float64(len(sel))
			add("error rate", fmt.Sprintf("≤ %.2f%%", 100*limit), fmt.Sprintf("%.2f%% (%d of %d)", 100*rate, errs, len(sel)), rate <= limit)
		}
		if len(b.AllowedCodes) > 0 {
			var bad []string
			for c, n := range codes {
				if !slices.Contains(b.AllowedCodes, c) {
					bad = append(bad, fmt.Sprintf("%s×%d", c, n))
				}
			}
			slices.Sort(bad)
			add("codes", strings.Join(b.AllowedCodes, ","), "unexpected: "+strings.Join(bad, ", "), len(bad) == 0)
		}
	}
}

// firstOK checks that after a fault window ending at end (relative) an ok
// operation of the budget's kinds returns within the bound (or the run
// ended first).
func firstOK(rep *PhaseReport, b Budget, ops []Op, runStart, end, length int64) {
	bound := int64(b.FirstOKWithin)
	if end+bound > length {
		return // the traffic stopped before the bound: nothing to judge
	}
	first := int64(-1)
	for _, op := range selectOps(b, ops) {
		t := op.Return - runStart
		if op.OK && op.Call-runStart >= end && (first < 0 || t < first) {
			first = t
		}
	}
	gate := fmt.Sprintf("%s first ok after the fault ending at %s", scope(b), time.Duration(end).Round(time.Millisecond))
	if first < 0 {
		rep.Lines = append(rep.Lines, BudgetLine{Gate: gate, Budget: "≤ " + b.FirstOKWithin.D().String(), Measured: "never", OK: false})
		rep.Failed = append(rep.Failed, gate+": never")
		return
	}
	d := time.Duration(first - end)
	ok := d <= b.FirstOKWithin.D()
	rep.Lines = append(rep.Lines, BudgetLine{Gate: gate, Budget: "≤ " + b.FirstOKWithin.D().String(), Measured: d.Round(time.Millisecond).String(), OK: ok})
	if !ok {
		rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %s, budget %s", gate, d.Round(time.Millisecond), b.FirstOKWithin.D()))
	}
}
