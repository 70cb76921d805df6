package monitor

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// halfCore pretends the target burns half a core and holds 1 MiB more per call.
type halfCore struct {
	start time.Time
	mu    sync.Mutex
	calls int
	fail  bool
}

func (h *halfCore) Name() string { return "fake" }
func (h *halfCore) Sample(context.Context) (Raw, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.fail {
		return Raw{}, ErrSample
	}
	return Raw{CPU: time.Since(h.start) / 2, RSS: uint64(h.calls) << 20}, nil
}

type fixedCount int

func (f fixedCount) Goroutines(context.Context) (int, error) { return int(f), nil }

// lockedBuffer is safe to read while the monitor writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMonitorRun(t *testing.T) {
	var out lockedBuffer
	m := New(&halfCore{start: time.Now()}, Options{Every: 20 * time.Millisecond, Goroutines: fixedCount(7), CSV: &out})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	require.Eventually(t, func() bool { return len(m.Samples()) >= 5 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	s := m.Summarize(0)
	assert.InDelta(t, 0.5, s.CPUAvg, 0.05)
	assert.Equal(t, 7, s.GoroutinesMax)
	assert.Equal(t, uint64(2<<20), s.RSSStart, "first sample after the baseline read")
	assert.Greater(t, s.RSSEnd, s.RSSStart)
	assert.Equal(t, s.RSSEnd, s.RSSMax)

	rows, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(rows), 6)
	assert.Equal(t, CSVHeader, rows[0])
	assert.Equal(t, "7", rows[1][3])

	all := m.Samples()
	last := m.Summarize(all[len(all)-1].At)
	assert.Equal(t, 1, last.Samples, "the window starts at the last sample")
}

func TestMonitorFirstSampleFailure(t *testing.T) {
	m := New(&halfCore{fail: true}, Options{})
	require.ErrorIs(t, m.Run(context.Background()), ErrSample)
}

func TestSummarizeWindow(t *testing.T) {
	samples := []Sample{
		{At: time.Second, CPU: 1, RSS: 10, Goroutines: 3},
		{At: 2 * time.Second, CPU: 0.5, RSS: 30, Goroutines: -1},
		{At: 3 * time.Second, CPU: 0, RSS: 20, Goroutines: 5},
	}
	tests := []struct {
		name string
		from time.Duration
		want Summary
	}{
		{"all", 0, Summary{Source: "x", Samples: 3, CPUAvg: 0.5, CPUMax: 1, RSSStart: 10, RSSEnd: 20, RSSMax: 30, GoroutinesMax: 5, GoroutinesEnd: 5}},
		{"after warm-up", 2 * time.Second, Summary{Source: "x", Samples: 2, CPUAvg: 0.25, CPUMax: 0.5, RSSStart: 30, RSSEnd: 20, RSSMax: 30, GoroutinesMax: 5, GoroutinesEnd: 5}},
		{"none", time.Minute, Summary{Source: "x", GoroutinesMax: -1, GoroutinesEnd: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, Summarize("x", samples, tt.from)) })
	}
}

func TestProcSamplesOwnProcess(t *testing.T) {
	p, err := NewProc(os.Getpid(), "")
	require.NoError(t, err)
	assert.Contains(t, p.Name(), "proc:")
	a, err := p.Sample(context.Background())
	require.NoError(t, err)
	assert.Greater(t, a.RSS, uint64(1<<20))
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) { //nolint:revive // burn CPU so the counter moves
	}
	b, err := p.Sample(context.Background())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, b.CPU, a.CPU)

}

func TestNewProcRejects(t *testing.T) {
	tests := []struct {
		name     string
		pid      int
		procRoot string
	}{
		{"no such process", 1 << 30, ""},
		{"zero", 0, ""},
		{"negative", -1, ""},
		{"beyond int32", 1 << 40, ""},
	}
	if runtime.GOOS == "linux" {
		tests = append(tests, struct {
			name     string
			pid      int
			procRoot string
		}{"proc root without this process", os.Getpid(), t.TempDir()})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewProc(tt.pid, tt.procRoot)
			require.ErrorIs(t, err, ErrSample)
		})
	}
}

func TestGoroutineCounters(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/empty", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# nothing\n")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		counter GoroutineCounter
		ok      bool
	}{
		{"pprof", PprofGoroutines{BaseURL: srv.URL + "/debug/pprof/"}, true},
		{"metrics", MetricsGoroutines{URL: srv.URL + "/metrics"}, true},
		{"metrics without gauge", MetricsGoroutines{URL: srv.URL + "/empty"}, false},
		{"pprof 404", PprofGoroutines{BaseURL: srv.URL + "/nope"}, false},
		{"pprof wrong content", PprofGoroutines{BaseURL: srv.URL + "/empty?"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := tt.counter.Goroutines(context.Background())
			if !tt.ok {
				require.ErrorIs(t, err, ErrSample)
				return
			}
			require.NoError(t, err)
			assert.Greater(t, n, 1)
		})
	}
}

func TestDockerSamplerAgainstFakeAPI(t *testing.T) {
	var calls int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/containers/tierd/stats") {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		assert.Equal(t, "false", r.URL.Query().Get("stream"), "one-shot stats")
		var st container.StatsResponse
		st.CPUStats.CPUUsage.TotalUsage = uint64(n) * uint64(time.Second)
		st.MemoryStats = container.MemoryStats{Usage: 100 << 20, Stats: map[string]uint64{"anon": 40 << 20}}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithAPIVersion("1.47"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })

	d := NewDocker(c, "tierd")
	assert.Equal(t, "docker:tierd", d.Name())
	a, err := d.Sample(context.Background())
	require.NoError(t, err)
	assert.Equal(t, time.Second, a.CPU)
	assert.Equal(t, uint64(40<<20), a.RSS)

	_, err = NewDocker(c, "missing").Sample(context.Background())
	require.ErrorIs(t, err, ErrSample)
}

func TestRSSFromCgroupStats(t *testing.T) {
	tests := []struct {
		name string
		m    container.MemoryStats
		want uint64
	}{
		{"v2 anon", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"anon": 40}}, 40},
		{"v1 rss", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"rss": 50}}, 50},
		{"usage minus cache", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 30}}, 70},
		{"cache above usage", container.MemoryStats{Usage: 10, Stats: map[string]uint64{"inactive_file": 30}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, rss(tt.m)) })
	}
}
