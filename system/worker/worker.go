// Package worker runs tierd's background maintenance cycle on a timer and
// makes it controllable: pause, resume, run one cycle now, and observe the
// state and the last cycle's report.
package worker

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
)

// CycleFunc runs one cycle, filling in the report.
type CycleFunc func(ctx context.Context, cyc *api.WorkerCycle)

// Worker schedules cycles. Only one cycle runs at a time.
type Worker struct {
	interval time.Duration
	cycle    CycleFunc
	log      *slog.Logger
	now      func() time.Time

	runMu sync.Mutex // held while a cycle runs

	mu          sync.Mutex
	paused      bool
	cycles      int64
	errorsTotal int64
	last        *api.WorkerCycle

	stop context.CancelFunc
	done chan struct{}
}

// New returns a stopped worker; Start starts its timer.
func New(interval time.Duration, paused bool, cycle CycleFunc, log *slog.Logger) *Worker {
	return &Worker{interval: interval, paused: paused, cycle: cycle, log: log, now: time.Now}
}

// Start runs cycles every interval until ctx ends or Stop is called.
func (w *Worker) Start(ctx context.Context) {
	ctx, w.stop = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			w.mu.Lock()
			paused := w.paused
			w.mu.Unlock()
			if !paused {
				w.run(ctx, "timer")
			}
		}
	}()
}

// Stop stops the timer and waits for a running cycle.
func (w *Worker) Stop() {
	if w.stop == nil {
		return
	}
	w.stop()
	<-w.done
}

// Pause stops timer-driven cycles (a running cycle finishes).
func (w *Worker) Pause() api.WorkerState {
	w.mu.Lock()
	w.paused = true
	w.mu.Unlock()
	return w.State()
}

// Resume restarts timer-driven cycles.
func (w *Worker) Resume() api.WorkerState {
	w.mu.Lock()
	w.paused = false
	w.mu.Unlock()
	return w.State()
}

// RunOnce runs one cycle now (also while paused), after any running one,
// and returns the state with this cycle as the last.
func (w *Worker) RunOnce(ctx context.Context) api.WorkerState {
	w.run(ctx, "run_once")
	return w.State()
}

func (w *Worker) run(ctx context.Context, trigger string) {
	w.runMu.Lock()
	defer w.runMu.Unlock()
	cyc := &api.WorkerCycle{Started: w.now().UTC(), Trigger: trigger}
	w.cycle(ctx, cyc)
	cyc.Finished = w.now().UTC()
	w.mu.Lock()
	w.cycles++
	w.errorsTotal += int64(len(cyc.Errors))
	w.last = cyc
	w.mu.Unlock()
	if len(cyc.DemotedWarm)+len(cyc.DemotedCold)+len(cyc.Checkpointed)+len(cyc.OrphansDeleted)+len(cyc.Errors) > 0 || cyc.WALSegmentsDropped > 0 {
		w.log.Info("worker cycle", "trigger", trigger, "demoted_warm", cyc.DemotedWarm, "demoted_cold", cyc.DemotedCold,
			"checkpointed", cyc.Checkpointed, "wal_segments_dropped", cyc.WALSegmentsDropped,
			"orphans_deleted", len(cyc.OrphansDeleted), "errors", len(cyc.Errors), "took", cyc.Finished.Sub(cyc.Started))
	}
}

// State returns the worker's state and last cycle.
func (w *Worker) State() api.WorkerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := api.WorkerState{State: "running", Interval: w.interval.String(), Cycles: w.cycles, ErrorsTotal: w.errorsTotal}
	if w.paused {
		st.State = "paused"
	}
	if w.last != nil {
		l := *w.last
		l.DemotedWarm, l.DemotedCold = slices.Clone(l.DemotedWarm), slices.Clone(l.DemotedCold)
		l.Checkpointed, l.OrphansDeleted, l.Errors = slices.Clone(l.Checkpointed), slices.Clone(l.OrphansDeleted), slices.Clone(l.Errors)
		st.Last = &l
	}
	return st
}
