package nemesis

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/harness/fault"
)

// Applied is what happened to one step.
type Applied struct {
	Step   int           `json:"step"`
	Kind   string        `json:"kind"`
	Family fault.Family  `json:"family"`
	Fault  string        `json:"fault"`
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"`
	Lag    time.Duration `json:"lag"`
	Error  string        `json:"error,omitempty"`
}

// Hooks let a caller act around the steps Execute applies. Each hook runs
// on the step's own goroutine.
type Hooks struct {
	// Injecting, if set, is called just before a step's fault is
	// injected (a profiler starts a CPU profile of the window here).
	Injecting func(ctx context.Context, i int, st Step)
	// InstantDone, if set, is called when an instant step has run; its
	// Error is empty when it succeeded (a read-back after a restart starts
	// here).
	InstantDone func(i int, a Applied)
}

// StepTimeout bounds one fault's application or removal.
const StepTimeout = 2 * time.Minute

// Execute applies steps to s at their offsets from start and, for window
// faults, removes them at their ends; it returns when every step is done,
// with what happened to each. Every step has its own timeline, so a slow
// step (a worker cycle against a frozen service) never delays the others;
// steps of one exclusion group (fault.Exclusive) are serialised. When ctx
// ends, steps not yet applied are skipped (their Applied has no Kind) and
// window faults in effect are removed at once.
func Execute(ctx context.Context, s fault.Stack, steps []Step, start time.Time, log *slog.Logger, h Hooks) []Applied {
	if log == nil {
		log = slog.Default()
	}
	applied := make([]Applied, len(steps))
	locks := map[string]*sync.Mutex{}
	for _, st := range steps {
		if g := fault.Exclusive(st.Fault); g != "" && locks[g] == nil {
			locks[g] = &sync.Mutex{}
		}
	}
	var wg sync.WaitGroup
	for i, st := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step(ctx, s, i, st, start, &applied[i], locks[fault.Exclusive(st.Fault)], log, h)
		}()
	}
	wg.Wait()
	return applied
}

func step(ctx context.Context, s fault.Stack, i int, st Step, start time.Time, a *Applied, lock *sync.Mutex, log *slog.Logger, h Hooks) {
	if !SleepUntil(ctx, start.Add(st.At.D())) {
		return
	}
	if lock != nil {
		lock.Lock()
		defer lock.Unlock()
	}
	now := time.Since(start)
	*a = Applied{Step: i, Kind: st.Fault.Kind(), Family: st.Fault.Family(), Fault: st.Fault.String(), Start: now, Lag: now - st.At.D()}
	log.Info("nemesis: inject", "step", i, "fault", st.Fault.String(), "at", now.Round(time.Millisecond))
	if h.Injecting != nil {
		h.Injecting(ctx, i, st)
	}
	sctx, cancel := context.WithTimeout(ctx, StepTimeout)
	act, err := fault.Inject(sctx, s, st.Fault)
	cancel()
	if err != nil {
		a.Error = err.Error()
		log.Warn("nemesis: inject failed", "step", i, "fault", st.Fault.String(), "err", err)
	}
	if fault.IsInstant(st.Fault) {
		a.End = time.Since(start)
		if h.InstantDone != nil {
			h.InstantDone(i, *a)
		}
		return
	}
	if act != nil {
		SleepUntil(ctx, start.Add(st.End())) // on cancellation, remove at once
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StepTimeout)
		if err := act.Remove(rctx); err != nil {
			a.Error = strings.TrimPrefix(a.Error+"; ", "; ") + "remove: " + err.Error()
			log.Warn("nemesis: remove failed", "step", i, "fault", st.Fault.String(), "err", err)
		}
		cancel()
	}
	a.End = time.Since(start)
	log.Info("nemesis: removed", "step", i, "fault", st.Fault.String(), "at", a.End.Round(time.Millisecond))
}

// SleepUntil waits until t or until ctx ends, and reports whether ctx is
// still live.
func SleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
