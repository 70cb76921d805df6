package load

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Arrival selects how request start times are spaced.
type Arrival string

const (
	// Constant spaces requests evenly at the target rate.
	Constant Arrival = "constant"
	// Poisson draws exponential gaps (a Poisson process) with the target mean rate.
	Poisson Arrival = "poisson"
)

// ParseArrival parses "constant" or "poisson".
func ParseArrival(s string) (Arrival, error) {
	switch Arrival(s) {
	case Constant, Poisson:
		return Arrival(s), nil
	}
	return "", fmt.Errorf("%w: arrival %q (want constant or poisson)", ErrConfig, s)
}

// schedule yields the offsets from the run start at which requests are due.
// The rate ramps linearly from zero to rate over rampUp, then stays constant.
// Both arrival kinds use the same time change: unit-rate arrival points s_k
// (k for constant, cumulative Exp(1) draws for Poisson) are mapped through
// the inverse of the cumulative expected count N(t) = ∫ rate(t) dt.
type schedule struct {
	rate    float64 // requests per second after the ramp
	ramp    float64 // seconds
	poisson bool
	rng     *rand.Rand
	s       float64 // unit-rate position of the next arrival
	k       uint64
}

func newSchedule(a Arrival, rate float64, rampUp time.Duration, seed uint64) *schedule {
	return &schedule{
		rate:    rate,
		ramp:    rampUp.Seconds(),
		poisson: a == Poisson,
		rng:     rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
	}
}

// next returns the due offset of the next request.
func (s *schedule) next() time.Duration {
	if s.poisson {
		s.s += s.rng.ExpFloat64()
	} else {
		// Constant: the k-th request is due when N(t) = k, the first at t = 0
		// without a ramp; with a ramp the first is due at N(t) = 0.5 so the
		// sequence does not begin with a burst.
		s.s = float64(s.k)
		if s.ramp > 0 {
			s.s += 0.5
		}
	}
	s.k++
	return time.Duration(s.inverse(s.s) * float64(time.Second))
}

// inverse returns t such that N(t) = n.
func (s *schedule) inverse(n float64) float64 {
	if s.ramp <= 0 {
		return n / s.rate
	}
	// During the ramp N(t) = rate*t²/(2*ramp).
	rampCount := s.rate * s.ramp / 2
	if n <= rampCount {
		return math.Sqrt(2 * s.ramp * n / s.rate)
	}
	return s.ramp + (n-rampCount)/s.rate
}

// expected returns N(t), the number of requests the schedule intends to start
// in [0, t).
func (s *schedule) expected(t time.Duration) float64 {
	x := t.Seconds()
	if s.ramp <= 0 || x >= s.ramp {
		if s.ramp <= 0 {
			return s.rate * x
		}
		return s.rate*s.ramp/2 + s.rate*(x-s.ramp)
	}
	return s.rate * x * x / (2 * s.ramp)
}
