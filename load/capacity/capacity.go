// Package capacity searches for the highest request rate a target holds
// within its budgets: it runs short load stages at rising rates until a
// stage fails a budget gate, then bisects between the highest rate that
// held and the lowest that failed.
//
// The search never runs load itself: a StageFunc does (cmd/tierload runs
// one load/runner run per stage), so the algorithm is tested against fake
// targets without any clock.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// ErrPlan is returned (wrapped) for an invalid Plan.
var ErrPlan = errors.New("capacity: invalid plan")

// Plan configures the search.
//
// Phase 1 (raise): run Start, then multiply the rate by Factor after each
// stage that held, never going above Max; a held stage at Max ends the
// search (the target holds at least Max). Phase 2 (bisect): after the first
// failed stage, run the midpoint of the highest held and lowest failed
// rates, moving whichever bound it falls on, until the gap is at most
// Resolution of the held rate. MaxStages bounds the whole search. When
// Start itself fails, nothing held and the search stops.
type Plan struct {
	// Start is the first stage's rate (req/s, > 0).
	Start float64
	// Factor multiplies the rate after a held stage (> 1; default 2).
	Factor float64
	// Max is the highest rate tried (≥ Start).
	Max float64
	// Resolution ends the bisection once (failed - held) ≤ Resolution ×
	// held (in (0, 1); default 0.1).
	Resolution float64
	// MaxStages bounds the number of stages (default 20).
	MaxStages int
}

func (p Plan) withDefaults() Plan {
	if p.Factor == 0 {
		p.Factor = 2
	}
	if p.Resolution == 0 {
		p.Resolution = 0.1
	}
	if p.MaxStages == 0 {
		p.MaxStages = 20
	}
	return p
}

// Validate reports a plan the search cannot run.
func (p Plan) Validate() error {
	p = p.withDefaults()
	switch {
	case !(p.Start > 0) || math.IsInf(p.Start, 0):
		return fmt.Errorf("%w: start rate %v must be positive", ErrPlan, p.Start)
	case !(p.Factor > 1) || math.IsInf(p.Factor, 0):
		return fmt.Errorf("%w: factor %v must be above 1", ErrPlan, p.Factor)
	case !(p.Max >= p.Start) || math.IsInf(p.Max, 0):
		return fmt.Errorf("%w: max rate %v must be at least the start rate %v", ErrPlan, p.Max, p.Start)
	case !(p.Resolution > 0 && p.Resolution < 1):
		return fmt.Errorf("%w: resolution %v must be within (0, 1)", ErrPlan, p.Resolution)
	case p.MaxStages < 1:
		return fmt.Errorf("%w: max stages %d must be at least 1", ErrPlan, p.MaxStages)
	}
	return nil
}

// Stage is one stage's outcome.
type Stage struct {
	// Index counts stages from 0; Rate is the target rate.
	Index int     `json:"index"`
	Rate  float64 `json:"rate"`
	// Held is true when every budget gate held.
	Held bool `json:"held"`
	// Failed names the gates that failed ("search p95", "(run) error rate").
	Failed []string `json:"failed,omitempty"`
	// AchievedRate and ErrorRate are the whole mix's.
	AchievedRate float64 `json:"achieved_rate"`
	ErrorRate    float64 `json:"error_rate"`
	// P95MS is each operation's p95 latency in milliseconds ("all": the
	// whole mix).
	P95MS map[string]float64 `json:"p95_ms"`
	// Dir is where the stage's own report was written, if anywhere.
	Dir string `json:"dir,omitempty"`
}

// StageFunc runs stage i at rate and judges it against the budgets.
type StageFunc func(ctx context.Context, i int, rate float64) (Stage, error)

// Result is the search's outcome.
type Result struct {
	Plan   Plan    `json:"plan"`
	Stages []Stage `json:"stages"`
	// MaxHeld is the highest rate whose stage held every budget (0: none,
	// the start rate already failed).
	MaxHeld float64 `json:"max_held"`
	// MinFailed is the lowest rate whose stage failed (0: none failed).
	MinFailed float64 `json:"min_failed"`
	// ReachedMax is true when the plan's Max held: the target's capacity is
	// at least Max, not measured.
	ReachedMax bool `json:"reached_max"`
	// StageDuration is each stage's length, for the report.
	StageDuration time.Duration `json:"stage_duration_ns,omitempty"`
}

// Find runs the search of plan with run. A stage error ends the search
// and is returned with the stages so far.
func Find(ctx context.Context, plan Plan, run StageFunc) (*Result, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	plan = plan.withDefaults()
	res := &Result{Plan: plan}
	stage := func(rate float64) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		i := len(res.Stages)
		st, err := run(ctx, i, rate)
		if err != nil {
			return false, fmt.Errorf("capacity: stage %d at %.4g req/s: %w", i, rate, err)
		}
		st.Index, st.Rate = i, rate
		res.Stages = append(res.Stages, st)
		if st.Held {
			res.MaxHeld = math.Max(res.MaxHeld, rate)
		} else if res.MinFailed == 0 || rate < res.MinFailed {
			res.MinFailed = rate
		}
		return st.Held, nil
	}
	budgetLeft := func() bool { return len(res.Stages) < plan.MaxStages }

	// Raise.
	for rate := plan.Start; budgetLeft(); rate = math.Min(rate*plan.Factor, plan.Max) {
		held, err := stage(rate)
		if err != nil {
			return res, err
		}
		if !held {
			break
		}
		if rate >= plan.Max {
			res.ReachedMax = true
			return res, nil
		}
	}
	// Bisect.
	for res.MaxHeld > 0 && res.MinFailed > 0 && budgetLeft() &&
		res.MinFailed-res.MaxHeld > plan.Resolution*res.MaxHeld {
		if _, err := stage((res.MaxHeld + res.MinFailed) / 2); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Ops returns the operation names seen in any stage, sorted, with "all"
// last.
func (r *Result) Ops() []string {
	seen := map[string]bool{}
	for _, s := range r.Stages {
		for op := range s.P95MS {
			seen[op] = true
		}
	}
	var ops []string
	for op := range seen {
		if op != "all" {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	if seen["all"] {
		ops = append(ops, "all")
	}
	return ops
}

// ByRate returns the stages ordered by rate (the search's order is not).
func (r *Result) ByRate() []Stage {
	out := append([]Stage(nil), r.Stages...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rate < out[j].Rate })
	return out
}
