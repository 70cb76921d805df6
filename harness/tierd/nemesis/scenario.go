package nemesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	core "github.com/tierchaos/tierchaos/harness/nemesis"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/load"
)

// RowTraffic is the nemesis's tierd traffic as the Traffic of a
// declarative scenario row (harness/scenario): Start creates the
// collections on the case's recording client (names of their own per
// start, kept in the case's Collections for the checks), then sends the
// mix at the traffic's rate, open loop, until the row stops it. The
// history is the case's recorder. A zero Seed takes the case's.
type RowTraffic struct {
	Traffic
}

// String describes the traffic.
func (r RowTraffic) String() string {
	api := r.API
	if api == "" {
		api = tierd.APIREST
	}
	return fmt.Sprintf("tierd mix at %.0f req/s over %d collections (%d never demoted), dimension %d, over %s",
		r.Rate, r.Collections, r.HotCollections, r.Dimension, api)
}

// Start sets the collections up and starts the traffic.
func (r RowTraffic) Start(ctx context.Context, c *tierd.Case) (scenario.Load, error) {
	tr := r.Traffic
	if tr.Seed == 0 {
		tr.Seed = c.Seed.Seed
	}
	if err := tr.Validate(); err != nil {
		return nil, err
	}
	t := newTraffic(c.Client, tr, fmt.Sprintf("d%x", time.Now().UnixNano()&0xffffffffff))
	if err := t.setup(ctx); err != nil {
		return nil, err
	}
	c.Collections = slices.Clone(t.names)
	lctx, cancel := context.WithCancel(ctx)
	l := &rowLoad{rec: c.Rec, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// The row stops the traffic; the duration only bounds a row that
		// never does.
		_, l.err = load.Run(lctx, load.Config{
			Ops: t.ops(), Rate: tr.Rate, Duration: 24 * time.Hour, Seed: tr.Seed,
			MaxInFlight: tr.MaxInFlight, Timeout: 30 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	return l, nil
}

// rowLoad is RowTraffic running.
type rowLoad struct {
	rec    *history.Recorder
	cancel context.CancelFunc
	done   chan struct{}
	err    error

	mu      sync.Mutex
	stopped int64 // the recorder's clock when Stop cancelled the traffic; 0 before
}

// Stop cancels the traffic and waits for the driver.
func (l *rowLoad) Stop() {
	l.mu.Lock()
	if l.stopped == 0 {
		l.stopped = l.rec.Now()
	}
	l.mu.Unlock()
	l.cancel()
	<-l.done
}

// Now reads the recorder's clock.
func (l *rowLoad) Now() int64 { return l.rec.Now() }

// Ops are the recorded operations for the budgets; the operations Stop
// cut off (unknown, answered after it) are the traffic's end, not errors.
func (l *rowLoad) Ops() []core.Op {
	l.mu.Lock()
	stopped := l.stopped
	l.mu.Unlock()
	ops := l.rec.Ops()
	out := coreOps(ops)
	for i, op := range ops {
		if stopped > 0 && op.Outcome == history.Unknown && op.Return >= stopped {
			out[i].Expected = true
		}
	}
	return out
}

// RowChecks are the checks of a declarative tierd row: the case's history
// of the collections its traffic made, with what tierd holds at the end
// read back (lost writes, searches against the oracle, tiers with the
// worker's demotions allowed, snapshots). An operation left unknown by a
// kill, restart or power cut of the run took effect by the end of that
// crash or never (boundByCrashes). A tier history too long for
// porcupine's search in time is no verdict, not a failure.
func RowChecks() []scenario.Check[*tierd.Case] {
	return []scenario.Check[*tierd.Case]{{Name: "history", Check: checkRow}}
}

func checkRow(ctx context.Context, c *tierd.Case, e scenario.Execution) error {
	if len(c.Collections) == 0 {
		return errors.New("the row's traffic made no collection")
	}
	final, err := c.Client.ReadFinal(ctx, c.Collections...)
	if err != nil {
		return fmt.Errorf("read the collections back: %w", err)
	}
	var ops []history.Op
	for _, op := range c.Rec.Ops() {
		if slices.Contains(c.Collections, op.Collection) {
			op.Index = len(ops)
			ops = append(ops, op)
		}
	}
	// Unknown operations in flight at a kill took effect by the time the
	// new process served, or never, as in the nemesis run.
	ops = boundByCrashes(ops, crashesOf(e.Applied, e.Start))
	ck, err := check.New(ops, check.Config{ArtifactDir: c.ArtifactDir, AutoDemote: true, TierTimeout: tierTimeout})
	if err != nil {
		return err
	}
	err = ck.All(final)
	var f *check.Failure
	if !errors.As(err, &f) {
		return err
	}
	var found []string
	for _, v := range f.Violations {
		if v.Checker == check.TiersName && strings.HasPrefix(v.Message, "inconclusive") {
			continue
		}
		found = append(found, v.String())
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%d violation(s): %s", len(found), strings.Join(found, "; "))
}
