package load

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func okOp(name string, weight float64) Op {
	return Simple(name, weight, func(context.Context) error { return nil })
}

func TestScheduleConstant(t *testing.T) {
	tests := []struct {
		name   string
		rate   float64
		ramp   time.Duration
		checks map[int]time.Duration // k-th due offset
	}{
		{"no ramp", 100, 0, map[int]time.Duration{0: 0, 1: 10 * time.Millisecond, 100: time.Second}},
		// Ramp 0->100/s over 2 s: N(t)=25t², so 100 requests are due by 2 s
		// and after the ramp one every 10 ms.
		{"ramp", 100, 2 * time.Second, map[int]time.Duration{100: 2*time.Second + 5*time.Millisecond, 110: 2*time.Second + 105*time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(Constant, tt.rate, tt.ramp, 1)
			var got []time.Duration
			for range 200 {
				got = append(got, s.next())
			}
			for k, want := range tt.checks {
				assert.InDelta(t, float64(want), float64(got[k]), float64(time.Microsecond), "k=%d", k)
			}
			for k := 1; k < len(got); k++ {
				require.GreaterOrEqual(t, got[k], got[k-1])
			}
		})
	}
}

func TestScheduleExpectedMatchesInverse(t *testing.T) {
	s := newSchedule(Constant, 1000, 3*time.Second, 1)
	for _, n := range []float64{1, 10, 1499, 1500, 1501, 5000} {
		at := time.Duration(s.inverse(n) * float64(time.Second))
		assert.InDelta(t, n, s.expected(at), 1e-3, "n=%v", n)
	}
}

func TestSchedulePoisson(t *testing.T) {
	const rate = 1000.0
	s := newSchedule(Poisson, rate, 0, 42)
	var last time.Duration
	var gaps []float64
	for range 20000 {
		at := s.next()
		gaps = append(gaps, (at - last).Seconds())
		last = at
	}
	var mean, sq float64
	for _, g := range gaps {
		mean += g
	}
	mean /= float64(len(gaps))
	for _, g := range gaps {
		sq += (g - mean) * (g - mean)
	}
	sd := math.Sqrt(sq / float64(len(gaps)))
	// Exponential gaps: mean = sd = 1/rate.
	assert.InEpsilon(t, 1/rate, mean, 0.03)
	assert.InEpsilon(t, 1/rate, sd, 0.05)

	// Same seed, same arrivals.
	a, b := newSchedule(Poisson, rate, 0, 7), newSchedule(Poisson, rate, 0, 7)
	for range 100 {
		require.Equal(t, a.next(), b.next())
	}
}

func TestPickerFollowsWeights(t *testing.T) {
	p := newPicker([]Op{okOp("a", 70), okOp("b", 20), okOp("c", 10)}, 3)
	counts := make([]int, 3)
	const n = 100000
	for range n {
		counts[p.next()]++
	}
	for i, want := range []float64{0.7, 0.2, 0.1} {
		assert.InDelta(t, want, float64(counts[i])/n, 0.01, "op %d", i)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Ops: []Op{okOp("a", 1)}, Rate: 10, Duration: time.Second}
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"good", func(*Config) {}, true},
		{"no ops", func(c *Config) { c.Ops = nil }, false},
		{"no name", func(c *Config) { c.Ops = []Op{okOp("", 1)} }, false},
		{"duplicate", func(c *Config) { c.Ops = []Op{okOp("a", 1), okOp("a", 1)} }, false},
		{"nil do", func(c *Config) { c.Ops = []Op{{Name: "a", Weight: 1}} }, false},
		{"zero weight", func(c *Config) { c.Ops = []Op{okOp("a", 0)} }, false},
		{"nan weight", func(c *Config) { c.Ops = []Op{okOp("a", math.NaN())} }, false},
		{"zero rate", func(c *Config) { c.Rate = 0 }, false},
		{"inf rate", func(c *Config) { c.Rate = math.Inf(1) }, false},
		{"zero duration", func(c *Config) { c.Duration = 0 }, false},
		{"ramp too long", func(c *Config) { c.RampUp = 2 * time.Second }, false},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, false},
		{"negative in-flight", func(c *Config) { c.MaxInFlight = -1 }, false},
		{"bad arrival", func(c *Config) { c.Arrival = "bursty" }, false},
		{"bad pacing", func(c *Config) { c.Pacing = "fast" }, false},
		{"tick > interval", func(c *Config) { c.Tick = time.Minute }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			err := c.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrConfig)
			_, err = Run(context.Background(), c)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

type codedErr struct{}

func (codedErr) Error() string     { return "quota" }
func (codedErr) ErrorCode() string { return "quota_exceeded" }

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"coded", fmt.Errorf("wrapped: %w", codedErr{}), "quota_exceeded"},
		{"with code", WithCode("x", errors.New("boom")), "x"},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), CodeTimeout},
		{"canceled", context.Canceled, CodeCanceled},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, CodeConnRefused},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, CodeConnReset},
		{"net other", &net.DNSError{Err: "nope"}, CodeNetwork},
		{"status", &StatusError{Status: 503}, "http_503"},
		{"plain", errors.New("boom"), CodeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, CodeOf(tt.err)) })
	}
	assert.NoError(t, WithCode("x", nil))
}

func TestRunCountsOKErrorsAndPanics(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint64]bool{}
	ops := []Op{
		{Name: "ok", Weight: 2, Do: func(_ context.Context, seq uint64) error {
			mu.Lock()
			defer mu.Unlock()
			seen[seq] = true
			return nil
		}},
		Simple("fail", 1, func(context.Context) error { return WithCode("boom", errors.New("x")) }),
		Simple("panic", 1, func(context.Context) error { panic("oops") }),
	}
	var ticks []Tick
	var ivls []Interval
	res, err := Run(context.Background(), Config{
		Ops: ops, Rate: 400, Duration: 600 * time.Millisecond, Seed: 9,
		Tick: 100 * time.Millisecond, Interval: 200 * time.Millisecond,
		OnTick:     func(tk Tick) { ticks = append(ticks, tk) },
		OnInterval: func(iv Interval) { ivls = append(ivls, iv) },
	})
	require.NoError(t, err)
	o := res.Overall
	assert.Equal(t, int64(240), o.Scheduled)
	assert.Equal(t, o.Scheduled, o.Sent+o.Missed)
	assert.Equal(t, o.Sent, o.Completed)
	okR, _ := res.Op("ok")
	failR, _ := res.Op("fail")
	panicR, _ := res.Op("panic")
	assert.Equal(t, okR.Completed, okR.OK)
	assert.Equal(t, map[string]int64{"boom": failR.Completed}, failR.Errors)
	assert.Equal(t, map[string]int64{CodePanic: panicR.Completed}, panicR.Errors)
	assert.Equal(t, okR.Completed+failR.Completed+panicR.Completed, o.Completed)
	assert.Equal(t, o.Completed-okR.Completed, o.ErrorCount())
	assert.InDelta(t, 0.5, float64(okR.Scheduled)/float64(o.Scheduled), 0.1, "ok has half the weight")
	assert.Len(t, seen, int(okR.Completed))
	assert.NotNil(t, o.LatencyHist)
	assert.Equal(t, o.Completed, o.LatencyHist.Count())

	require.NotEmpty(t, ticks)
	// How many 200 ms intervals a 600 ms run reports depends on when the
	// interval ticker gets the CPU (a ticker drops ticks on a loaded
	// machine); that they partition the run is what must hold.
	require.NotEmpty(t, ivls, "interval stats reported")
	var ivlCompleted int64
	for _, iv := range res.Intervals {
		ivlCompleted += iv.Overall.Completed
	}
	assert.Equal(t, o.Completed, ivlCompleted, "intervals partition the run")
	var tlCompleted int64
	for _, p := range res.Timeline {
		tlCompleted += p.Completed
	}
	assert.Equal(t, o.Completed, tlCompleted, "timeline partitions the run")
}

func TestRunReportsLateAndMissedWhenSaturated(t *testing.T) {
	slow := Simple("slow", 1, func(ctx context.Context) error {
		select {
		case <-time.After(20 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	// One request in flight at 20 ms each serves 50/s; 200/s are due.
	res, err := Run(context.Background(), Config{
		Ops: []Op{slow}, Rate: 200, Duration: 500 * time.Millisecond, MaxInFlight: 1,
		LateAfter: 5 * time.Millisecond,
	})
	require.NoError(t, err)
	o := res.Overall
	assert.Equal(t, int64(100), o.Scheduled)
	assert.Greater(t, o.Missed, int64(50), "most due requests could not start")
	assert.Greater(t, o.Late, int64(0))
	assert.Less(t, o.RateRatio(), 0.5)
	assert.Equal(t, 1, res.PeakInFlight)
	// Latency counts the queueing behind the limit; service time does not.
	assert.Greater(t, o.Latency.Max, 200*time.Millisecond)
	assert.Less(t, o.Service.P50, 200*time.Millisecond)
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	op := Simple("block", 1, func(c context.Context) error {
		once.Do(func() { close(started) })
		<-c.Done()
		return c.Err()
	})
	go func() {
		<-started
		cancel()
	}()
	res, err := Run(ctx, Config{Ops: []Op{op}, Rate: 100, Duration: time.Minute})
	require.NoError(t, err)
	assert.True(t, res.Interrupted)
	assert.Less(t, res.Elapsed, time.Minute)
	assert.Equal(t, res.Overall.Sent, res.Overall.Errors[CodeCanceled])
}

func TestRunDrainTimeoutCancelsStragglers(t *testing.T) {
	op := Simple("hang", 1, func(c context.Context) error {
		<-c.Done()
		return c.Err()
	})
	res, err := Run(context.Background(), Config{
		Ops: []Op{op}, Rate: 20, Duration: 100 * time.Millisecond,
		DrainTimeout: 200 * time.Millisecond, Tick: 50 * time.Millisecond, Interval: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	assert.False(t, res.Interrupted)
	assert.Equal(t, res.Overall.Sent, res.Overall.Errors[CodeCanceled])
	last := res.Intervals[len(res.Intervals)-1]
	assert.True(t, last.Drain, "the stragglers finish in a drain interval")
	// The drain may be reported in more than one interval (a tick can fall
	// between the cancellations): together they hold every straggler.
	var drained, sentInDrain int64
	for _, iv := range res.Intervals {
		if iv.Drain {
			drained += iv.Overall.Completed
			sentInDrain += iv.Overall.Sent
		}
	}
	assert.Equal(t, res.Overall.Sent, drained)
	assert.Equal(t, int64(0), sentInDrain)
}

// TestRunMeasuresDriverCPU: ops that burn CPU in the driver's process show
// in DriverCPU, and the per-request figure is that time over the requests
// sent. An op that only waits costs far less per request than one that
// spins for a millisecond of CPU.
func TestRunMeasuresDriverCPU(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("process CPU time is read on unix only")
	}
	spin := Simple("spin", 1, func(context.Context) error {
		end := time.Now().Add(time.Millisecond)
		for time.Now().Before(end) {
		}
		return nil
	})
	res, err := Run(context.Background(), Config{Ops: []Op{spin}, Rate: 200, Duration: time.Second})
	require.NoError(t, err)
	require.Positive(t, res.Overall.Sent)
	// Each request spins for 1 ms of wall time on a running thread:
	// at least about that much CPU each, whatever else the process does.
	assert.GreaterOrEqual(t, res.DriverCPUPerRequest(), 500*time.Microsecond)
	assert.Equal(t, res.DriverCPU/time.Duration(res.Overall.Sent), res.DriverCPUPerRequest())
	assert.Zero(t, (&Result{}).DriverCPUPerRequest(), "nothing sent, nothing measured")
}
