package runner

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/budget"
	"github.com/tierchaos/tierchaos/load/monitor"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
	"github.com/tierchaos/tierchaos/load/workload"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

func TestRunWritesReportFolder(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.S3.Endpoint = ""
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), cfg, log, server.WithObjectStore(uploader.NewMemStore()))
	require.NoError(t, err)
	api := httptest.NewServer(srv.Handler())
	dbg := httptest.NewServer(srv.DebugHandler())
	t.Cleanup(func() {
		api.Close()
		dbg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
	})
	sampler, err := monitor.NewProc(os.Getpid(), "")
	require.NoError(t, err)

	out := t.TempDir()
	var prog bytes.Buffer
	sys, err := workload.NewSystem(workload.SystemOptions{URL: api.URL, Workload: workload.Config{Seed: 3, Collections: 6, Dimension: 8, Vectors: 40}})
	require.NoError(t, err)
	oc, err := Run(context.Background(), Options{
		Name: "unit", OutDir: out, System: sys, Seed: 3, PprofURL: dbg.URL + "/debug/pprof", Sampler: sampler,
		Rate: 40, Duration: 2500 * time.Millisecond, WarmUp: 500 * time.Millisecond,
		CPUWindow: time.Second, CPUEvery: time.Minute,
		Budget:   budget.Budget{P95: time.Microsecond, MaxCPU: 100, MaxHeapGrowth: 100},
		OpBudget: budget.Spec{{Scope: "search", Metric: budget.MetricP95, Limit: time.Hour}, {Scope: "*", Metric: budget.MetricErrors, MaxErrorRate: budget.NoErrors}},
		Progress: progress.Plain, ProgressOut: &prog, Logger: log,
	})
	require.NoError(t, err)
	assert.False(t, oc.Passed(), "a 1µs p95 cannot hold")
	failed := oc.Budget.Failed()
	require.Len(t, failed, 1)
	assert.Equal(t, "p95", failed[0].Name)
	for _, l := range oc.Budget.Lines {
		assert.NotEqual(t, "not measured", l.Measured, l.Name)
	}
	// Per-operation gates come first: search's p95, then every op's errors.
	var gates []string
	for _, l := range oc.Budget.Lines[:4] {
		gates = append(gates, l.Op+" "+l.Name)
	}
	assert.Equal(t, []string{"search p95", "search errors", "insert errors", "tier errors"}, gates)
	md, err := os.ReadFile(filepath.Join(out, report.MDFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| search | p95 | ≤ 1h0m0s | ")
	assert.Contains(t, string(md), "| (run) | p95 | ≤ 1µs | ")

	for _, f := range []string{report.JSONFile, report.MDFile, report.PNGFile, ResourcesCSV,
		filepath.Join(ProfilesDir, "heap-base.pb.gz"), filepath.Join(ProfilesDir, "heap-end.pb.gz"), filepath.Join(ProfilesDir, "cpu-00.pb.gz"),
		filepath.Join(ProfilesDir, "block-00.pb.gz"), filepath.Join(ProfilesDir, "mutex-00.pb.gz")} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	rep, err := report.Read(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	assert.False(t, rep.Passed)
	require.NotNil(t, rep.Budget)
	assert.Equal(t, "search:p95=1h0m0s,*:errors=0%", rep.Budget.Spec)
	assert.Equal(t, int64(100), rep.Overall.Scheduled)
	assert.Equal(t, rep.Overall.Completed, rep.Overall.OK, "errors: %v", rep.Overall.Errors)
	require.NotNil(t, rep.Resources)
	assert.Positive(t, rep.Resources.Samples)
	require.NotNil(t, rep.Profiles)
	assert.Positive(t, rep.Profiles.HeapEndBytes)
	assert.Contains(t, prog.String(), "unit [", "plain progress lines")

	// The seeded collections are removed afterwards.
	assert.Empty(t, srv.Store().List(context.Background()))
}

func TestRunRejectsBadOptions(t *testing.T) {
	sys := &fakeSystem{}
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"no system", Options{Rate: 1, Duration: time.Second}, ErrOptions},
		{"warm-up past the end", Options{System: sys, Rate: 1, Duration: time.Second, WarmUp: 2 * time.Second}, ErrOptions},
		{"no rate", Options{System: sys, Duration: time.Second}, load.ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.o)
			require.ErrorIs(t, err, tc.want)
			assert.Zero(t, sys.setups.Load(), "nothing is prepared for bad options")
		})
	}
}
