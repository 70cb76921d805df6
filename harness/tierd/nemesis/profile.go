package nemesis

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/profiling"
)

// Growth gates of tierd's profiles between the start of the traffic and
// the end of the settled run.
const (
	// maxHeapGrowth and heapSlack: the in-use heap may grow by this share,
	// or by heapSlack bytes, whichever is larger.
	maxHeapGrowth = 0.5
	heapSlack     = 16 << 20
	// maxGoroutineGrowth: goroutines left over after the run settled.
	maxGoroutineGrowth = 50
	// maxCPUWindow caps one phase's CPU profile.
	maxCPUWindow = 10 * time.Second
)

// ProfileReport is what the profiles of a run show.
type ProfileReport struct {
	HeapStart       int64               `json:"heap_start"`
	HeapEnd         int64               `json:"heap_end"`
	GoroutinesStart int64               `json:"goroutines_start"`
	GoroutinesEnd   int64               `json:"goroutines_end"`
	CPU             map[string][]string `json:"cpu_hotspots"`
	Files           []string            `json:"files"`
	Errors          []string            `json:"errors,omitempty"`
}

// profiler takes tierd's profiles during a run: CPU per phase (one window
// at a time, as pprof allows), heap and goroutines at start and end.
type profiler struct {
	s   *tierd.Stack
	dir string
	log *slog.Logger

	mu   sync.Mutex
	busy bool
	wg   sync.WaitGroup
	rep  ProfileReport
}

func newProfiler(s *tierd.Stack, dir string, log *slog.Logger) *profiler {
	return &profiler{s: s, dir: dir, log: log, rep: ProfileReport{CPU: map[string][]string{}}}
}

func (p *profiler) client() (*profiling.Client, error) {
	u, err := p.s.DebugURL()
	if err != nil {
		return nil, err
	}
	return profiling.New(u+"/debug/pprof", p.dir, nil)
}

func (p *profiler) fail(what string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rep.Errors = append(p.rep.Errors, fmt.Sprintf("%s: %v", what, err))
}

// snapshot takes heap and goroutine profiles labelled "start" or "end".
func (p *profiler) snapshot(ctx context.Context, label string) {
	if label == "end" {
		p.wg.Wait()
	}
	c, err := p.client()
	if err != nil {
		p.fail(label, err)
		return
	}
	h, err := c.HeapProfile(ctx, "heap-"+label)
	if err != nil {
		p.fail("heap-"+label, err)
		return
	}
	g, err := c.GoroutineProfile(ctx, "goroutine-"+label)
	if err != nil {
		p.fail("goroutine-"+label, err)
		return
	}
	heap, herr := profiling.Total(h.Profile, "inuse_space")
	gor, gerr := workGoroutines(g.Profile)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rep.Files = append(p.rep.Files, h.Path, g.Path)
	if herr != nil || gerr != nil {
		p.rep.Errors = append(p.rep.Errors, fmt.Sprintf("%s totals: %v %v", label, herr, gerr))
		return
	}
	if label == "start" {
		p.rep.HeapStart, p.rep.GoroutinesStart = heap, gor
	} else {
		p.rep.HeapEnd, p.rep.GoroutinesEnd = heap, gor
	}
}

// cpu starts a CPU profile of the phase named name for d (capped), unless
// one is running.
func (p *profiler) cpu(ctx context.Context, name string, d time.Duration) {
	d = min(d, maxCPUWindow)
	if d < time.Second {
		return
	}
	p.mu.Lock()
	if p.busy {
		p.mu.Unlock()
		return
	}
	p.busy = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { p.mu.Lock(); p.busy = false; p.mu.Unlock() }()
		c, err := p.client()
		if err != nil {
			p.fail("cpu-"+name, err)
			return
		}
		cp, err := c.CPUProfile(ctx, d, "cpu-"+name)
		if err != nil {
			p.fail("cpu-"+name, err) // tierd killed under the profile: expected now and then
			return
		}
		top, err := profiling.Top(cp.Profile, "cpu", 5)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.rep.Files = append(p.rep.Files, cp.Path)
		if err == nil {
			for _, f := range top {
				p.rep.CPU[name] = append(p.rep.CPU[name], fmt.Sprintf("%s %.1f%%", f.Name, 100*f.FlatPct/100))
			}
		}
	}()
}

func (p *profiler) report() *ProfileReport {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rep
	return &r
}

// findings gates heap and goroutine growth.
func (p *profiler) findings() []Finding { return profileFindings(p.report()) }

// profileFindings gates a report's heap and goroutine growth.
func profileFindings(r *ProfileReport) []Finding {
	var out []Finding
	if r.HeapStart > 0 && r.HeapEnd > 0 {
		limit := max(int64(float64(r.HeapStart)*(1+maxHeapGrowth)), r.HeapStart+heapSlack)
		if r.HeapEnd > limit {
			out = append(out, Finding{Check: "profile", Message: fmt.Sprintf("tierd's in-use heap grew from %d to %d bytes (limit %d)", r.HeapStart, r.HeapEnd, limit)})
		}
	}
	if r.GoroutinesStart > 0 && r.GoroutinesEnd > r.GoroutinesStart+maxGoroutineGrowth {
		out = append(out, Finding{Check: "profile", Message: fmt.Sprintf("tierd's goroutines grew from %d to %d after the run settled", r.GoroutinesStart, r.GoroutinesEnd)})
	}
	return out
}

// workGoroutines counts a goroutine profile's goroutines, less those of
// kept-alive HTTP connections.
func workGoroutines(p *profile.Profile) (int64, error) {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "goroutine" {
			idx = i
		}
	}
	if idx < 0 {
		return 0, fmt.Errorf("nemesis: goroutine profile without goroutine samples")
	}
	// Goroutines of kept-alive HTTP connections (tierd's side and, in
	// process, the client's) follow how many idle connections the
	// traffic's pool keeps: not a leak.
	connFuncs := []string{"net/http.(*conn).serve", "net/http.(*persistConn).readLoop", "net/http.(*persistConn).writeLoop"}
	var n int64
	for _, s := range p.Sample {
		if !onStack(s, connFuncs) {
			n += s.Value[idx]
		}
	}
	return n, nil
}

func onStack(s *profile.Sample, funcs []string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil && slices.Contains(funcs, l.Function.Name) {
				return true
			}
		}
	}
	return false
}
