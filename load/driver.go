// Package load is an open-loop load driver. Requests start at scheduled
// times (constant rate or Poisson arrivals, with an optional linear ramp-up)
// whether or not earlier requests have finished. Each request's latency is
// measured from its due time, so a stalled target cannot hide its own
// latency by slowing the load (coordinated omission); service time from the
// actual start is recorded beside it. Samples go into HDR histograms per
// operation, so memory stays bounded however long the run.
package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// CodePanic is the error code of a request whose Do func panicked.
const CodePanic = "panic"

// job is one due request handed to a worker.
type job struct {
	seq uint64
	at  time.Duration // due offset from the run start
	op  uint16
}

type driver struct {
	cfg    Config
	start  time.Time
	reqCtx context.Context
	jobs   chan job
	wg     sync.WaitGroup
	shards []*shard

	sent      []atomic.Int64 // per op, written by the scheduler
	missed    []int64        // per op, scheduler only, read after it ends
	completed atomic.Int64
	failed    atomic.Int64
	late      atomic.Int64
	inFlight  atomic.Int64
	peak      atomic.Int64
	workers   int
}

// Run executes the load described by cfg and returns its result. It
// returns an error only for an invalid config; a cancelled ctx ends the run
// early with Result.Interrupted set.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	nShards := 2 * runtime.GOMAXPROCS(0)
	if nShards < 4 {
		nShards = 4
	}
	d := &driver{
		cfg:    cfg,
		jobs:   make(chan job),
		shards: newShards(nShards, len(cfg.Ops)),
		sent:   make([]atomic.Int64, len(cfg.Ops)),
		missed: make([]int64, len(cfg.Ops)),
	}
	return d.run(ctx), nil
}

func (d *driver) run(ctx context.Context) *Result {
	reqCtx, cancelReqs := context.WithCancel(ctx)
	defer cancelReqs()
	d.reqCtx = reqCtx

	col := newCollector(d)
	cpu0, cpuOK := processCPU()
	d.start = time.Now()
	col.begin(d.start)
	colDone := make(chan struct{})
	stopCol := make(chan struct{})
	go func() {
		defer close(colDone)
		col.loop(stopCol)
	}()

	elapsed, interrupted := d.schedule(ctx)
	close(d.jobs)

	// Drain in-flight requests, cancelling them after DrainTimeout.
	waited := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(waited)
	}()
	drain := time.NewTimer(d.cfg.DrainTimeout)
	select {
	case <-waited:
	case <-drain.C:
		d.cfg.Logger.Warn("load: drain timeout, cancelling in-flight requests",
			"in_flight", d.inFlight.Load(), "drain_timeout", d.cfg.DrainTimeout)
		cancelReqs()
		<-waited
	}
	drain.Stop()
	close(stopCol)
	<-colDone
	res := col.finish(elapsed, interrupted)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.DriverCPU = cpu1 - cpu0
	}
	return res
}

// schedule dispatches requests at their due times until the window ends or
// ctx is done. It returns the window's length and whether ctx ended it.
func (d *driver) schedule(ctx context.Context) (time.Duration, bool) {
	cfg := d.cfg
	sch := newSchedule(cfg.Arrival, cfg.Rate, cfg.RampUp, cfg.Seed)
	pick := newPicker(cfg.Ops, cfg.Seed)
	p := newPacer(cfg.Pacing)
	deadline := cfg.Duration + cfg.LateAfter

	var seq uint64
	at := sch.next()
	for at < cfg.Duration {
		op := pick.next()
		now := time.Since(d.start)
		for at > now {
			if !p.sleep(ctx, at-now) {
				return d.interrupted(sch, pick, op, at)
			}
			now = time.Since(d.start)
		}
		if now >= deadline {
			d.countMissed(sch, pick, op)
			return cfg.Duration, false
		}
		if !d.dispatch(ctx, job{seq: seq, at: at, op: op}) {
			return d.interrupted(sch, pick, op, at)
		}
		seq++
		at = sch.next()
	}
	// Wait for the window to end so rates are computed over the full window.
	if now := time.Since(d.start); now < cfg.Duration {
		if !p.sleep(ctx, cfg.Duration-now) {
			return time.Since(d.start), true
		}
	}
	return cfg.Duration, false
}

// interrupted counts requests due before the interruption as missed.
func (d *driver) interrupted(sch *schedule, pick *picker, op uint16, at time.Duration) (time.Duration, bool) {
	now := time.Since(d.start)
	if now > d.cfg.Duration {
		now = d.cfg.Duration
	}
	for at < now {
		d.missed[op]++
		at = sch.next()
		op = pick.next()
	}
	return now, true
}

// countMissed counts the pending request and every later one due in the window.
func (d *driver) countMissed(sch *schedule, pick *picker, op uint16) {
	d.missed[op]++
	for sch.next() < d.cfg.Duration {
		d.missed[pick.next()]++
	}
}

// dispatch hands j to an idle worker, starts a new worker when none is idle
// and the in-flight limit allows, or else waits for a worker.
func (d *driver) dispatch(ctx context.Context, j job) bool {
	select {
	case d.jobs <- j:
	default:
		if d.workers < d.cfg.MaxInFlight {
			d.workers++
			d.wg.Add(1)
			d.sent[j.op].Add(1)
			go d.worker(d.workers, j)
			return true
		}
		select {
		case d.jobs <- j:
		case <-ctx.Done():
			return false
		}
	}
	d.sent[j.op].Add(1)
	return true
}

func (d *driver) worker(id int, j job) {
	defer d.wg.Done()
	sh := d.shards[id%len(d.shards)]
	for {
		d.do(sh, j)
		var ok bool
		if j, ok = <-d.jobs; !ok {
			return
		}
	}
}

func (d *driver) do(sh *shard, j job) {
	n := d.inFlight.Add(1)
	for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
	}
	due := d.start.Add(j.at)
	begin := time.Now()
	err := d.call(j)
	end := time.Now()
	d.inFlight.Add(-1)

	lag := begin.Sub(due)
	late := lag > d.cfg.LateAfter
	code := CodeOf(err)
	if code != "" {
		d.failed.Add(1)
	}
	if late {
		d.late.Add(1)
	}
	sh.record(int(j.op), end.Sub(due), end.Sub(begin), lag, late, code)
	d.completed.Add(1)
}

// call runs the op with its timeout, turning a panic into an error.
func (d *driver) call(j job) (err error) {
	ctx := d.reqCtx
	if d.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = WithCode(CodePanic, fmt.Errorf("load: op %q panicked: %v", d.cfg.Ops[j.op].Name, r))
		}
	}()
	return d.cfg.Ops[j.op].Do(ctx, j.seq)
}

// picker chooses ops by weight from a seeded source.
type picker struct {
	cum []float64
	rng *rand.Rand
}

func newPicker(ops []Op, seed uint64) *picker {
	p := &picker{cum: make([]float64, len(ops)), rng: rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))}
	var sum float64
	for i, op := range ops {
		sum += op.Weight
		p.cum[i] = sum
	}
	for i := range p.cum {
		p.cum[i] /= sum
	}
	return p
}

func (p *picker) next() uint16 {
	if len(p.cum) == 1 {
		return 0
	}
	x := p.rng.Float64()
	i := sort.SearchFloat64s(p.cum, x)
	if i >= len(p.cum) {
		i = len(p.cum) - 1
	}
	return uint16(i)
}
