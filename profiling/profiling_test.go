package profiling

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pprofServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/junk/heap", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("not a profile")) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

//go:noinline
func retainChunks(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, 1<<20)
		out[i][0] = byte(i)
	}
	return out
}

//go:noinline
func spinUntil(stop <-chan struct{}) int {
	x := 0
	for {
		select {
		case <-stop:
			return x
		default:
		}
		for i := 0; i < 10000; i++ {
			x += i * i
		}
	}
}

func TestSessionCapturesAndAnalyses(t *testing.T) {
	srv := pprofServer(t)
	dir := t.TempDir()
	c, err := New(srv.URL+"/debug/pprof/", dir, nil)
	require.NoError(t, err)

	// The heap profile samples one allocation per 512 KiB on average: keep
	// 8 MiB live before the base profile so that its in-use total is not
	// zero by chance (which would leave the growth ratio undefined).
	baseline := retainChunks(8)
	stop := make(chan struct{})
	spun := make(chan int, 1)
	go func() { spun <- spinUntil(stop) }()

	s := c.Start(context.Background(), Plan{WarmUp: 100 * time.Millisecond, Duration: 1500 * time.Millisecond, CPUWindow: time.Second, CPUEvery: time.Minute}, nil)
	// Wait for the base profiles, then grow the heap in a known function.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "goroutine-base.pb.gz"))
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	kept := retainChunks(32)

	sum, err := s.Finish(context.Background())
	close(stop)
	<-spun
	require.NoError(t, err)
	runtime.KeepAlive(kept)
	runtime.KeepAlive(baseline)

	for _, f := range []string{"heap-base", "goroutine-base", "cpu-00", "block-00", "mutex-00", "heap-end", "goroutine-end"} {
		assert.FileExists(t, filepath.Join(dir, f+".pb.gz"))
	}
	assert.Len(t, sum.Files, 7)
	assert.Empty(t, sum.Errors)
	assert.Greater(t, sum.HeapEnd, sum.HeapBase+16<<20, "32 MiB retained")
	assert.Greater(t, sum.HeapGrowth, 0.0)
	require.NotEmpty(t, sum.HeapGrowthBy)
	assert.Contains(t, sum.HeapGrowthBy[0].Name, "retainChunks")
	assert.Greater(t, sum.GoroutinesEnd, int64(0))
	require.NotEmpty(t, sum.CPUHotspots)
	var names []string
	for _, h := range sum.CPUHotspots {
		names = append(names, h.Name)
	}
	assert.Contains(t, strings.Join(names, " "), "spinUntil")

	// Saved files are valid profiles for go tool pprof.
	f, err := os.Open(filepath.Join(dir, "cpu-00.pb.gz"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	_, err = profile.Parse(f)
	require.NoError(t, err)
}

//go:noinline
func holdLockWhileOthersWait(mu *sync.Mutex, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		mu.Lock()
		time.Sleep(2 * time.Millisecond)
		mu.Unlock()
	}
}

//go:noinline
func waitOnSlowChannel(ch <-chan int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ch:
		}
	}
}

// contend runs lock holders and channel waiters until stop closes.
func contend(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range 3 {
		wg.Go(func() { holdLockWhileOthersWait(&mu, stop) })
	}
	ch := make(chan int)
	wg.Go(func() { waitOnSlowChannel(ch, stop) })
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				select {
				case ch <- 1:
				case <-stop:
					return
				}
			}
		}
	})
	return &wg
}

// TestSessionCapturesContention: with block and mutex profiling on, the
// windows beside each CPU window name the function that holds a contended
// lock and the one that waits on a channel; with the rates at 0 (tierd's
// default) the same load leaves both empty.
func TestSessionCapturesContention(t *testing.T) {
	srv := pprofServer(t)
	run := func(t *testing.T, blockRate, mutexFraction int) *Summary {
		t.Helper()
		runtime.SetBlockProfileRate(blockRate)
		prev := runtime.SetMutexProfileFraction(mutexFraction)
		t.Cleanup(func() { runtime.SetBlockProfileRate(0); runtime.SetMutexProfileFraction(prev) })
		c, err := New(srv.URL+"/debug/pprof", t.TempDir(), nil)
		require.NoError(t, err)
		stop := make(chan struct{})
		wg := contend(stop)
		s := c.Start(context.Background(), Plan{Duration: 1500 * time.Millisecond, CPUWindow: time.Second, CPUEvery: time.Minute}, nil)
		sum, err := s.Finish(context.Background())
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		assert.Empty(t, sum.Errors)
		return sum
	}
	names := func(fs []Func) string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return strings.Join(out, " ")
	}

	t.Run("on", func(t *testing.T) {
		sum := run(t, 1, 1)
		assert.Positive(t, sum.BlockDelay)
		assert.Positive(t, sum.MutexDelay)
		// The site, not sync.(*Mutex).Unlock, tops the list.
		require.NotEmpty(t, sum.MutexHotspots)
		assert.Contains(t, sum.MutexHotspots[0].Name, "holdLockWhileOthersWait")
		assert.Contains(t, names(sum.BlockHotspots), "holdLockWhileOthersWait")
		assert.Contains(t, names(sum.BlockHotspots), "waitOnSlowChannel")
		// Blocking is charged to the waiting frame: the lock waiters and
		// the channel receiver both appear (by cum).
		all, err := Top(mustParse(t, sum.Files, "block-00"), ContentionSampleType, 0)
		require.NoError(t, err)
		assert.Contains(t, names(all), "waitOnSlowChannel")
		assert.Contains(t, names(all), "holdLockWhileOthersWait")
		require.NotEmpty(t, sum.BlockHotspots)
	})
	t.Run("off", func(t *testing.T) {
		sum := run(t, 0, 0)
		assert.Zero(t, sum.BlockDelay)
		assert.Zero(t, sum.MutexDelay)
		assert.Empty(t, sum.BlockHotspots)
		assert.Empty(t, sum.MutexHotspots)
	})
}

func mustParse(t *testing.T, files []string, name string) *profile.Profile {
	t.Helper()
	for _, f := range files {
		if filepath.Base(f) == name+".pb.gz" {
			fh, err := os.Open(f)
			require.NoError(t, err)
			defer fh.Close()
			p, err := profile.Parse(fh)
			require.NoError(t, err)
			return p
		}
	}
	t.Fatalf("no %s among %v", name, files)
	return nil
}

func TestTopSitesSkipsRuntimeFrames(t *testing.T) {
	p := synthetic("delay", [][]string{
		{"sync.(*Mutex).Unlock", "store.(*Store).commit", "main"},
		{"sync.(*Mutex).Unlock", "store.(*Store).commit", "main"},
		{"runtime.selectgo", "internal/poll.wait", "worker.(*Worker).run"},
		{"runtime.gopark"},
	}, []int64{60, 30, 10, 5})
	got, err := TopSites(p, "delay", 0)
	require.NoError(t, err)
	assert.Equal(t, []Func{
		{Name: "store.(*Store).commit", Flat: 90, Cum: 90, FlatPct: 90.0 / 105 * 100, CumPct: 90.0 / 105 * 100},
		{Name: "worker.(*Worker).run", Flat: 10, Cum: 10, FlatPct: 10.0 / 105 * 100, CumPct: 10.0 / 105 * 100},
		{Name: "runtime.gopark", Flat: 5, Cum: 5, FlatPct: 5.0 / 105 * 100, CumPct: 5.0 / 105 * 100},
	}, got)
	top, err := TopSites(p, "delay", 1)
	require.NoError(t, err)
	assert.Len(t, top, 1)

	// The profile endpoint's own wait is not a hotspot of the target.
	withPprof := synthetic("delay", [][]string{
		{"runtime.gopark", "time.Sleep", "net/http/pprof.sleep", "net/http/pprof.handler.serveDeltaProfile"},
		{"sync.(*Mutex).Lock", "store.(*Store).commit"},
	}, []int64{1000, 7})
	hot, total, err := contention([]*profile.Profile{withPprof}, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(7), total)
	require.Len(t, hot, 1)
	assert.Equal(t, "store.(*Store).commit", hot[0].Name)
}

func TestFetchErrors(t *testing.T) {
	srv := pprofServer(t)
	_, err := New("", t.TempDir(), nil)
	require.ErrorIs(t, err, ErrFetch)

	tests := []struct {
		name string
		base string
		want error
	}{
		{"404", srv.URL + "/nothing", ErrFetch},
		{"not a profile", srv.URL + "/junk", ErrParse},
		{"refused", "http://127.0.0.1:1", ErrFetch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.base, t.TempDir(), nil)
			require.NoError(t, err)
			_, err = c.HeapProfile(context.Background(), "h")
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// synthetic builds a profile with one sample type and the given stacks
// (leaf first) and values.
func synthetic(typ string, stacks [][]string, values []int64) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: typ, Unit: "bytes"}}}
	funcs := map[string]*profile.Function{}
	var id uint64
	for i, st := range stacks {
		s := &profile.Sample{Value: []int64{values[i]}}
		for _, name := range st {
			f, ok := funcs[name]
			if !ok {
				id++
				f = &profile.Function{ID: id, Name: name}
				funcs[name] = f
				p.Function = append(p.Function, f)
			}
			id++
			loc := &profile.Location{ID: id, Line: []profile.Line{{Function: f}}}
			p.Location = append(p.Location, loc)
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

func TestTopTotalGrowth(t *testing.T) {
	base := synthetic("inuse_space", [][]string{{"alloc", "main"}, {"cache", "main"}}, []int64{100, 50})
	end := synthetic("inuse_space", [][]string{{"alloc", "main"}, {"cache", "main"}, {"leak", "worker", "main"}}, []int64{100, 30, 400})

	top, err := Top(end, "inuse_space", 2)
	require.NoError(t, err)
	require.Len(t, top, 2)
	assert.Equal(t, Func{Name: "leak", Flat: 400, Cum: 400, FlatPct: 400.0 / 530 * 100, CumPct: 400.0 / 530 * 100}, top[0])
	assert.Equal(t, "alloc", top[1].Name)

	all, err := Top(end, "", 0)
	require.NoError(t, err)
	for _, f := range all {
		if f.Name == "main" {
			assert.Equal(t, int64(0), f.Flat)
			assert.Equal(t, int64(530), f.Cum)
		}
	}

	total, err := Total(end, "inuse_space")
	require.NoError(t, err)
	assert.Equal(t, int64(530), total)

	g, err := Growth(base, end, "inuse_space", 0)
	require.NoError(t, err)
	assert.Equal(t, []Delta{{"leak", 400}, {"cache", -20}}, g)

	_, err = Top(end, "cpu", 1)
	require.ErrorIs(t, err, ErrNoValue)
	_, err = TopSites(end, "delay", 1)
	require.ErrorIs(t, err, ErrNoValue)
	_, err = Total(&profile.Profile{}, "")
	require.ErrorIs(t, err, ErrNoValue)
	_, err = Merge()
	require.ErrorIs(t, err, ErrParse)
}
