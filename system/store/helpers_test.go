package store_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/uploader"
)

// clock is a settable clock for idle-time tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	dir  string
	objs *uploader.MemStore
	mod  func(*store.Options)
}

func newFixture(t testing.TB, mod func(*store.Options)) *fixture {
	t.Helper()
	return &fixture{dir: t.TempDir(), objs: uploader.NewMemStore(), mod: mod}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens a store over the fixture's folder and object store; extra
// changes the options of this opening only.
func (f *fixture) open(t testing.TB, extra func(*store.Options)) *store.Store {
	t.Helper()
	d := config.Default()
	cs, err := cold.New(f.objs, cold.Options{OpTimeout: 2 * time.Second, MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2}, discard())
	require.NoError(t, err)
	opts := store.Options{DataDir: f.dir, Limits: d.Limits, WAL: d.WAL, Cold: cs}
	if f.mod != nil {
		f.mod(&opts)
	}
	if extra != nil {
		extra(&opts)
	}
	s, err := store.Open(opts, discard())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// oracle is a brute-force top-k written from the documented contract.
func oracle(m api.Metric, vs map[string][]float32, q []float32, k int) []api.Result {
	res := make([]api.Result, 0, len(vs))
	for id, v := range vs {
		var dot, qq, vv, l2 float64
		for i := range q {
			a, b := float64(q[i]), float64(v[i])
			dot += a * b
			qq += a * a
			vv += b * b
			l2 += (a - b) * (a - b)
		}
		s := dot
		switch m {
		case api.MetricL2:
			s = math.Sqrt(l2)
		case api.MetricCosine:
			s = 0
			if vv != 0 {
				s = dot / (math.Sqrt(qq) * math.Sqrt(vv))
			}
		}
		res = append(res, api.Result{ID: id, Score: s})
	}
	slices.SortFunc(res, func(a, b api.Result) int {
		switch {
		case a.Score == b.Score:
			return strings.Compare(a.ID, b.ID)
		case (m == api.MetricL2) == (a.Score < b.Score):
			return -1
		default:
			return 1
		}
	})
	return res[:min(k, len(res))]
}

// data tracks what a collection must contain.
type data map[string][]float32

func batch(prefix string, n, dim int, seed int) []api.Vector {
	out := make([]api.Vector, n)
	for i := range out {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32((i*7+d*3+seed)%11) - 5
		}
		out[i] = api.Vector{ID: prefix + strconv.Itoa(i), Values: v}
	}
	return out
}

func (d data) add(vs []api.Vector) {
	for _, v := range vs {
		d[v.ID] = v.Values
	}
}

// requireContent checks that searches return exactly the oracle's answer
// over want (every acknowledged insert present, nothing else).
func requireContent(t *testing.T, s *store.Store, name string, m api.Metric, want data, dim int) {
	t.Helper()
	ctx := context.Background()
	c, err := s.Get(ctx, name)
	require.NoError(t, err)
	require.Equal(t, len(want), c.Vectors, "vector count")
	for _, q := range [][]float32{ones(dim, 1), ones(dim, -2)} {
		got, err := s.Search(ctx, name, q, api.MaxK)
		require.NoError(t, err)
		require.Equal(t, oracle(m, want, q, api.MaxK), got)
	}
}

func ones(dim int, v float32) []float32 {
	out := make([]float32, dim)
	for i := range out {
		out[i] = v + float32(i%3)
	}
	return out
}

// localFiles lists the files under the data folder's local/ tree, and any
// temporary file anywhere.
func localFiles(t *testing.T, dir string) (files, temps []string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, ".tmp") {
			temps = append(temps, rel)
		}
		if strings.HasPrefix(filepath.ToSlash(rel), "local/") {
			files = append(files, rel)
		}
		return nil
	}))
	return files, temps
}

func objectKeys(t *testing.T, objs *uploader.MemStore, prefix string) []string {
	t.Helper()
	list, err := objs.ListObjects(context.Background(), prefix)
	require.NoError(t, err)
	var keys []string
	for _, o := range list {
		keys = append(keys, o.Key)
	}
	return keys
}

func incomplete(t *testing.T, objs *uploader.MemStore, prefix string) int {
	t.Helper()
	ups, err := objs.ListMultipartUploads(context.Background(), prefix)
	require.NoError(t, err)
	return len(ups)
}

// crash is the panic value of an injected crash.
type crash struct{ point string }

func crashAt(point string) func(string) {
	return func(p string) {
		if p == point {
			panic(crash{p})
		}
	}
}

// runCrashing runs f and reports whether it stopped at an injected crash.
func runCrashing(f func()) (point string) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			point = c.point
		}
	}()
	f()
	return ""
}

func mkdir(p string) error { return os.MkdirAll(p, 0o755) }

// requireNoObjects waits until no object is left under prefix: the cold
// object a promotion replaced is deleted in the background.
func requireNoObjects(t *testing.T, f *fixture, prefix string) {
	t.Helper()
	require.Eventually(t, func() bool {
		list, err := f.objs.ListObjects(context.Background(), prefix)
		return err == nil && len(list) == 0
	}, 5*time.Second, 5*time.Millisecond, "objects left under %s: %v", prefix, objectKeys(t, f.objs, prefix))
}
