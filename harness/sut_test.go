package harness

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/config"
)

// TestInProcessStopRightAfterStart: stopping an in-process tierd at once
// after its start (as UsePowerLoss does) must not crash the serving
// goroutines. Regression: they read the SUT's server fields when they ran,
// after stop had cleared them (nil *http.Server.Serve).
func TestInProcessStopRightAfterStart(t *testing.T) {
	for _, powerLoss := range []bool{false, true} {
		dir := t.TempDir()
		cfg := config.Default()
		cfg.S3.Endpoint = "" // no object store: the cold tier is off
		s := newInProcessSUT(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), dir, &defects{})
		s.powerLoss = powerLoss
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for range 30 {
			require.NoError(t, s.start(ctx))
			require.NoError(t, s.stop(ctx))
		}
		require.NoError(t, s.close(ctx))
		cancel()
		_, err := os.Stat(filepath.Join(dir, "manifest.json"))
		require.NoError(t, err, "tierd ran on the folder")
	}
}
