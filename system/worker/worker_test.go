package worker

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tierchaos/tierchaos/system/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestControl(t *testing.T) {
	var runs atomic.Int64
	w := New(10*time.Millisecond, true, func(_ context.Context, c *api.WorkerCycle) {
		if runs.Add(1) == 2 {
			c.Errors = append(c.Errors, "boom")
		}
		c.DemotedWarm = append(c.DemotedWarm, "x")
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.Start(context.Background())
	t.Cleanup(w.Stop)

	st := w.State()
	require.Equal(t, "paused", st.State)
	require.Zero(t, st.Cycles)
	require.Nil(t, st.Last)

	st = w.RunOnce(context.Background())
	require.Equal(t, "paused", st.State, "run_once works while paused")
	require.Equal(t, int64(1), st.Cycles)
	require.Equal(t, "run_once", st.Last.Trigger)
	require.Equal(t, []string{"x"}, st.Last.DemotedWarm)
	require.False(t, st.Last.Finished.Before(st.Last.Started))

	require.Equal(t, "running", w.Resume().State)
	require.Eventually(t, func() bool {
		s := w.State()
		return s.Cycles >= 3 && s.Last.Trigger == "timer"
	}, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, int64(1), w.State().ErrorsTotal)

	require.Equal(t, "paused", w.Pause().State)
}
