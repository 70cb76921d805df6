package hist

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func within(t *testing.T, want, got time.Duration) {
	t.Helper()
	tol := want / 1000 // 3 significant digits
	if tol < time.Microsecond {
		tol = time.Microsecond
	}
	assert.InDelta(t, float64(want), float64(got), float64(tol), "want %v got %v", want, got)
}

func TestSummaryPercentiles(t *testing.T) {
	h := New()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summary()
	require.Equal(t, int64(1000), s.Count)
	tests := []struct {
		name      string
		got, want time.Duration
	}{
		{"min", s.Min, time.Millisecond},
		{"p50", s.P50, 500 * time.Millisecond},
		{"p90", s.P90, 900 * time.Millisecond},
		{"p95", s.P95, 950 * time.Millisecond},
		{"p99", s.P99, 990 * time.Millisecond},
		{"p999", s.P999, 999 * time.Millisecond},
		{"max", s.Max, 1000 * time.Millisecond},
		{"mean", s.Mean, 500500 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { within(t, tt.want, tt.got) })
	}
}

func TestClampAndFloor(t *testing.T) {
	h := New()
	h.Record(2 * Highest)
	h.Record(0)
	assert.Equal(t, int64(1), h.Clamped())
	assert.Equal(t, int64(2), h.Count())
	within(t, Highest, h.Max())
	assert.Equal(t, time.Microsecond, h.Summary().Min)
}

func TestMergeAndRoundTrip(t *testing.T) {
	a, b := New(), New()
	for i := 0; i < 100; i++ {
		a.Record(time.Millisecond)
		b.Record(time.Second)
	}
	enc, err := json.Marshal(b)
	require.NoError(t, err)
	var back Histogram
	require.NoError(t, json.Unmarshal(enc, &back))
	a.Merge(&back)
	assert.Equal(t, int64(200), a.Count())
	within(t, time.Millisecond, a.Quantile(50))
	within(t, time.Second, a.Quantile(51))

	c := a.Clone()
	a.Reset()
	assert.Equal(t, int64(0), a.Count())
	assert.Equal(t, int64(200), c.Count())
	assert.Equal(t, Summary{}, a.Summary())
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not base64", "!!!"},
		{"garbage", "aGVsbG8gd29ybGQ="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			require.ErrorIs(t, err, ErrDecode)
		})
	}
	var h Histogram
	require.ErrorIs(t, json.Unmarshal([]byte(`12`), &h), ErrDecode)
}
