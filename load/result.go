package load

import (
	"sort"
	"time"

	"github.com/tierchaos/tierchaos/load/hist"
)

// OpResult holds the statistics of one operation (or of all operations, for
// Result.Overall) over a run or an interval.
type OpResult struct {
	// Name is the operation's name ("all" for the overall result).
	Name string `json:"name"`
	// Scheduled counts requests due in the window (Sent + Missed).
	Scheduled int64 `json:"scheduled"`
	// Sent counts requests started.
	Sent int64 `json:"sent"`
	// Missed counts requests due in the window that never started because the
	// driver could not keep up (or the run was interrupted).
	Missed int64 `json:"missed"`
	// Late counts requests that started more than LateAfter after their due time.
	Late int64 `json:"late"`
	// Completed counts finished requests; OK those without error.
	Completed int64 `json:"completed"`
	OK        int64 `json:"ok"`
	// Errors counts failed requests by stable error code.
	Errors map[string]int64 `json:"errors"`
	// TargetRate is Scheduled per second of the window; AchievedRate is Sent
	// per second; Throughput is OK per second.
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Throughput   float64 `json:"throughput"`
	// Latency is measured from each request's due time to its end (corrected
	// for coordinated omission); Service from its actual start to its end;
	// StartLag from due time to actual start.
	Latency  hist.Summary `json:"latency"`
	Service  hist.Summary `json:"service"`
	StartLag hist.Summary `json:"start_lag"`
	// LatencyHist and ServiceHist are the full distributions, mergeable
	// across runs (serialised as HdrHistogram V2 base64).
	LatencyHist *hist.Histogram `json:"latency_hist,omitempty"`
	ServiceHist *hist.Histogram `json:"service_hist,omitempty"`
}

// ErrorCount returns the number of failed requests.
func (r OpResult) ErrorCount() int64 { return r.Completed - r.OK }

// ErrorRate returns failed / completed (0 when nothing completed).
func (r OpResult) ErrorRate() float64 {
	if r.Completed == 0 {
		return 0
	}
	return float64(r.ErrorCount()) / float64(r.Completed)
}

// RateRatio returns Sent / Scheduled: 1 when every due request started.
func (r OpResult) RateRatio() float64 {
	if r.Scheduled == 0 {
		return 0
	}
	return float64(r.Sent) / float64(r.Scheduled)
}

// ErrorCodes returns the error codes sorted by count, descending.
func (r OpResult) ErrorCodes() []string {
	codes := make([]string, 0, len(r.Errors))
	for c := range r.Errors {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if r.Errors[codes[i]] != r.Errors[codes[j]] {
			return r.Errors[codes[i]] > r.Errors[codes[j]]
		}
		return codes[i] < codes[j]
	})
	return codes
}

// Interval is the statistics of one interval (every Config.Interval).
type Interval struct {
	Index int           `json:"index"`
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	// Drain marks the last interval when it starts after the window: it
	// holds only completions of requests still in flight at the window's end
	// (and the missed count), so its rates are not comparable.
	Drain   bool       `json:"drain"`
	Overall OpResult   `json:"overall"`
	Ops     []OpResult `json:"ops"`
}

// Point is one Tick of the overall timeline.
type Point struct {
	// At is the tick's end, as an offset from the run start.
	At        time.Duration `json:"at"`
	Sent      int64         `json:"sent"`
	Completed int64         `json:"completed"`
	Errors    int64         `json:"errors"`
	// Rate is completions per second during the tick.
	Rate float64       `json:"rate"`
	P50  time.Duration `json:"p50"`
	P95  time.Duration `json:"p95"`
	P99  time.Duration `json:"p99"`
	Max  time.Duration `json:"max"`
}

// Tick is the live view passed to Config.OnTick.
type Tick struct {
	Elapsed  time.Duration
	Duration time.Duration
	// Sent, Completed and Errors are totals so far.
	Sent, Completed, Errors, Late int64
	InFlight                      int64
	// Rate and P95 are over the last tick.
	Rate float64
	P95  time.Duration
}

// Result is the outcome of Run.
type Result struct {
	Start       time.Time     `json:"start"`
	Duration    time.Duration `json:"duration"`
	Elapsed     time.Duration `json:"elapsed"`
	Rate        float64       `json:"rate"`
	RampUp      time.Duration `json:"ramp_up"`
	Arrival     Arrival       `json:"arrival"`
	Pacing      Pacing        `json:"pacing"`
	Seed        uint64        `json:"seed"`
	LateAfter   time.Duration `json:"late_after"`
	MaxInFlight int           `json:"max_in_flight"`
	// PeakInFlight is the largest number of concurrent requests reached.
	PeakInFlight int `json:"peak_in_flight"`
	// Interrupted is true when the run's context ended before Duration.
	Interrupted bool `json:"interrupted"`
	// DriverCPU is the CPU time (user + system) the driver's whole
	// process used from the first request's schedule to the end of the
	// drain: the driver's own cost when the target runs elsewhere, the
	// driver's and the target's together when the target shares the
	// process. Zero where the platform does not report it.
	DriverCPU time.Duration `json:"driver_cpu"`
	Overall   OpResult      `json:"overall"`
	Ops       []OpResult    `json:"ops"`
	Intervals []Interval    `json:"intervals"`
	Timeline  []Point       `json:"timeline"`
}

// DriverCPUPerRequest is DriverCPU divided by the requests sent (zero
// when either is zero).
func (r *Result) DriverCPUPerRequest() time.Duration {
	if r.DriverCPU <= 0 || r.Overall.Sent <= 0 {
		return 0
	}
	return r.DriverCPU / time.Duration(r.Overall.Sent)
}

// Op returns the result of the named op.
func (r *Result) Op(name string) (OpResult, bool) {
	for _, o := range r.Ops {
		if o.Name == name {
			return o, true
		}
	}
	return OpResult{}, false
}
