// Package hist wraps an HDR histogram of durations: recording, merging,
// percentile summaries and a compact serialised form that can be stored in a
// report and merged later across runs and machines.
package hist

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

const (
	// Lowest is the smallest duration the histogram tells apart (1 µs).
	Lowest = time.Microsecond
	// Highest is the largest duration recorded exactly; larger values are
	// clamped to it and counted in Histogram.Clamped.
	Highest = time.Hour
	// SignificantDigits is the relative precision of recorded values
	// (3 digits: values are exact to within 0.1%).
	SignificantDigits = 3
)

// ErrDecode is returned (wrapped) when a serialised histogram cannot be read.
var ErrDecode = errors.New("hist: cannot decode histogram")

// Histogram records durations with microsecond resolution. It is not safe for
// concurrent use; callers shard or lock.
type Histogram struct {
	h       *hdr.Histogram
	clamped int64
}

// New returns an empty histogram covering Lowest..Highest.
func New() *Histogram {
	return &Histogram{h: hdr.New(int64(Lowest/time.Microsecond), int64(Highest/time.Microsecond), SignificantDigits)}
}

// Record adds one duration. Values below 1 µs count as 1 µs; values above
// Highest are clamped and counted as clamped.
func (h *Histogram) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < 1 {
		us = 1
	}
	if us > int64(Highest/time.Microsecond) {
		us = int64(Highest / time.Microsecond)
		h.clamped++
	}
	// The value is within range by construction, so RecordValue cannot fail.
	_ = h.h.RecordValue(us)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Clamped returns how many recorded values exceeded Highest.
func (h *Histogram) Clamped() int64 { return h.clamped }

// Merge adds every value of other into h.
func (h *Histogram) Merge(other *Histogram) {
	if other == nil {
		return
	}
	h.h.Merge(other.h)
	h.clamped += other.clamped
}

// Reset empties the histogram.
func (h *Histogram) Reset() {
	h.h.Reset()
	h.clamped = 0
}

// Clone returns an independent copy.
func (h *Histogram) Clone() *Histogram {
	return &Histogram{h: h.h.Clone(), clamped: h.clamped}
}

// Quantile returns the value at percentile p (0..100).
func (h *Histogram) Quantile(p float64) time.Duration {
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Max returns the largest recorded value (to histogram precision).
func (h *Histogram) Max() time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Max()) * time.Microsecond
}

// Summary is the fixed set of statistics reported for a latency distribution.
type Summary struct {
	Count int64         `json:"count"`
	Min   time.Duration `json:"min"`
	Mean  time.Duration `json:"mean"`
	P50   time.Duration `json:"p50"`
	P90   time.Duration `json:"p90"`
	P95   time.Duration `json:"p95"`
	P99   time.Duration `json:"p99"`
	P999  time.Duration `json:"p999"`
	Max   time.Duration `json:"max"`
}

// Summary computes the standard percentiles in one pass.
func (h *Histogram) Summary() Summary {
	if h.h.TotalCount() == 0 {
		return Summary{}
	}
	v := h.h.ValueAtPercentilesSlice([]float64{50, 90, 95, 99, 99.9})
	us := func(x int64) time.Duration { return time.Duration(x) * time.Microsecond }
	return Summary{
		Count: h.h.TotalCount(),
		Min:   us(h.h.Min()),
		Mean:  time.Duration(h.h.Mean() * float64(time.Microsecond)),
		P50:   us(v[0]),
		P90:   us(v[1]),
		P95:   us(v[2]),
		P99:   us(v[3]),
		P999:  us(v[4]),
		Max:   us(h.h.Max()),
	}
}

// Encode returns the histogram in the standard HdrHistogram V2 compressed,
// base64 form, readable by any HdrHistogram implementation.
func (h *Histogram) Encode() (string, error) {
	b, err := h.h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("hist: encode: %w", err)
	}
	return string(b), nil
}

// Decode reads a histogram produced by Encode (or another HdrHistogram
// implementation recording microseconds).
func Decode(s string) (*Histogram, error) {
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return &Histogram{h: h}, nil
}

// MarshalJSON encodes the histogram as a JSON string (see Encode).
func (h *Histogram) MarshalJSON() ([]byte, error) {
	s, err := h.Encode()
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// UnmarshalJSON decodes a histogram written by MarshalJSON.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err)
	}
	d, err := Decode(s)
	if err != nil {
		return err
	}
	*h = *d
	return nil
}
