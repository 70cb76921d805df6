package fault

import (
	"context"
	"fmt"

	"github.com/tierchaos/tierchaos/harness/netfault"
)

// Network fault kinds (Toxiproxy, on tierd's path to S3).
const (
	KindNetLatency   = "net.latency"
	KindNetBandwidth = "net.bandwidth"
	KindNetTimeout   = "net.timeout"
	KindNetResetPeer = "net.reset_peer"
	KindNetLimitData = "net.limit_data"
	KindNetSlowClose = "net.slow_close"
	KindNetSlicer    = "net.slicer"
	KindNetDown      = "net.down"
)

// Net is a TCP fault on tierd's S3 path, made of one Toxiproxy toxic (or
// the proxy taken down). Which fields apply depends on the toxic:
//
//	latency:    Latency, Jitter
//	bandwidth:  RateKBps
//	timeout:    Timeout (0: the connection stalls until removed)
//	reset_peer: Timeout (the reset comes after it)
//	limit_data: Bytes
//	slow_close: Delay
//	slicer:     AvgSize, SizeVariation, Delay
//	down:       none
//
// Upstream makes the toxic act on tierd's requests instead of MinIO's
// answers; Toxicity (0: 1) is the share of connections affected.
type Net struct {
	Toxic         string   `json:"-"`
	Latency       Duration `json:"latency,omitempty"`
	Jitter        Duration `json:"jitter,omitempty"`
	RateKBps      int64    `json:"rate_kbps,omitempty"`
	Timeout       Duration `json:"timeout,omitempty"`
	Bytes         int64    `json:"bytes,omitempty"`
	Delay         Duration `json:"delay,omitempty"`
	AvgSize       int      `json:"avg_size,omitempty"`
	SizeVariation int      `json:"size_variation,omitempty"`
	Upstream      bool     `json:"upstream,omitempty"`
	Toxicity      float64  `json:"toxicity,omitempty"`
}

// Kind is "net." followed by the toxic.
func (n Net) Kind() string { return "net." + n.Toxic }

// Family is FamilyNet.
func (Net) Family() Family { return FamilyNet }

// directed is a netfault toxic with its direction and toxicity setters.
type directed[T any] interface {
	netfault.Toxic
	Upstream() T
	Toxicity(p float64) T
}

// shaped applies the fault's direction and toxicity to a toxic.
func shaped[T directed[T]](t T, upstream bool, toxicity float64) netfault.Toxic {
	if upstream {
		t = t.Upstream()
	}
	if toxicity > 0 {
		t = t.Toxicity(toxicity)
	}
	return t
}

// toxic builds the netfault toxic; down has none.
func (n Net) toxic() (netfault.Toxic, error) {
	var t netfault.Toxic
	switch n.Toxic {
	case "latency":
		t = shaped(netfault.Latency(n.Latency.D()).Jitter(n.Jitter.D()), n.Upstream, n.Toxicity)
	case "bandwidth":
		t = shaped(netfault.Bandwidth(n.RateKBps), n.Upstream, n.Toxicity)
	case "timeout":
		t = shaped(netfault.Timeout(n.Timeout.D()), n.Upstream, n.Toxicity)
	case "reset_peer":
		t = shaped(netfault.ResetPeer(n.Timeout.D()), n.Upstream, n.Toxicity)
	case "limit_data":
		t = shaped(netfault.LimitData(n.Bytes), n.Upstream, n.Toxicity)
	case "slow_close":
		t = shaped(netfault.SlowClose(n.Delay.D()), n.Upstream, n.Toxicity)
	case "slicer":
		t = shaped(netfault.Slicer(n.AvgSize, n.SizeVariation, n.Delay.D()), n.Upstream, n.Toxicity)
	case "down":
		return nil, nil
	default:
		return nil, &Error{Code: CodeUnknownKind, Kind: n.Kind(), Msg: "unknown toxic"}
	}
	if err := t.Validate(); err != nil {
		return nil, &Error{Code: CodeBadParameter, Kind: n.Kind(), Msg: "toxic", Err: err}
	}
	return t, nil
}

// Validate checks the toxic's parameters (netfault's own validation).
func (n Net) Validate() error {
	if n.Toxicity < 0 || n.Toxicity > 1 {
		return invalid(n.Kind(), "toxicity %v outside [0, 1]", n.Toxicity)
	}
	_, err := n.toxic()
	return err
}

// String describes the fault.
func (n Net) String() string {
	t, err := n.toxic()
	if err != nil {
		return n.Kind() + " (invalid)"
	}
	if t == nil {
		return "net.down"
	}
	return "net." + t.String()
}

// Apply adds the toxic to tierd's S3 proxy (dropping kept-alive
// connections so it is in effect at once), or takes the proxy down.
func (n Net) Apply(ctx context.Context, s Stack) (Active, error) {
	t, err := n.toxic()
	if err != nil {
		return nil, err
	}
	var f *netfault.Fault
	if t == nil {
		f, err = s.Core().Net.Down(ctx)
	} else {
		f, err = s.Core().Net.Apply(ctx, t)
	}
	if err != nil {
		return nil, fmt.Errorf("fault %s: %w", n.Kind(), err)
	}
	return f, nil
}
