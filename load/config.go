package load

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// ErrConfig is returned (wrapped) for an invalid Config.
var ErrConfig = errors.New("load: invalid config")

// Pacing selects how the scheduler waits for the next due request.
type Pacing string

const (
	// PacingAuto uses PacingFine up to FineRateLimit requests per second
	// and PacingCoarse above it.
	PacingAuto Pacing = "auto"
	// PacingCoarse waits on the Go runtime timer: cheap (a few µs of CPU per
	// wake-up) but with ~1 ms resolution on Linux, so requests start on
	// average ~0.5 ms after their due time. The delay is measured (start lag)
	// and included in latency.
	PacingCoarse Pacing = "coarse"
	// PacingFine sleeps in the kernel for short waits (nanosleep on Linux,
	// select on macOS, the runtime timer elsewhere): ~60 µs start lag on
	// Linux, at ~25-40 µs of CPU per wake-up.
	PacingFine Pacing = "fine"
)

// FineRateLimit is the highest target rate at which PacingAuto uses fine pacing.
const FineRateLimit = 2000

// Defaults applied by Config.withDefaults.
const (
	DefaultMaxInFlight = 4096
	DefaultTimeout     = 30 * time.Second // drain timeout, and httpop's request timeout
	DefaultLateAfter   = 10 * time.Millisecond
	DefaultInterval    = 10 * time.Second
	DefaultTick        = time.Second
)

// Config describes one open-loop run.
type Config struct {
	// Ops is the workload mix; each request picks one op by weight.
	Ops []Op
	// Rate is the target arrival rate in requests per second (after ramp-up).
	Rate float64
	// Duration is how long requests are scheduled for.
	Duration time.Duration
	// RampUp raises the rate linearly from 0 to Rate over this time (0: none).
	RampUp time.Duration
	// Arrival is Constant (default) or Poisson.
	Arrival Arrival
	// Seed makes arrival gaps and the op sequence reproducible.
	Seed uint64
	// Timeout, if positive, gives each request a context deadline. It is off
	// by default because a context per request costs ~9% of the driver's CPU
	// at 5,000 req/s; ops' clients carry their own timeouts, and the drain
	// deadline bounds every request.
	Timeout time.Duration
	// MaxInFlight bounds concurrent requests (default DefaultMaxInFlight).
	// When it is reached the scheduler waits: requests then start late, and
	// their latency (from the due time) includes the wait.
	MaxInFlight int
	// LateAfter is the start lag above which a request counts as a late
	// start (default DefaultLateAfter). A request due in the window but not
	// started within LateAfter after the window's end is counted as missed.
	LateAfter time.Duration
	// DrainTimeout bounds the wait for in-flight requests after the window;
	// remaining ones are cancelled (default: Timeout if set, else 30 s).
	DrainTimeout time.Duration
	// Interval is the length of interval statistics (default 10 s).
	Interval time.Duration
	// Tick is the sampling period of the timeline and OnTick (default 1 s).
	Tick time.Duration
	// Pacing selects the scheduler's waiting strategy (default PacingAuto).
	Pacing Pacing
	// OnTick, if set, is called every Tick from the collector goroutine.
	OnTick func(Tick)
	// OnInterval, if set, is called at the end of every Interval.
	OnInterval func(Interval)
	// Logger receives driver events (default slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Arrival == "" {
		c.Arrival = Constant
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.LateAfter == 0 {
		c.LateAfter = DefaultLateAfter
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultTimeout
		if c.Timeout > 0 {
			c.DrainTimeout = c.Timeout
		}
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.Pacing == "" {
		c.Pacing = PacingAuto
	}
	if c.Pacing == PacingAuto {
		c.Pacing = PacingCoarse
		if c.Rate <= FineRateLimit {
			c.Pacing = PacingFine
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ValidateSchedule checks a rate, duration and ramp-up (part of Validate,
// usable before the ops exist).
func ValidateSchedule(rate float64, duration, rampUp time.Duration) error {
	switch {
	case !(rate > 0) || math.IsInf(rate, 0):
		return fmt.Errorf("%w: rate %v must be positive and finite", ErrConfig, rate)
	case duration <= 0:
		return fmt.Errorf("%w: duration %v must be positive", ErrConfig, duration)
	case rampUp < 0 || rampUp > duration:
		return fmt.Errorf("%w: ramp-up %v must be within [0, duration %v]", ErrConfig, rampUp, duration)
	}
	return nil
}

// Validate reports the first problem with c, wrapped in ErrConfig.
func (c Config) Validate() error {
	if len(c.Ops) == 0 {
		return fmt.Errorf("%w: no operations", ErrConfig)
	}
	if len(c.Ops) > math.MaxUint16 {
		return fmt.Errorf("%w: too many operations (%d)", ErrConfig, len(c.Ops))
	}
	seen := make(map[string]bool, len(c.Ops))
	for i, op := range c.Ops {
		switch {
		case op.Name == "":
			return fmt.Errorf("%w: op %d has no name", ErrConfig, i)
		case seen[op.Name]:
			return fmt.Errorf("%w: duplicate op name %q", ErrConfig, op.Name)
		case op.Do == nil:
			return fmt.Errorf("%w: op %q has no Do func", ErrConfig, op.Name)
		case !(op.Weight > 0) || math.IsInf(op.Weight, 0):
			return fmt.Errorf("%w: op %q weight %v must be positive and finite", ErrConfig, op.Name, op.Weight)
		}
		seen[op.Name] = true
	}
	if err := ValidateSchedule(c.Rate, c.Duration, c.RampUp); err != nil {
		return err
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("%w: timeout %v must not be negative", ErrConfig, c.Timeout)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: max in-flight %d must not be negative", ErrConfig, c.MaxInFlight)
	case c.LateAfter < 0 || c.DrainTimeout < 0 || c.Interval < 0 || c.Tick < 0:
		return fmt.Errorf("%w: late-after, drain timeout, interval and tick must not be negative", ErrConfig)
	}
	if c.Arrival != "" {
		if _, err := ParseArrival(string(c.Arrival)); err != nil {
			return err
		}
	}
	switch c.Pacing {
	case "", PacingAuto, PacingCoarse, PacingFine:
	default:
		return fmt.Errorf("%w: pacing %q (want auto, coarse or fine)", ErrConfig, c.Pacing)
	}
	d := c.withDefaults()
	if d.Tick > d.Interval {
		return fmt.Errorf("%w: tick %v longer than interval %v", ErrConfig, d.Tick, d.Interval)
	}
	return nil
}
