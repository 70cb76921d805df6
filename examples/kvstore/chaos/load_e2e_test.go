//go:build e2e

package chaos

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/examples/kvstore/kvclient"
	"github.com/tierchaos/tierchaos/examples/kvstore/kvload"
	"github.com/tierchaos/tierchaos/load/progress"
	"github.com/tierchaos/tierchaos/load/report"
	"github.com/tierchaos/tierchaos/load/runner"
)

// TestLoadThroughTheGenericRunner drives the store with the same runner
// tierload uses for tierd (load/runner), through its own workload
// (kvload): every scheduled request is sent and answered, each operation
// counted under its name, and the seeded keys are gone afterwards.
func TestLoadThroughTheGenericRunner(t *testing.T) {
	env.NewCase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url, err := env.URL(PortAPI)
	require.NoError(t, err)
	sys, err := kvload.New(url, kvload.Config{Seed: 11, Prefix: "runner", Keys: 16}, 10*time.Second)
	require.NoError(t, err)
	out := t.TempDir()
	oc, err := runner.Run(ctx, runner.Options{
		Name: "kvstore", OutDir: out, System: sys, Seed: 11,
		Rate: 40, Duration: 3 * time.Second,
		Progress: progress.Plain, ProgressOut: io.Discard, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	rep, err := report.Read(filepath.Join(out, report.JSONFile))
	require.NoError(t, err)
	assert.Equal(t, "http", rep.Run.API)
	assert.Equal(t, int64(120), rep.Overall.Scheduled, "40 req/s for 3 s")
	assert.Equal(t, rep.Overall.Scheduled, rep.Overall.Completed, "every request answered")
	assert.Equal(t, rep.Overall.Completed, rep.Overall.OK, "no fault, no error: %v", rep.Overall.Errors)
	names := map[string]int64{}
	for _, op := range rep.Ops {
		names[op.Name] = op.Completed
	}
	assert.Len(t, names, 3, "get, put and cas: %v", names)
	assert.Greater(t, names[kvload.OpGet], names[kvload.OpCAS], "weights 70/20/10")
	assert.Equal(t, oc.Report.Overall.Sent, rep.Overall.Sent)

	c := kvclient.New(url, nil)
	for _, key := range []string{"runner-0", "runner-15"} {
		_, err := c.Get(ctx, key)
		assert.True(t, errors.Is(err, kvclient.ErrNotFound), "%s is removed after the run: %v", key, err)
	}
}
