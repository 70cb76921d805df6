package tierd

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/stack"
)

// TestInProcessStopRightAfterStart: stopping an in-process tierd at once
// after its start (as UsePowerLoss does) must not crash the serving
// goroutines. Regression: they read the instance's server fields when
// they ran, after stop had cleared them (nil *http.Server.Serve).
func TestInProcessStopRightAfterStart(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, powerLoss := range []bool{false, true} {
		dir := t.TempDir()
		s := newStack(log, powerLoss)
		// No object store: the cold tier is off.
		env := map[string]string{"TIERD_DATA_DIR": dir, "TIERD_API_TOKEN": s.APIToken, "TIERD_ADMIN_TOKEN": s.AdminToken}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		for range 30 {
			in, err := s.startInProcess(ctx, stack.InProcess{Env: env, DataDir: dir, Logger: log, Gate: stack.NewGate()})
			require.NoError(t, err)
			require.Equal(t, powerLoss, in.(*tierdInstance).fs != nil, "on the power-loss layer")
			require.NoError(t, in.Stop(ctx))
		}
		cancel()
		_, err := os.Stat(filepath.Join(dir, "manifest.json"))
		require.NoError(t, err, "tierd ran on the folder")
	}
}
