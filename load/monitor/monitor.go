// Package monitor samples a target's resource use (CPU, resident memory,
// goroutines) every second into memory and a CSV file. Samplers read a
// local process through gopsutil or a container from the Docker stats API; the
// goroutine count comes from the target's pprof or Prometheus endpoint.
package monitor

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// ErrSample is returned (wrapped) when a sample cannot be read.
var ErrSample = errors.New("monitor: cannot sample")

// Raw is one reading: cumulative CPU time and current memory.
type Raw struct {
	// CPU is the target's cumulative CPU time (user + system).
	CPU time.Duration
	// RSS is its resident memory in bytes.
	RSS uint64
}

// Sampler reads CPU and memory of a target.
type Sampler interface {
	// Name describes the source ("proc:1234", "docker:tierd-abc").
	Name() string
	Sample(ctx context.Context) (Raw, error)
}

// GoroutineCounter reads the target's current number of goroutines.
type GoroutineCounter interface {
	Goroutines(ctx context.Context) (int, error)
}

// Sample is one row of the monitor's output.
type Sample struct {
	// At is the offset from the monitor's start.
	At time.Duration
	// CPU is the average CPU use since the previous sample, in cores
	// (1.0 = one core fully busy).
	CPU float64
	RSS uint64
	// Goroutines is -1 when not measured.
	Goroutines int
}

// Monitor samples periodically.
type Monitor struct {
	s      Sampler
	g      GoroutineCounter
	every  time.Duration
	csv    *csv.Writer
	logger *slog.Logger

	mu      sync.Mutex
	samples []Sample
	errs    int
}

// Options configures a Monitor.
type Options struct {
	// Every is the sampling period (default 1 s).
	Every time.Duration
	// Goroutines, if set, adds the goroutine count to each sample.
	Goroutines GoroutineCounter
	// CSV, if set, receives one row per sample (with a header).
	CSV io.Writer
	// Logger receives sampling errors (default slog.Default()).
	Logger *slog.Logger
}

// New returns a monitor of s.
func New(s Sampler, o Options) *Monitor {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Monitor{s: s, g: o.Goroutines, every: o.Every, logger: o.Logger}
	if o.CSV != nil {
		m.csv = csv.NewWriter(o.CSV)
	}
	return m
}

// CSVHeader is the first row of the CSV output.
var CSVHeader = []string{"t_s", "cpu_pct", "rss_bytes", "goroutines"}

// Run samples until ctx ends. It returns an error only if the first
// reading fails (the target is unreachable); later failures are logged,
// counted and skipped.
func (m *Monitor) Run(ctx context.Context) error {
	start := time.Now()
	prev, err := m.s.Sample(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSample, m.s.Name(), err)
	}
	prevAt := time.Now()
	if m.csv != nil {
		if err := m.csv.Write(CSVHeader); err != nil {
			return fmt.Errorf("monitor: write csv: %w", err)
		}
		m.csv.Flush()
	}
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		raw, err := m.s.Sample(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.mu.Lock()
			m.errs++
			m.mu.Unlock()
			m.logger.Warn("monitor: sample failed", "source", m.s.Name(), "err", err)
			continue
		}
		s := Sample{At: now.Sub(start), RSS: raw.RSS, Goroutines: -1}
		if wall := now.Sub(prevAt); wall > 0 && raw.CPU >= prev.CPU {
			s.CPU = float64(raw.CPU-prev.CPU) / float64(wall)
		}
		if m.g != nil {
			if n, err := m.g.Goroutines(ctx); err == nil {
				s.Goroutines = n
			} else if ctx.Err() == nil {
				m.logger.Warn("monitor: goroutine count failed", "err", err)
			}
		}
		prev, prevAt = raw, now
		m.add(s)
	}
}

func (m *Monitor) add(s Sample) {
	m.mu.Lock()
	m.samples = append(m.samples, s)
	m.mu.Unlock()
	if m.csv != nil {
		_ = m.csv.Write([]string{
			strconv.FormatFloat(s.At.Seconds(), 'f', 3, 64),
			strconv.FormatFloat(100*s.CPU, 'f', 2, 64),
			strconv.FormatUint(s.RSS, 10),
			strconv.Itoa(s.Goroutines),
		})
		m.csv.Flush()
	}
}

// Samples returns a copy of the samples so far.
func (m *Monitor) Samples() []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Sample(nil), m.samples...)
}

// Errors returns how many samples failed.
func (m *Monitor) Errors() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errs
}

// Summary aggregates samples.
type Summary struct {
	Source                       string
	Samples                      int
	CPUAvg, CPUMax               float64
	RSSStart, RSSEnd, RSSMax     uint64
	GoroutinesMax, GoroutinesEnd int
}

// Summarize aggregates the samples taken at or after from (0: all).
func (m *Monitor) Summarize(from time.Duration) Summary {
	return Summarize(m.s.Name(), m.Samples(), from)
}

// Summarize aggregates the samples at or after from.
func Summarize(source string, samples []Sample, from time.Duration) Summary {
	s := Summary{Source: source, GoroutinesMax: -1, GoroutinesEnd: -1}
	var cpu float64
	for _, x := range samples {
		if x.At < from {
			continue
		}
		if s.Samples == 0 {
			s.RSSStart = x.RSS
		}
		s.Samples++
		cpu += x.CPU
		s.CPUMax = max(s.CPUMax, x.CPU)
		s.RSSMax = max(s.RSSMax, x.RSS)
		s.RSSEnd = x.RSS
		if x.Goroutines >= 0 {
			s.GoroutinesMax = max(s.GoroutinesMax, x.Goroutines)
			s.GoroutinesEnd = x.Goroutines
		}
	}
	if s.Samples > 0 {
		s.CPUAvg = cpu / float64(s.Samples)
	}
	return s
}
