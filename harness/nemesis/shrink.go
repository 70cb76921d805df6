package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
)

// ShrinkConfig drives Shrink.
type ShrinkConfig[T Traffic] struct {
	// Budget bounds the time spent shrinking; the smallest failing
	// schedule found so far is returned when it runs out.
	Budget time.Duration
	// Runs is how many times a candidate is run before it is judged to
	// pass (default 3); one failure keeps it.
	Runs int
	// Try runs one candidate and reports whether it failed the way the
	// original did.
	Try func(ctx context.Context, sch Schedule[T]) (failed bool, err error)
	// Reduce are the traffic's own reductions, tried in order after the
	// steps, windows and length are as small as they get (tierd's: a lower
	// rate, then fewer collections). Each returns a smaller traffic and
	// whether it could make one.
	Reduce []func(T) (T, bool)
	// SeenAt, when set, is when the original run first saw the failure
	// (Result.FirstSeen): the shrinker first tries the schedule cut there
	// (steps after it dropped, the run ended a recovery phase later).
	SeenAt time.Duration
	// Logger receives progress (default slog.Default()).
	Logger *slog.Logger
}

// ShrinkReport tells how shrinking went.
type ShrinkReport struct {
	StepsBefore, StepsAfter   int
	LengthBefore, LengthAfter time.Duration
	Candidates, Runs          int
	Elapsed                   time.Duration
	OutOfTime                 bool
}

// String summarises the report on one line.
func (r ShrinkReport) String() string {
	s := fmt.Sprintf("shrunk %d → %d steps, %s → %s, %d candidates in %d runs, %s",
		r.StepsBefore, r.StepsAfter, r.LengthBefore, r.LengthAfter, r.Candidates, r.Runs, r.Elapsed.Round(time.Second))
	if r.OutOfTime {
		s += " (time budget used up)"
	}
	return s
}

// Shrink reduces a failing schedule while it keeps failing: delta
// debugging over the steps (drop halves, then smaller chunks down to single
// steps), then shorter fault windows, then a shorter run, then the
// traffic's reductions (cfg.Reduce). A candidate is kept when it fails in
// at least one of cfg.Runs runs.
func Shrink[T Traffic](ctx context.Context, sch Schedule[T], cfg ShrinkConfig[T]) (Schedule[T], ShrinkReport, error) {
	if cfg.Runs <= 0 {
		cfg.Runs = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	start := time.Now()
	rep := ShrinkReport{StepsBefore: len(sch.Steps), LengthBefore: sch.Length()}
	deadline := start.Add(cfg.Budget)
	best := sch
	try := func(c Schedule[T]) (bool, error) {
		if cfg.Budget > 0 && time.Now().After(deadline) {
			rep.OutOfTime = true
			return false, nil
		}
		rep.Candidates++
		for i := 0; i < cfg.Runs; i++ {
			if cfg.Budget > 0 && time.Now().After(deadline) {
				rep.OutOfTime = true
				return false, nil
			}
			rep.Runs++
			failed, err := cfg.Try(ctx, c)
			if err != nil {
				return false, err
			}
			if failed {
				cfg.Logger.Info("nemesis shrink: candidate fails", "steps", len(c.Steps), "length", c.Length(), "run", i+1)
				return true, nil
			}
		}
		cfg.Logger.Info("nemesis shrink: candidate passes", "steps", len(c.Steps), "length", c.Length())
		return false, nil
	}

	// 0. Cut where the failure was seen.
	if cfg.SeenAt > 0 && cfg.SeenAt < best.Length() {
		var kept []Step
		for _, st := range best.Steps {
			if st.At.D() < cfg.SeenAt {
				kept = append(kept, st)
			}
		}
		cand := cutAt(best, kept)
		if cand.Length() < best.Length() {
			ok, err := try(cand)
			if err != nil {
				return best, rep, err
			}
			if ok {
				best = cand
			}
		}
	}
	// 1. Delta debugging over the steps.
	n := 2
	for len(best.Steps) >= 1 && !rep.OutOfTime {
		chunks := split(len(best.Steps), n)
		reduced := false
		for _, ch := range chunks {
			cand := withSteps(best, removeRange(best.Steps, ch[0], ch[1]))
			ok, err := try(cand)
			if err != nil {
				return best, rep, err
			}
			if ok {
				best, reduced = cand, true
				n = max(n-1, 2)
				break
			}
		}
		if !reduced {
			if n >= len(best.Steps) {
				break
			}
			n = min(2*n, len(best.Steps))
		}
	}
	// shrinkWhile applies step to the best schedule for as long as the
	// result still fails; step reports false when it can shrink no more.
	shrinkWhile := func(step func(Schedule[T]) (Schedule[T], bool)) error {
		for !rep.OutOfTime {
			cand, more := step(best)
			if !more {
				return nil
			}
			ok, err := try(cand)
			if err != nil || !ok {
				return err
			}
			best = cand
		}
		return nil
	}
	// 2. Shorter windows.
	for i := range best.Steps {
		err := shrinkWhile(func(b Schedule[T]) (Schedule[T], bool) {
			if fault.IsInstant(b.Steps[i].Fault) || b.Steps[i].For.D() < 400*time.Millisecond {
				return b, false
			}
			cand := withSteps(b, slices.Clone(b.Steps))
			cand.Steps[i].For = fault.Duration((cand.Steps[i].For.D() / 2).Round(time.Millisecond))
			return cand, true
		})
		if err != nil {
			return best, rep, err
		}
	}
	// 3. A shorter run: end after the last step plus the recovery phase.
	if !rep.OutOfTime {
		if cand := cutAt(best, best.Steps); cand.Length() < best.Length() {
			if ok, err := try(cand); err != nil {
				return best, rep, err
			} else if ok {
				best = cand
			}
		}
	}
	// 4. The traffic's own reductions.
	for _, reduce := range cfg.Reduce {
		if err := shrinkWhile(func(b Schedule[T]) (Schedule[T], bool) {
			tr, more := reduce(b.Traffic)
			b.Traffic = tr
			return b, more
		}); err != nil {
			return best, rep, err
		}
	}
	rep.StepsAfter, rep.LengthAfter, rep.Elapsed = len(best.Steps), best.Length(), time.Since(start)
	return best, rep, nil
}

// split cuts [0, n) into k nearly equal ranges [from, to).
func split(n, k int) [][2]int {
	k = min(k, n)
	var out [][2]int
	for i := range k {
		out = append(out, [2]int{i * n / k, (i + 1) * n / k})
	}
	return out
}

func removeRange(steps []Step, from, to int) []Step {
	out := make([]Step, 0, len(steps)-(to-from))
	out = append(out, steps[:from]...)
	return append(out, steps[to:]...)
}

func withSteps[T Traffic](s Schedule[T], steps []Step) Schedule[T] {
	s.Steps = steps
	return s
}

// cutAt keeps steps and ends the run one recovery phase (at least a second)
// after the last of them ends.
func cutAt[T Traffic](s Schedule[T], steps []Step) Schedule[T] {
	var last time.Duration
	for _, st := range steps {
		last = max(last, st.End())
	}
	rec := max(s.Profile.Recovery.D(), time.Second)
	length := min(last+rec, s.Length())
	s.Steps = steps
	s.Profile.Length = fault.Duration(length.Round(time.Millisecond))
	s.Profile.Recovery = fault.Duration(min(s.Profile.Recovery.D(), length-last))
	s.Profile.Quiet = fault.Duration(min(s.Profile.Quiet.D(), length-s.Profile.Recovery.D()))
	return s
}
