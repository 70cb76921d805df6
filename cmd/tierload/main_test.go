package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/tierdtest"
	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/capacity"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
	"github.com/tierchaos/tierchaos/load/runner"
	"github.com/tierchaos/tierchaos/load/workload"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		ok    bool
		check func(t *testing.T, c *config)
	}{
		{"defaults: the seed's gate", nil, true, func(t *testing.T, c *config) {
			assert.Equal(t, 100.0, c.opts.Rate)
			assert.Equal(t, 60*time.Second, c.opts.Duration)
			assert.Zero(t, c.opts.Budget.P95, "no whole-mix p95 gate: tier requests alone sit near 25 ms")
			assert.Equal(t, "search:p95=25ms,*:errors=0.1%", c.opts.OpBudget.String())
			assert.Equal(t, 0.001, c.opts.Budget.MaxErrorRate)
			assert.Equal(t, 0.8, c.opts.Budget.MaxCPU)
			assert.Equal(t, 0.1, c.opts.Budget.MaxHeapGrowth)
			assert.Equal(t, workload.DefaultMix(), c.tierd.Workload.Mix)
			assert.False(t, c.seedSet)
			assert.Equal(t, load.Constant, c.opts.Arrival)
			assert.True(t, c.failOnBudget)
		}},
		{"explicit", []string{"-url", "http://x:1", "-pid", "42", "-rate", "1000", "-duration", "5m", "-seed", "9",
			"-mix", "search=1", "-arrival", "poisson", "-progress", "plain"}, true, func(t *testing.T, c *config) {
			assert.Equal(t, uint64(9), c.tierd.Workload.Seed)
			assert.True(t, c.seedSet)
			assert.Equal(t, 42, c.pid)
			assert.Equal(t, workload.Mix{workload.OpSearch: 1}, c.tierd.Workload.Mix)
			assert.Equal(t, load.Poisson, c.opts.Arrival)
			assert.Equal(t, progress.Plain, c.opts.Progress)
		}},
		{"stack with fault", []string{"-s3-latency", "20ms", "-s3-jitter", "5ms"}, true, nil},
		{"rest by default", nil, true, func(t *testing.T, c *config) { assert.Equal(t, workload.APIREST, c.tierd.API) }},
		{"grpc on the stack", []string{"-api", "grpc", "-grpc-conns", "2"}, true, func(t *testing.T, c *config) {
			assert.Equal(t, workload.APIGRPC, c.tierd.API)
			assert.Equal(t, 2, c.tierd.GRPCConns)
			assert.Empty(t, c.tierd.GRPCAddr, "the stack gives its address")
		}},
		{"grpc with url", []string{"-api", "grpc", "-url", "http://x:1", "-grpc-addr", "x:2"}, true, func(t *testing.T, c *config) {
			assert.Equal(t, "x:2", c.tierd.GRPCAddr)
		}},
		{"workload spec", []string{"-workload", "testdata/kv-spec.json", "-url", "http://x:1"}, true, func(t *testing.T, c *config) {
			require.NotNil(t, c.spec)
			assert.Len(t, c.spec.Ops, 3)
		}},
		{"workload without url", []string{"-workload", "testdata/kv-spec.json"}, false, nil},
		{"workload with grpc", []string{"-workload", "testdata/kv-spec.json", "-url", "http://x:1", "-api", "grpc", "-grpc-addr", "x:2"}, false, nil},
		{"workload file missing", []string{"-workload", "testdata/none.json", "-url", "http://x:1"}, false, nil},
		{"bad api", []string{"-api", "soap"}, false, nil},
		{"grpc with url without address", []string{"-api", "grpc", "-url", "http://x:1"}, false, nil},
		{"grpc address without grpc", []string{"-url", "http://x:1", "-grpc-addr", "x:2"}, false, nil},
		{"grpc address with the stack", []string{"-api", "grpc", "-grpc-addr", "x:2"}, false, nil},
		{"no grpc connections", []string{"-api", "grpc", "-grpc-conns", "0"}, false, nil},
		{"per-op budget", []string{"-budget", "search:p95=25ms,insert:p95=50ms,tier:p95=1s,*:errors=0.1%"}, true, func(t *testing.T, c *config) {
			require.Len(t, c.opts.OpBudget, 4)
			assert.Equal(t, budget.Gate{Scope: "tier", Metric: budget.MetricP95, Limit: time.Second}, c.opts.OpBudget[2])
		}},
		{"no per-op budget", []string{"-budget", ""}, true, func(t *testing.T, c *config) { assert.Empty(t, c.opts.OpBudget) }},
		{"bad budget", []string{"-budget", "search:p95=soon"}, false, nil},
		{"find-max", []string{"-find-max", "-find-start", "10", "-find-factor", "1.5", "-find-max-rate", "90", "-find-stage", "5s", "-find-resolution", "0.2", "-find-max-stages", "7"}, true, func(t *testing.T, c *config) {
			assert.True(t, c.findMax)
			assert.Equal(t, capacity.Plan{Start: 10, Factor: 1.5, Max: 90, Resolution: 0.2, MaxStages: 7}, c.find)
			assert.Equal(t, 5*time.Second, c.findStage)
		}},
		{"find-max ignores -rate", []string{"-find-max", "-rate", "0"}, true, nil},
		{"find-max bad factor", []string{"-find-max", "-find-factor", "1"}, false, nil},
		{"find-max max below start", []string{"-find-max", "-find-start", "100", "-find-max-rate", "50"}, false, nil},
		{"find-max zero stage", []string{"-find-max", "-find-stage", "0s"}, false, nil},
		{"shard", []string{"-url", "http://x:1", "-seed", "77", "-rate", "90", "-shard", "2/3"}, true, func(t *testing.T, c *config) {
			assert.Equal(t, &report.Shard{Index: 2, Count: 3, RunSeed: 77}, c.opts.Shard)
			assert.Equal(t, 30.0, c.opts.Rate)
			assert.Equal(t, runner.ShardSeed(77, 2), c.tierd.Workload.Seed)
			assert.NotEqual(t, runner.ShardSeed(77, 1), c.tierd.Workload.Seed)
			assert.Equal(t, "load-s2", c.tierd.Workload.Prefix)
			assert.Equal(t, "tierload shard 2/3", c.opts.Name)
		}},
		{"shard without seed", []string{"-url", "http://x:1", "-shard", "0/3"}, false, nil},
		{"shard without url", []string{"-seed", "1", "-shard", "0/3"}, false, nil},
		{"shard index out of range", []string{"-url", "http://x:1", "-seed", "1", "-shard", "3/3"}, false, nil},
		{"shard negative", []string{"-url", "http://x:1", "-seed", "1", "-shard", "-1/3"}, false, nil},
		{"shard zero count", []string{"-url", "http://x:1", "-seed", "1", "-shard", "0/0"}, false, nil},
		{"shard garbage", []string{"-url", "http://x:1", "-seed", "1", "-shard", "first"}, false, nil},
		{"shard with find-max", []string{"-url", "http://x:1", "-seed", "1", "-shard", "0/2", "-find-max"}, false, nil},
		{"bad mix", []string{"-mix", "delete=1"}, false, nil},
		{"bad arrival", []string{"-arrival", "bursty"}, false, nil},
		{"bad progress", []string{"-progress", "fancy"}, false, nil},
		{"pid without url", []string{"-pid", "1"}, false, nil},
		{"fault with url", []string{"-url", "http://x:1", "-s3-latency", "1ms"}, false, nil},
		{"data tmpfs on the stack", []string{"-data-tmpfs", "512m"}, true, func(t *testing.T, c *config) { assert.Equal(t, "512m", c.dataTmpfs) }},
		{"data tmpfs with url", []string{"-url", "http://x:1", "-data-tmpfs", "512m"}, false, nil},
		{"jitter over latency", []string{"-s3-latency", "1ms", "-s3-jitter", "2ms"}, false, nil},
		{"zero rate", []string{"-rate", "0"}, false, nil},
		{"ramp too long", []string{"-duration", "1s", "-ramp-up", "2s"}, false, nil},
		{"bad shares", []string{"-warm-share", "0.9", "-cold-share", "0.9"}, false, nil},
		{"stray argument", []string{"now"}, false, nil},
		{"unknown flag", []string{"-fast"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(tt.args, io.Discard)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestRunUsageErrorExitStatus(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, exitError, run([]string{"-rate", "-1"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "rate -1 must be positive")
	assert.Equal(t, exitOK, run([]string{"-h"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "tierload merge [flags] SHARD_DIR...")
	assert.Contains(t, errOut.String(), "-api string")
	assert.Contains(t, errOut.String(), `tierd API to drive: "rest" or "grpc"`)
	errOut.Reset()
	assert.Equal(t, exitError, run([]string{"-api", "http2"}, &out, &errOut))
	assert.Contains(t, errOut.String(), `tierload: -api "http2": want "rest" or "grpc"`)
	errOut.Reset()
	assert.Equal(t, exitError, run([]string{"-budget", "search:p95"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-budget: budget_spec: clause 1")
}

// tierdURL starts tierd in the test process (object store in memory) and
// returns its API URL.
func tierdURL(t *testing.T) string {
	t.Helper()
	return tierdtest.Start(t, nil).URL
}

// TestFindMaxAgainstTierd runs the capacity search for real against an
// in-process tierd with two one-second stages; a 1µs search p95 budget
// makes the start rate fail, a 10s one lets both stages hold.
func TestFindMaxAgainstTierd(t *testing.T) {
	url := tierdURL(t)
	common := []string{"-url", url, "-find-max", "-find-start", "10", "-find-factor", "2", "-find-max-rate", "20",
		"-find-stage", "1s", "-collections", "4", "-vectors", "20", "-dim", "8", "-progress", "plain", "-seed", "5",
		"-budget-cpu", "0", "-log-level", "error"}
	t.Run("held up to max", func(t *testing.T) {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		code := run(append(common, "-out", out, "-budget", "search:p95=10s"), &stdout, &stderr)
		require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		assert.Contains(t, stdout.String(), "stage 0: 10 req/s: held")
		assert.Contains(t, stdout.String(), "stage 1: 20 req/s: held")
		assert.Contains(t, stdout.String(), "up to the search's maximum, 20 req/s")
		for _, f := range []string{capacity.JSONFile, capacity.MDFile, capacity.PNGFile, "stages/00-10reqs/report.json", "stages/01-20reqs/report.json"} {
			assert.FileExists(t, filepath.Join(out, f))
		}
	})
	t.Run("start fails", func(t *testing.T) {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		code := run(append(common, "-out", out, "-budget", "search:p95=1us"), &stdout, &stderr)
		require.Equal(t, exitBudget, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		assert.Contains(t, stdout.String(), "stage 0: 10 req/s: failed: search p95")
		md, err := os.ReadFile(filepath.Join(out, capacity.MDFile))
		require.NoError(t, err)
		assert.Contains(t, string(md), "the start rate 10 req/s already failed a budget")
	})
}

// TestShardsMergeAgainstTierd runs three shards one after the other
// against one in-process tierd and merges them: per-operation counts are
// the sums of the shards' (seeds and collection prefixes per shard are
// checked in TestParse).
func TestShardsMergeAgainstTierd(t *testing.T) {
	url := tierdURL(t)
	root := t.TempDir()
	var dirs []string
	for i := range 3 {
		dir := filepath.Join(root, fmt.Sprintf("shard-%d", i))
		dirs = append(dirs, dir)
		var stdout, stderr bytes.Buffer
		code := run([]string{"-url", url, "-shard", fmt.Sprintf("%d/3", i), "-seed", "11", "-rate", "60", "-duration", "1s",
			"-collections", "3", "-vectors", "20", "-dim", "8", "-progress", "plain", "-budget", "*:p95=1h", "-budget-cpu", "0",
			"-budget-heap-growth", "0", "-log-level", "error", "-out", dir}, &stdout, &stderr)
		require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		assert.Contains(t, stderr.String(), fmt.Sprintf("shard %d/3, run seed 11", i))
	}
	var shards []*report.Report
	for _, d := range dirs {
		r, err := report.Read(filepath.Join(d, report.JSONFile))
		require.NoError(t, err)
		require.NotNil(t, r.Run.Shard)
		assert.Equal(t, 20.0, r.Run.Rate, "1/3 of 60 req/s")
		shards = append(shards, r)
	}
	assert.NotEqual(t, shards[0].Run.Seed, shards[1].Run.Seed)

	out := filepath.Join(root, "merged")
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"merge", "-out", out, "-budget", "search:p95=1h"}, dirs...), &stdout, &stderr)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	m, err := report.Read(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	assert.Equal(t, 60.0, m.Run.Rate)
	assert.Equal(t, uint64(11), m.Run.Seed)
	for _, op := range append(m.Ops, m.Overall) {
		var sent, completed int64
		for _, s := range shards {
			for _, so := range append(s.Ops, s.Overall) {
				if so.Name == op.Name {
					sent += so.Sent
					completed += so.Completed
				}
			}
		}
		assert.Equal(t, sent, op.Sent, op.Name)
		assert.Equal(t, completed, op.Completed, op.Name)
		assert.Equal(t, completed, op.Latency.Count, op.Name)
	}
	assert.Equal(t, int64(60), m.Overall.Scheduled, "3 shards × 20 req/s × 1 s")
	require.NotNil(t, m.Budget)
	assert.Contains(t, stdout.String(), "merged 3 reports")

	// A shard merged twice is refused.
	assert.Equal(t, exitError, run([]string{"merge", "-out", t.TempDir(), dirs[0], dirs[0]}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "both shard 0")
}

// TestGRPCRunAgainstTierd drives the default mix over gRPC against an
// in-process tierd: the report records the API, schedules 60 requests (30
// req/s for 2 s) split over the three operations, completes them all and
// counts no error.
func TestGRPCRunAgainstTierd(t *testing.T) {
	td := tierdtest.Start(t, nil)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-api", "grpc", "-url", td.URL, "-grpc-addr", td.GRPCAddr, "-grpc-conns", "2", "-seed", "4",
		"-rate", "30", "-duration", "2s", "-collections", "4", "-vectors", "20", "-dim", "8", "-progress", "plain",
		"-budget", "*:p95=1h,*:errors=0%", "-budget-cpu", "0", "-budget-heap-growth", "0", "-log-level", "error", "-out", out},
		&stdout, &stderr)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	r, err := report.Read(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	assert.Equal(t, "grpc", r.Run.API)
	assert.Equal(t, int64(60), r.Overall.Scheduled)
	var sent int64
	names := []string{}
	for _, op := range r.Ops {
		names = append(names, op.Name)
		sent += op.Sent
		assert.Equal(t, op.Sent, op.OK, "%s: every request answered ok (errors %v)", op.Name, op.Errors)
		assert.Empty(t, op.Errors, op.Name)
	}
	assert.ElementsMatch(t, []string{workload.OpSearch, workload.OpInsert, workload.OpTier}, names)
	assert.Equal(t, r.Overall.Sent, sent)
	md, err := os.ReadFile(filepath.Join(out, report.MDFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "over the grpc API")
}

// TestWorkloadSpecRun drives an HTTP workload spec (testdata/kv-spec.json)
// against a small key-value server: the report records the API "http" and
// the spec's three operations; puts and gets succeed and every request to
// a missing key counts under http_404.
func TestWorkloadSpecRun(t *testing.T) {
	var mu sync.Mutex
	kv := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/healthz":
		case r.Method == http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			kv[r.URL.Path] = string(b)
		case strings.HasPrefix(r.URL.Path, "/kv/absent-"):
			w.WriteHeader(http.StatusNotFound)
		default:
			_, _ = io.WriteString(w, kv[r.URL.Path])
		}
	}))
	t.Cleanup(srv.Close)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-workload", "testdata/kv-spec.json", "-url", srv.URL, "-seed", "5", "-rate", "50", "-duration", "2s",
		"-progress", "plain", "-budget", "get:errors=0%,put:errors=0%", "-budget-cpu", "0", "-budget-heap-growth", "0",
		"-budget-error-rate", "1", "-log-level", "error", "-out", out}, &stdout, &stderr)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	r, err := report.Read(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	assert.Equal(t, "http", r.Run.API)
	assert.Equal(t, int64(100), r.Overall.Scheduled)
	by := map[string]report.Op{}
	for _, op := range r.Ops {
		by[op.Name] = op
	}
	require.Len(t, by, 3)
	assert.Equal(t, by["get"].Sent, by["get"].OK)
	assert.Equal(t, by["put"].Sent, by["put"].OK)
	assert.Equal(t, map[string]int64{"http_404": by["missing"].Sent}, by["missing"].Errors)
	mu.Lock()
	defer mu.Unlock()
	assert.NotEmpty(t, kv, "the puts reached the server")
}
