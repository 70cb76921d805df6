package runner

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/tierdtest"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
	"github.com/tierchaos/tierchaos/load/workload"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
)

// TestRunOverBothAPIs drives the same seeded mix over REST and over gRPC,
// each against its own in-process tierd whose warm quota (1 byte) refuses
// every demotion to warm (and every promotion from cold, which needs local
// room): both reports count each operation alike, count the refusals under
// quota_exceeded (the stable code reached the driver over both APIs) and
// nothing else as an error, and record their API.
func TestRunOverBothAPIs(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reports := map[string]*report.Report{}
	for _, a := range []string{workload.APIREST, workload.APIGRPC} {
		td := tierdtest.Start(t, func(c *config.Config) { c.Quotas.WarmBytes = 1 })
		out := t.TempDir()
		sys, err := workload.NewSystem(workload.SystemOptions{API: a, URL: td.URL, GRPCAddr: td.GRPCAddr, GRPCConns: 2,
			// No collection starts warm or cold: every demotion is the mix's.
			Workload: workload.Config{Seed: 9, Collections: 4, Dimension: 8, Vectors: 40, WarmShare: 0, ColdShare: 1e-9}})
		require.NoError(t, err, a)
		t.Cleanup(func() { require.NoError(t, sys.Close()) })
		oc, err := Run(context.Background(), Options{
			Name: "api " + a, OutDir: out, System: sys, Seed: 9,
			Rate: 50, Duration: 2 * time.Second, Timeout: 10 * time.Second,
			Progress: progress.Plain, ProgressOut: io.Discard, Logger: log,
		})
		require.NoError(t, err, a)
		rep, err := report.Read(filepath.Join(out, report.JSONFile))
		require.NoError(t, err)
		assert.Equal(t, a, rep.Run.API)
		assert.Equal(t, oc.Report.Overall.Sent, rep.Overall.Sent)
		reports[a] = rep
		assert.Empty(t, td.Server.Store().List(context.Background()), "%s: the seeded collections are removed", a)
	}
	rest, grpc := reports[workload.APIREST], reports[workload.APIGRPC]
	require.Len(t, grpc.Ops, len(rest.Ops))
	for i, op := range grpc.Ops {
		r := rest.Ops[i]
		assert.Equal(t, r.Name, op.Name)
		assert.Equal(t, []int64{r.Scheduled, r.Sent}, []int64{op.Scheduled, op.Sent}, "%s: the seed schedules the same operations", op.Name)
		assert.Equal(t, op.Sent, op.Completed, "%s over gRPC: every request completed", op.Name)
		var errs int64
		for code, n := range op.Errors {
			errs += n
			assert.Equal(t, api.CodeQuotaExceeded, code, "%s: the only error is the warm quota's refusal (%d)", op.Name, n)
		}
		assert.Equal(t, op.Completed-op.OK, errs, "%s: errors by code add up", op.Name)
	}
	assert.Equal(t, int64(100), grpc.Overall.Scheduled, "50 req/s for 2 s")
	for _, rep := range reports {
		for _, op := range rep.Ops {
			if op.Name == workload.OpTier {
				assert.Positive(t, op.Errors[api.CodeQuotaExceeded], "%s: demotions to warm were refused", rep.Run.API)
			}
		}
	}
}
