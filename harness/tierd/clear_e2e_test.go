//go:build e2e

package tierd_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/system/api"
)

// TestCaseStartsWithStackAsStarted: a case that pauses tierd's worker and
// leaves an S3 fault rule behind, or restarts tierd with other settings,
// and does not undo it, hands the next case a stack as it started: the
// worker running, tierd's start settings, no fault.
func TestCaseStartsWithStackAsStarted(t *testing.T) {
	t.Run("pauses the worker", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stack.NewCase(t)
		st, err := stack.Tierd.Worker(ctx, api.WorkerPause)
		require.NoError(t, err)
		require.Equal(t, "paused", st.State)
		_, err = stack.S3Faults.AddRule(ctx, s3fault.Rule{Trigger: s3fault.Always(), Action: s3fault.InternalError()})
		require.NoError(t, err)
	})
	t.Run("finds the worker running", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stack.NewCase(t)
		st, err := stack.Tierd.WorkerState(ctx)
		require.NoError(t, err)
		require.Equal(t, "running", st.State, "the worker the last case paused runs again")
		rules, err := stack.S3Faults.Rules(ctx)
		require.NoError(t, err)
		require.Empty(t, rules)
	})
	t.Run("reconfigures tierd", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		stack.NewCase(t)
		require.NoError(t, stack.ReconfigureTierd(ctx, map[string]string{"TIERD_QUOTA_COLLECTIONS": "1"}))
		u, err := stack.Tierd.Usage(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, u.CollectionsQuota, "tierd runs with the case's settings")
	})
	t.Run("finds the start settings", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stack.NewCase(t)
		u, err := stack.Tierd.Usage(ctx)
		require.NoError(t, err)
		require.Zero(t, u.CollectionsQuota, "tierd runs with its start settings again")
	})
}
