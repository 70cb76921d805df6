package load

import (
	"time"
)

// collector merges the workers' shards every Tick into the tick, interval
// and run accumulators, and builds the timeline and interval statistics.
type collector struct {
	d                  *driver
	start              time.Time
	tick, ivl, total   []*acc
	tickAll            *acc
	ivlStart, lastTick time.Duration
	lastSent           []int64
	intervals          []Interval
	timeline           []Point
}

func newCollector(d *driver) *collector {
	n := len(d.cfg.Ops)
	c := &collector{d: d, lastSent: make([]int64, n), tickAll: newAcc()}
	for range n {
		c.tick = append(c.tick, newAcc())
		c.ivl = append(c.ivl, newAcc())
		c.total = append(c.total, newAcc())
	}
	return c
}

func (c *collector) begin(start time.Time) { c.start = start }

func (c *collector) loop(stop <-chan struct{}) {
	t := time.NewTicker(c.d.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.collect(time.Since(c.start), false)
		}
	}
}

// collect drains the shards into the tick accumulators, appends a timeline
// point, and closes an interval when one is due (or when final).
func (c *collector) collect(now time.Duration, final bool) {
	d := c.d
	for _, sh := range d.shards {
		sh.drainInto(c.tick)
	}
	c.tickAll.reset()
	for i, a := range c.tick {
		s := d.sent[i].Load()
		a.sent = s - c.lastSent[i]
		c.lastSent[i] = s
		if final {
			a.missed = d.missed[i]
		}
		c.tickAll.merge(a)
		c.ivl[i].merge(a)
		c.total[i].merge(a)
		a.reset()
	}

	ta := c.tickAll
	span := now - c.lastTick
	p := Point{At: now, Sent: ta.sent, Completed: ta.completed, Errors: ta.completed - ta.ok}
	if span > 0 {
		p.Rate = float64(ta.completed) / span.Seconds()
	}
	if ta.completed > 0 {
		s := ta.lat.Summary()
		p.P50, p.P95, p.P99, p.Max = s.P50, s.P95, s.P99, s.Max
	}
	if span > 0 {
		c.timeline = append(c.timeline, p)
	}
	c.lastTick = now

	if d.cfg.OnTick != nil && !final {
		d.cfg.OnTick(Tick{
			Elapsed:   now,
			Duration:  d.cfg.Duration,
			Sent:      sumSent(d),
			Completed: d.completed.Load(),
			Errors:    d.failed.Load(),
			Late:      d.late.Load(),
			InFlight:  d.inFlight.Load(),
			Rate:      p.Rate,
			P95:       p.P95,
		})
	}
	// Ticks jitter; half a tick of slack keeps intervals Interval long
	// instead of occasionally one tick longer.
	if now-c.ivlStart >= d.cfg.Interval-d.cfg.Tick/2 || (final && c.ivlHasData()) {
		c.closeInterval(now)
	}
}

func (c *collector) ivlHasData() bool {
	for _, a := range c.ivl {
		if !a.empty() {
			return true
		}
	}
	return false
}

func (c *collector) closeInterval(now time.Duration) {
	iv := Interval{Index: len(c.intervals), Start: c.ivlStart, End: now, Drain: c.ivlStart >= c.d.cfg.Duration}
	w := now - c.ivlStart
	all := newAcc()
	for i, a := range c.ivl {
		iv.Ops = append(iv.Ops, a.result(c.d.cfg.Ops[i].Name, w, false))
		all.merge(a)
		a.reset()
	}
	iv.Overall = all.result("all", w, false)
	c.intervals = append(c.intervals, iv)
	c.ivlStart = now
	if c.d.cfg.OnInterval != nil {
		c.d.cfg.OnInterval(iv)
	}
}

// finish collects the last samples and builds the Result.
func (c *collector) finish(elapsed time.Duration, interrupted bool) *Result {
	d := c.d
	c.collect(time.Since(c.start), true)
	r := &Result{
		Start:        c.start,
		Duration:     d.cfg.Duration,
		Elapsed:      elapsed,
		Rate:         d.cfg.Rate,
		RampUp:       d.cfg.RampUp,
		Arrival:      d.cfg.Arrival,
		Pacing:       d.cfg.Pacing,
		Seed:         d.cfg.Seed,
		LateAfter:    d.cfg.LateAfter,
		MaxInFlight:  d.cfg.MaxInFlight,
		PeakInFlight: int(d.peak.Load()),
		Interrupted:  interrupted,
		Intervals:    c.intervals,
		Timeline:     c.timeline,
	}
	all := newAcc()
	for i, a := range c.total {
		r.Ops = append(r.Ops, a.result(d.cfg.Ops[i].Name, elapsed, true))
		all.merge(a)
	}
	r.Overall = all.result("all", elapsed, true)
	return r
}

func sumSent(d *driver) int64 {
	var n int64
	for i := range d.sent {
		n += d.sent[i].Load()
	}
	return n
}
