package netfault

import (
	"errors"
	"math"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		toxic Toxic
		code  ErrorCode
		field string
	}{
		{"negative latency", Latency(-time.Millisecond), CodeNegativeDuration, "latency"},
		{"negative jitter", Latency(time.Second).Jitter(-time.Millisecond), CodeNegativeDuration, "jitter"},
		{"sub-ms latency", Latency(1500 * time.Microsecond), CodeDurationPrecision, "latency"},
		{"jitter above latency", Latency(10 * time.Millisecond).Jitter(11 * time.Millisecond), CodeJitterExceedsLatency, "jitter"},
		{"toxicity above 1", Latency(time.Second).Toxicity(1.5), CodeToxicityRange, "toxicity"},
		{"toxicity below 0", Bandwidth(1).Toxicity(-0.1), CodeToxicityRange, "toxicity"},
		{"toxicity NaN", Timeout(0).Toxicity(math.NaN()), CodeToxicityRange, "toxicity"},
		{"zero bandwidth", Bandwidth(0), CodeNonPositive, "rate"},
		{"negative bandwidth", Bandwidth(-5), CodeNonPositive, "rate"},
		{"negative timeout", Timeout(-time.Second), CodeNegativeDuration, "timeout"},
		{"sub-ms timeout", Timeout(time.Microsecond), CodeDurationPrecision, "timeout"},
		{"negative reset", ResetPeer(-time.Second).Upstream(), CodeNegativeDuration, "after"},
		{"negative limit", LimitData(-1), CodeNegativeSize, "bytes"},
		{"negative slow close", SlowClose(-time.Millisecond), CodeNegativeDuration, "delay"},
		{"zero slicer size", Slicer(0, 0, 0), CodeNonPositive, "average_size"},
		{"negative slicer variation", Slicer(10, -1, 0), CodeNegativeSize, "size_variation"},
		{"slicer variation not below size", Slicer(10, 10, 0), CodeVariationTooLarge, "size_variation"},
		{"negative slicer delay", Slicer(10, 1, -time.Microsecond), CodeNegativeDuration, "delay"},
		{"sub-µs slicer delay", Slicer(10, 1, 1500*time.Nanosecond), CodeDurationPrecision, "delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.toxic.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			require.False(t, errors.Is(err, ErrToxiproxy))
			var ne *Error
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, tc.code, ne.Code)
			assert.Equal(t, tc.field, ne.Field)
			assert.Equal(t, tc.toxic.Type(), ne.Toxic)
			assert.Contains(t, err.Error(), string(tc.code))
		})
	}
}

func TestSpecIsWhatToxiproxyTakes(t *testing.T) {
	for _, tc := range []struct {
		toxic    Toxic
		typ      string
		stream   Direction
		toxicity float32
		attrs    toxiproxy.Attributes
		str      string
	}{
		{Latency(200 * time.Millisecond).Jitter(50 * time.Millisecond), "latency", Downstream, 1,
			toxiproxy.Attributes{"latency": int64(200), "jitter": int64(50)}, "latency 200ms±50ms downstream"},
		{Latency(time.Second).Upstream().Toxicity(0.25), "latency", Upstream, 0.25,
			toxiproxy.Attributes{"latency": int64(1000), "jitter": int64(0)}, "latency 1s upstream toxicity=0.25"},
		{Bandwidth(64).Upstream().Downstream(), "bandwidth", Downstream, 1,
			toxiproxy.Attributes{"rate": int64(64)}, "bandwidth 64KB/s downstream"},
		{Timeout(0).Upstream(), "timeout", Upstream, 1,
			toxiproxy.Attributes{"timeout": int64(0)}, "timeout forever upstream"},
		{Timeout(2 * time.Second).Toxicity(0), "timeout", Downstream, 0,
			toxiproxy.Attributes{"timeout": int64(2000)}, "timeout 2s downstream toxicity=0"},
		{ResetPeer(30 * time.Millisecond), "reset_peer", Downstream, 1,
			toxiproxy.Attributes{"timeout": int64(30)}, "reset_peer after 30ms downstream"},
		{LimitData(1024).Upstream(), "limit_data", Upstream, 1,
			toxiproxy.Attributes{"bytes": int64(1024)}, "limit_data 1024B upstream"},
		{SlowClose(100 * time.Millisecond), "slow_close", Downstream, 1,
			toxiproxy.Attributes{"delay": int64(100)}, "slow_close 100ms downstream"},
		{Slicer(100, 10, 250*time.Microsecond), "slicer", Downstream, 1,
			toxiproxy.Attributes{"average_size": 100, "size_variation": 10, "delay": int64(250)}, "slicer 100±10B every 250µs downstream"},
	} {
		t.Run(tc.str, func(t *testing.T) {
			require.NoError(t, tc.toxic.Validate())
			s := tc.toxic.spec()
			assert.Equal(t, tc.typ, s.typ)
			assert.Equal(t, tc.typ, tc.toxic.Type())
			assert.Equal(t, tc.stream, s.stream)
			assert.Equal(t, tc.stream, tc.toxic.Stream())
			assert.Equal(t, tc.toxicity, s.toxicity)
			assert.Equal(t, tc.attrs, s.attrs)
			assert.Equal(t, tc.str, tc.toxic.String())
		})
	}
}

func TestBuildersReturnCopies(t *testing.T) {
	base := Latency(100 * time.Millisecond)
	_ = base.Jitter(10 * time.Millisecond).Upstream().Toxicity(0.5)
	assert.Equal(t, "latency 100ms downstream", base.String())
}
