package netfault

import (
	"fmt"
	"math"
	"strconv"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// Direction is the stream a toxic acts on.
type Direction string

// Directions. Downstream is data from the upstream server (MinIO) to the
// client; Upstream is data from the client to the server.
const (
	Downstream Direction = "downstream"
	Upstream   Direction = "upstream"
)

// Toxic is one typed Toxiproxy toxic. Build one with Latency, Bandwidth,
// Timeout, ResetPeer, LimitData, SlowClose or Slicer, then refine it with
// its methods (each returns a modified copy):
//
//	netfault.Latency(200*time.Millisecond).Jitter(50*time.Millisecond).Upstream().Toxicity(0.5)
//
// Toxics act downstream with toxicity 1 unless told otherwise. Only this
// package implements Toxic.
type Toxic interface {
	// Type is Toxiproxy's name of the toxic type, e.g. "latency".
	Type() string
	// Stream is the direction the toxic acts on.
	Stream() Direction
	// Validate reports a bad parameter as an *Error matching ErrInvalid.
	Validate() error
	// String describes the toxic, e.g. "latency 200ms±50ms downstream".
	String() string

	spec() spec
}

// spec is what Toxiproxy's API takes for one toxic.
type spec struct {
	typ      string
	stream   Direction
	toxicity float32
	attrs    toxiproxy.Attributes
}

// common holds what every toxic has: a direction and a toxicity.
type common struct {
	upstream bool
	// untoxic is 1 - toxicity, so that the zero value means toxicity 1.
	untoxic float64
}

// Stream is the direction the toxic acts on (Downstream unless Upstream
// was called).
func (c common) Stream() Direction {
	if c.upstream {
		return Upstream
	}
	return Downstream
}

func (c common) toxicity() float64 { return 1 - c.untoxic }

func (c common) validate(typ string) error {
	p := c.toxicity()
	if math.IsNaN(c.untoxic) || p < 0 || p > 1 {
		return invalid(CodeToxicityRange, typ, "toxicity", "toxicity must be within [0, 1], got %v", p)
	}
	return nil
}

func (c common) spec(typ string, attrs toxiproxy.Attributes) spec {
	return spec{typ: typ, stream: c.Stream(), toxicity: float32(c.toxicity()), attrs: attrs}
}

func (c common) suffix() string {
	s := " " + string(c.Stream())
	if p := c.toxicity(); p != 1 {
		s += " toxicity=" + strconv.FormatFloat(p, 'g', -1, 64)
	}
	return s
}

func (c common) withStream(up bool) common     { c.upstream = up; return c }
func (c common) withToxicity(p float64) common { c.untoxic = 1 - p; return c }

// checkDuration validates a duration Toxiproxy takes in whole units.
func checkDuration(typ, field string, d, unit time.Duration) error {
	if d < 0 {
		return invalid(CodeNegativeDuration, typ, field, "must not be negative, got %v", d)
	}
	if d%unit != 0 {
		return invalid(CodeDurationPrecision, typ, field, "must be a whole number of %v, got %v", unit, d)
	}
	return nil
}

// LatencyToxic delays every chunk of data by a latency, plus or minus a
// uniformly drawn jitter. Make one with Latency.
type LatencyToxic struct {
	common
	latency, jitter time.Duration
}

// Latency delays data by d (whole milliseconds).
func Latency(d time.Duration) LatencyToxic { return LatencyToxic{latency: d} }

// Jitter makes each delay latency±j, drawn uniformly; j must not exceed
// the latency.
func (t LatencyToxic) Jitter(j time.Duration) LatencyToxic { t.jitter = j; return t }

// Upstream makes the toxic act on data from the client to the server.
func (t LatencyToxic) Upstream() LatencyToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t LatencyToxic) Downstream() LatencyToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t LatencyToxic) Toxicity(p float64) LatencyToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (LatencyToxic) Type() string { return "latency" }

// Validate implements Toxic.
func (t LatencyToxic) Validate() error {
	if err := checkDuration(t.Type(), "latency", t.latency, time.Millisecond); err != nil {
		return err
	}
	if err := checkDuration(t.Type(), "jitter", t.jitter, time.Millisecond); err != nil {
		return err
	}
	if t.jitter > t.latency {
		return invalid(CodeJitterExceedsLatency, t.Type(), "jitter", "jitter %v exceeds latency %v", t.jitter, t.latency)
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t LatencyToxic) String() string {
	s := "latency " + t.latency.String()
	if t.jitter > 0 {
		s += "±" + t.jitter.String()
	}
	return s + t.suffix()
}

func (t LatencyToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{
		"latency": t.latency.Milliseconds(), "jitter": t.jitter.Milliseconds(),
	})
}

// BandwidthToxic limits the data rate. Make one with Bandwidth.
type BandwidthToxic struct {
	common
	rate int64
}

// Bandwidth limits the rate to kbps kilobytes (1000 bytes) per second;
// it must be above zero.
func Bandwidth(kbps int64) BandwidthToxic { return BandwidthToxic{rate: kbps} }

// Upstream makes the toxic act on data from the client to the server.
func (t BandwidthToxic) Upstream() BandwidthToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t BandwidthToxic) Downstream() BandwidthToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t BandwidthToxic) Toxicity(p float64) BandwidthToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (BandwidthToxic) Type() string { return "bandwidth" }

// Validate implements Toxic.
func (t BandwidthToxic) Validate() error {
	if t.rate <= 0 {
		return invalid(CodeNonPositive, t.Type(), "rate", "must be above 0 KB/s (Toxiproxy reads 0 as unlimited), got %d", t.rate)
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t BandwidthToxic) String() string {
	return fmt.Sprintf("bandwidth %dKB/s%s", t.rate, t.suffix())
}

func (t BandwidthToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{"rate": t.rate})
}

// TimeoutToxic stops all data and closes the connection after a timeout,
// or never closes it when the timeout is 0. Make one with Timeout.
type TimeoutToxic struct {
	common
	timeout time.Duration
}

// Timeout stops all data through the connection and closes it after d
// (whole milliseconds); with d == 0 the connection hangs until the
// toxic is removed.
func Timeout(d time.Duration) TimeoutToxic { return TimeoutToxic{timeout: d} }

// Upstream makes the toxic act on data from the client to the server.
func (t TimeoutToxic) Upstream() TimeoutToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t TimeoutToxic) Downstream() TimeoutToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t TimeoutToxic) Toxicity(p float64) TimeoutToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (TimeoutToxic) Type() string { return "timeout" }

// Validate implements Toxic.
func (t TimeoutToxic) Validate() error {
	if err := checkDuration(t.Type(), "timeout", t.timeout, time.Millisecond); err != nil {
		return err
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t TimeoutToxic) String() string {
	if t.timeout == 0 {
		return "timeout forever" + t.suffix()
	}
	return "timeout " + t.timeout.String() + t.suffix()
}

func (t TimeoutToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{"timeout": t.timeout.Milliseconds()})
}

// ResetPeerToxic resets the connection (TCP RST) once data arrives, after
// a delay. Make one with ResetPeer.
type ResetPeerToxic struct {
	common
	after time.Duration
}

// ResetPeer resets the connection `after` (whole milliseconds) past the
// first data in the toxic's direction; 0 resets at once.
func ResetPeer(after time.Duration) ResetPeerToxic { return ResetPeerToxic{after: after} }

// Upstream makes the toxic act on data from the client to the server.
func (t ResetPeerToxic) Upstream() ResetPeerToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t ResetPeerToxic) Downstream() ResetPeerToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t ResetPeerToxic) Toxicity(p float64) ResetPeerToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (ResetPeerToxic) Type() string { return "reset_peer" }

// Validate implements Toxic.
func (t ResetPeerToxic) Validate() error {
	if err := checkDuration(t.Type(), "after", t.after, time.Millisecond); err != nil {
		return err
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t ResetPeerToxic) String() string {
	return "reset_peer after " + t.after.String() + t.suffix()
}

func (t ResetPeerToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{"timeout": t.after.Milliseconds()})
}

// LimitDataToxic closes the connection once a number of bytes has passed.
// Make one with LimitData.
type LimitDataToxic struct {
	common
	bytes int64
}

// LimitData lets n bytes through in the toxic's direction, then closes
// the connection.
func LimitData(n int64) LimitDataToxic { return LimitDataToxic{bytes: n} }

// Upstream makes the toxic act on data from the client to the server.
func (t LimitDataToxic) Upstream() LimitDataToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t LimitDataToxic) Downstream() LimitDataToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t LimitDataToxic) Toxicity(p float64) LimitDataToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (LimitDataToxic) Type() string { return "limit_data" }

// Validate implements Toxic.
func (t LimitDataToxic) Validate() error {
	if t.bytes < 0 {
		return invalid(CodeNegativeSize, t.Type(), "bytes", "must not be negative, got %d", t.bytes)
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t LimitDataToxic) String() string {
	return fmt.Sprintf("limit_data %dB%s", t.bytes, t.suffix())
}

func (t LimitDataToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{"bytes": t.bytes})
}

// SlowCloseToxic delays the close of the connection. Make one with
// SlowClose.
type SlowCloseToxic struct {
	common
	delay time.Duration
}

// SlowClose delays passing on the close of the toxic's direction by d
// (whole milliseconds).
func SlowClose(d time.Duration) SlowCloseToxic { return SlowCloseToxic{delay: d} }

// Upstream makes the toxic act on data from the client to the server.
func (t SlowCloseToxic) Upstream() SlowCloseToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t SlowCloseToxic) Downstream() SlowCloseToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t SlowCloseToxic) Toxicity(p float64) SlowCloseToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (SlowCloseToxic) Type() string { return "slow_close" }

// Validate implements Toxic.
func (t SlowCloseToxic) Validate() error {
	if err := checkDuration(t.Type(), "delay", t.delay, time.Millisecond); err != nil {
		return err
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t SlowCloseToxic) String() string {
	return "slow_close " + t.delay.String() + t.suffix()
}

func (t SlowCloseToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{"delay": t.delay.Milliseconds()})
}

// SlicerToxic cuts data into small pieces with a pause after each. Make
// one with Slicer.
type SlicerToxic struct {
	common
	avg, variation int
	delay          time.Duration
}

// Slicer cuts each chunk of data into pieces of about avgSize bytes
// (±variation, which must be below avgSize) and pauses delay (whole
// microseconds) after each piece.
func Slicer(avgSize, variation int, delay time.Duration) SlicerToxic {
	return SlicerToxic{avg: avgSize, variation: variation, delay: delay}
}

// Upstream makes the toxic act on data from the client to the server.
func (t SlicerToxic) Upstream() SlicerToxic { t.common = t.withStream(true); return t }

// Downstream makes the toxic act on data from the server to the client.
func (t SlicerToxic) Downstream() SlicerToxic { t.common = t.withStream(false); return t }

// Toxicity sets the probability in [0, 1] that a connection is affected.
func (t SlicerToxic) Toxicity(p float64) SlicerToxic { t.common = t.withToxicity(p); return t }

// Type implements Toxic.
func (SlicerToxic) Type() string { return "slicer" }

// Validate implements Toxic.
func (t SlicerToxic) Validate() error {
	if t.avg <= 0 {
		return invalid(CodeNonPositive, t.Type(), "average_size", "must be above 0 bytes, got %d", t.avg)
	}
	if t.variation < 0 {
		return invalid(CodeNegativeSize, t.Type(), "size_variation", "must not be negative, got %d", t.variation)
	}
	if t.variation >= t.avg {
		return invalid(CodeVariationTooLarge, t.Type(), "size_variation", "variation %d must be below the average size %d", t.variation, t.avg)
	}
	if err := checkDuration(t.Type(), "delay", t.delay, time.Microsecond); err != nil {
		return err
	}
	return t.validate(t.Type())
}

// String implements Toxic.
func (t SlicerToxic) String() string {
	return fmt.Sprintf("slicer %d±%dB every %v%s", t.avg, t.variation, t.delay, t.suffix())
}

func (t SlicerToxic) spec() spec {
	return t.common.spec(t.Type(), toxiproxy.Attributes{
		"average_size": t.avg, "size_variation": t.variation, "delay": t.delay.Microseconds(),
	})
}
