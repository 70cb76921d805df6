package uploader

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseRetryAfterIsBounded: Retry-After values that are not plain
// decimal seconds or an HTTP date (NaN, Inf, exponents, hex) are refused,
// and huge ones are bounded, so that no value a server sends overflows a
// duration or asks for a wait of years. Regression: NaN, Inf and 1e300
// were accepted and converted to an arbitrary (negative) duration, and
// 9e9 seconds gave a wait of 285 years.
func TestParseRetryAfterIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"NaN", 0, false},
		{"nan", 0, false},
		{"Inf", 0, false},
		{"+Inf", 0, false},
		{"-Inf", 0, false},
		{"infinity", 0, false},
		{"0x10", 0, false},
		{"1e300", 0, false},
		{"9e9", 0, false},
		{"-0", 0, false},
		{"1.", 0, false},
		{"86400", maxRetryAfterHeader, true},
		{"9000000000", maxRetryAfterHeader, true},
		{strings.Repeat("9", 400), maxRetryAfterHeader, true},
		{"2.5", 2500 * time.Millisecond, true},
		{now.Add(10 * 365 * 24 * time.Hour).Format(http.TimeFormat), maxRetryAfterHeader, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			d, ok := parseRetryAfter(tc.in, now)
			require.Equal(t, tc.ok, ok, "accepted as %s", d)
			assert.Equal(t, tc.want, d)
		})
	}
}
