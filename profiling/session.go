package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// Plan schedules captures over a run that starts when Start is called.
type Plan struct {
	// WarmUp is when the base heap and goroutine profiles are taken.
	WarmUp time.Duration
	// Duration is the run's length; CPU windows end before it.
	Duration time.Duration
	// CPUWindow is the length of each CPU profile (default 10 s).
	CPUWindow time.Duration
	// CPUEvery starts a CPU window this often after warm-up (default 60 s).
	CPUEvery time.Duration
	// Top is how many hotspots and heap growers to report (default 15).
	Top int
	// NoContention skips the block and mutex windows that otherwise run
	// alongside every CPU window.
	NoContention bool
}

func (p Plan) withDefaults() Plan {
	if p.CPUWindow <= 0 {
		p.CPUWindow = 10 * time.Second
	}
	if p.CPUEvery <= 0 {
		p.CPUEvery = time.Minute
	}
	if p.Top <= 0 {
		p.Top = 15
	}
	return p
}

// Summary is the analysis of a session's profiles.
type Summary struct {
	// HeapBase and HeapEnd are in-use heap bytes after warm-up and at the end.
	HeapBase, HeapEnd int64
	// HeapGrowth is HeapEnd/HeapBase - 1.
	HeapGrowth float64
	// GoroutinesBase and GoroutinesEnd count goroutines at the same moments.
	GoroutinesBase, GoroutinesEnd int64
	// CPUHotspots are the top functions over all CPU windows.
	CPUHotspots []Func
	// BlockHotspots and MutexHotspots are the top sites by time spent
	// blocked / waiting on contended locks over all windows (sample type
	// "delay", nanoseconds; flat charged to the first frame outside the
	// runtime and sync packages, see TopSites).
	BlockHotspots, MutexHotspots []Func
	// BlockDelay and MutexDelay are the windows' total waiting time in
	// nanoseconds (0 when the target records none: its rate is 0).
	BlockDelay, MutexDelay int64
	// HeapGrowthBy are the functions whose in-use heap grew most.
	HeapGrowthBy []Delta
	// Files are all saved .pb.gz paths.
	Files []string
	// Errors lists captures that failed (the run goes on without them).
	Errors []string
}

// Session captures profiles along a Plan.
type Session struct {
	c      *Client
	plan   Plan
	logger *slog.Logger
	start  time.Time
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	base  map[Kind]*Capture
	cpu   []*profile.Profile
	block []*profile.Profile
	mutex []*profile.Profile
	files []string
	errs  []string
}

// Start begins the plan's captures in the background.
func (c *Client) Start(ctx context.Context, plan Plan, logger *slog.Logger) *Session {
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{c: c, plan: plan.withDefaults(), logger: logger, start: time.Now(), cancel: cancel,
		done: make(chan struct{}), base: map[Kind]*Capture{}}
	go func() {
		defer close(s.done)
		s.loop(ctx)
	}()
	return s
}

func (s *Session) loop(ctx context.Context) {
	if !s.sleepUntil(ctx, s.plan.WarmUp) {
		return
	}
	s.record(s.c.HeapProfile(ctx, "heap-base"))
	s.record(s.c.GoroutineProfile(ctx, "goroutine-base"))
	for i := 0; ; i++ {
		at := s.plan.WarmUp + time.Duration(i)*s.plan.CPUEvery
		if at+s.plan.CPUWindow > s.plan.Duration {
			return
		}
		if !s.sleepUntil(ctx, at) {
			return
		}
		s.window(ctx, i)
	}
}

// window records CPU for one window, with block and mutex profiles over
// the same span unless the plan says not to.
func (s *Session) window(ctx context.Context, i int) {
	var wg sync.WaitGroup
	if !s.plan.NoContention {
		wg.Go(func() { s.record(s.c.BlockProfile(ctx, s.plan.CPUWindow, fmt.Sprintf("block-%02d", i))) })
		wg.Go(func() { s.record(s.c.MutexProfile(ctx, s.plan.CPUWindow, fmt.Sprintf("mutex-%02d", i))) })
	}
	s.record(s.c.CPUProfile(ctx, s.plan.CPUWindow, fmt.Sprintf("cpu-%02d", i)))
	wg.Wait()
}

func (s *Session) sleepUntil(ctx context.Context, at time.Duration) bool {
	d := time.Until(s.start.Add(at))
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Session) record(c *Capture, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.logger.Warn("profiling: capture failed", "err", err)
			s.errs = append(s.errs, err.Error())
		}
		return
	}
	s.files = append(s.files, c.Path)
	switch c.Kind {
	case CPU:
		s.cpu = append(s.cpu, c.Profile)
	case Block:
		s.block = append(s.block, c.Profile)
	case Mutex:
		s.mutex = append(s.mutex, c.Profile)
	case Heap, Goroutine:
		if _, ok := s.base[c.Kind]; !ok {
			s.base[c.Kind] = c
		}
	}
}

// Finish waits for the scheduled captures (cancelling any still running
// after ctx ends), takes the end heap and goroutine profiles, and analyses
// everything.
func (s *Session) Finish(ctx context.Context) (*Summary, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
	}
	s.cancel()
	heapEnd, herr := s.c.HeapProfile(ctx, "heap-end")
	s.record(heapEnd, herr)
	gEnd, gerr := s.c.GoroutineProfile(ctx, "goroutine-end")
	s.record(gEnd, gerr)

	s.mu.Lock()
	defer s.mu.Unlock()
	sum := &Summary{Files: append([]string(nil), s.files...), Errors: append([]string(nil), s.errs...)}
	if herr != nil {
		return sum, fmt.Errorf("profiling: end heap profile: %w", herr)
	}
	var err error
	if sum.HeapEnd, err = Total(heapEnd.Profile, "inuse_space"); err != nil {
		return sum, err
	}
	if gerr == nil {
		sum.GoroutinesEnd, _ = Total(gEnd.Profile, "")
	}
	if g := s.base[Goroutine]; g != nil {
		sum.GoroutinesBase, _ = Total(g.Profile, "")
	}
	if hb := s.base[Heap]; hb != nil {
		if sum.HeapBase, err = Total(hb.Profile, "inuse_space"); err != nil {
			return sum, err
		}
		if sum.HeapBase > 0 {
			sum.HeapGrowth = float64(sum.HeapEnd)/float64(sum.HeapBase) - 1
		}
		if sum.HeapGrowthBy, err = Growth(hb.Profile, heapEnd.Profile, "inuse_space", s.plan.Top); err != nil {
			return sum, err
		}
	}
	if len(s.cpu) > 0 {
		merged, err := Merge(s.cpu...)
		if err != nil {
			return sum, err
		}
		if sum.CPUHotspots, err = Top(merged, "cpu", s.plan.Top); err != nil {
			return sum, err
		}
	}
	if sum.BlockHotspots, sum.BlockDelay, err = contention(s.block, s.plan.Top); err != nil {
		return sum, fmt.Errorf("profiling: block profiles: %w", err)
	}
	if sum.MutexHotspots, sum.MutexDelay, err = contention(s.mutex, s.plan.Top); err != nil {
		return sum, fmt.Errorf("profiling: mutex profiles: %w", err)
	}
	return sum, nil
}

// HasBase reports whether the warm-up heap profile was taken (heap growth
// is only meaningful then).
func (s *Summary) HasBase() bool { return s.HeapBase > 0 }

// contention merges block or mutex windows and returns their top functions
// by waiting time and the total waiting time.
func contention(ps []*profile.Profile, n int) ([]Func, int64, error) {
	if len(ps) == 0 {
		return nil, 0, nil
	}
	merged, err := Merge(ps...)
	if err != nil {
		return nil, 0, err
	}
	dropProfiler(merged)
	total, err := Total(merged, ContentionSampleType)
	if err != nil {
		return nil, 0, err
	}
	if total == 0 {
		return nil, 0, nil
	}
	top, err := TopSites(merged, ContentionSampleType, n)
	return top, total, err
}

// dropProfiler removes the samples of the profile endpoint itself (a
// /block?seconds=N request sleeps for its window inside net/http/pprof),
// which would otherwise rank among the block hotspots of every run.
func dropProfiler(p *profile.Profile) {
	kept := p.Sample[:0]
	for _, s := range p.Sample {
		if !inPackage(s, "net/http/pprof.") {
			kept = append(kept, s)
		}
	}
	p.Sample = kept
}

func inPackage(s *profile.Sample, prefix string) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && strings.HasPrefix(line.Function.Name, prefix) {
				return true
			}
		}
	}
	return false
}
