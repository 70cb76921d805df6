// Package progress shows a running load: an mpb progress bar (elapsed and
// total time, current rate, p95, errors) on a terminal, and plain periodic
// lines otherwise or when CI=true, so CI logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/tierchaos/tierchaos/load"
)

// Mode selects the display.
type Mode int

const (
	// Auto picks Bar on a terminal outside CI, else Plain.
	Auto Mode = iota
	// Bar draws an mpb progress bar.
	Bar
	// Plain prints one line per interval.
	Plain
)

// Resolve returns Bar or Plain for m, given the output and the environment
// lookup (os.LookupEnv in production).
func Resolve(m Mode, w io.Writer, lookupEnv func(string) (string, bool)) Mode {
	if m != Auto {
		return m
	}
	if v, ok := lookupEnv("CI"); ok {
		if b, err := strconv.ParseBool(v); err == nil && b {
			return Plain
		}
	}
	if f, ok := w.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return Bar
	}
	return Plain
}

// Reporter receives the driver's ticks and intervals and displays them.
// Plug its OnTick and OnInterval into load.Config.
type Reporter struct {
	w     io.Writer
	label string
	mode  Mode

	mu   sync.Mutex
	last load.Tick
	p    *mpb.Progress
	bar  *mpb.Bar
}

// New returns a Reporter for a run of the given duration writing to w.
func New(w io.Writer, label string, total time.Duration, m Mode) *Reporter {
	r := &Reporter{w: w, label: label, mode: Resolve(m, w, os.LookupEnv)}
	if r.mode == Bar {
		// An explicitly requested bar is drawn even when w is not a terminal.
		r.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(250*time.Millisecond),
			mpb.ContainerOptional(mpb.WithAutoRefresh(), m == Bar))
		r.bar = r.p.New(total.Milliseconds(), mpb.BarStyle(),
			mpb.PrependDecorators(
				decor.Name(label+" "),
				decor.Any(func(decor.Statistics) string {
					r.mu.Lock()
					defer r.mu.Unlock()
					return fmt.Sprintf("%s/%s", r.last.Elapsed.Truncate(time.Second), total)
				}),
			),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				r.mu.Lock()
				defer r.mu.Unlock()
				return Status(r.last)
			})),
		)
	}
	return r
}

// Mode returns the resolved display mode.
func (r *Reporter) Mode() Mode { return r.mode }

// Status renders the live figures of a tick.
func Status(t load.Tick) string {
	return fmt.Sprintf("rate %.0f/s  p95 %s  errors %d  late %d  in-flight %d",
		t.Rate, t.P95.Round(10*time.Microsecond), t.Errors, t.Late, t.InFlight)
}

// OnTick updates the bar (Bar mode).
func (r *Reporter) OnTick(t load.Tick) {
	r.mu.Lock()
	r.last = t
	r.mu.Unlock()
	if r.bar != nil {
		r.bar.SetCurrent(t.Elapsed.Milliseconds())
	}
}

// OnInterval prints the interval's line (Plain mode).
func (r *Reporter) OnInterval(iv load.Interval) {
	if r.mode != Plain {
		return
	}
	fmt.Fprintln(r.w, IntervalLine(r.label, iv))
}

// IntervalLine renders one interval like the seed's per-10-second output.
func IntervalLine(label string, iv load.Interval) string {
	o := iv.Overall
	if iv.Drain {
		return fmt.Sprintf("%s [drain %s-%s] completed %d ok %d errors %d missed %d  p50 %s p95 %s p99 %s max %s",
			label, iv.Start.Truncate(time.Second), iv.End.Round(time.Millisecond), o.Completed, o.OK, o.ErrorCount(), o.Missed,
			o.Latency.P50, o.Latency.P95, o.Latency.P99, o.Latency.Max)
	}
	return fmt.Sprintf("%s [%6s-%6s] sent %d ok %d errors %d late %d  rate %.1f/s (target %.1f/s)  p50 %s p95 %s p99 %s max %s",
		label, iv.Start.Truncate(time.Second), iv.End.Truncate(time.Second), o.Sent, o.OK, o.ErrorCount(), o.Late,
		o.AchievedRate, o.TargetRate, o.Latency.P50, o.Latency.P95, o.Latency.P99, o.Latency.Max)
}

// Close completes the bar and waits for it to render.
func (r *Reporter) Close() {
	if r.bar == nil {
		return
	}
	r.bar.SetTotal(-1, true)
	r.p.Wait()
}
