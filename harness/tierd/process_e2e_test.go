//go:build e2e

package tierd_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{}, func(s *tierd.Stack) { stack = s }))
}

// TestProcessFaults proves each process fault is in effect (observed at the
// client) and gone after its removal.
func TestProcessFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault func(ctx context.Context) error
		// during checks what a client sees while the fault is in effect.
		during func(ctx context.Context, t *testing.T)
		heal   func(ctx context.Context) error
	}{
		{
			name:   "kill-then-start",
			fault:  stack.KillTierd,
			during: requireUnreachable,
			heal:   stack.StartTierd,
		},
		{
			name:   "graceful-stop-then-start",
			fault:  stack.StopTierd,
			during: requireUnreachable,
			heal:   stack.StartTierd,
		},
		{
			name:  "pause-then-unpause",
			fault: stack.PauseTierd,
			during: func(ctx context.Context, t *testing.T) {
				rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				err := stack.Tierd.Readyz(rctx)
				require.Error(t, err, "a paused tierd answers nothing")
				require.ErrorIs(t, err, context.DeadlineExceeded)
			},
			heal: stack.UnpauseTierd,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			require.NoError(t, stack.Tierd.Readyz(ctx), "ready before the fault")
			require.NoError(t, tc.fault(ctx))
			healed := false
			t.Cleanup(func() {
				if !healed {
					_ = tc.heal(context.Background())
				}
			})
			tc.during(ctx, t)
			require.NoError(t, tc.heal(ctx))
			healed = true
			require.Eventually(t, func() bool { return stack.Tierd.Readyz(ctx) == nil }, 30*time.Second, 20*time.Millisecond,
				"ready again after the fault is removed")
		})
	}
}

func requireUnreachable(ctx context.Context, t *testing.T) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.Error(t, stack.Tierd.Readyz(rctx), "tierd is down")
}

// TestReconfigureTierd restarts tierd with a collection quota of one and
// observes the quota, then removes it again; data survives both restarts.
func TestReconfigureTierd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := "reconfigure-first"
	_, err := stack.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: first, Dimension: 4, Metric: api.MetricL2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Tierd.DeleteCollection(context.Background(), first) })

	require.NoError(t, stack.ReconfigureTierd(ctx, map[string]string{"TIERD_QUOTA_COLLECTIONS": "1"}))
	t.Cleanup(func() {
		_ = stack.ReconfigureTierd(context.Background(), map[string]string{"TIERD_QUOTA_COLLECTIONS": ""})
	})
	_, err = stack.Tierd.GetCollection(ctx, first)
	require.NoError(t, err, "the collection survives the restart")
	_, err = stack.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: "reconfigure-second", Dimension: 4, Metric: api.MetricL2})
	require.Equal(t, api.CodeQuotaExceeded, client.CodeOf(err), "quota of one collection in effect: %v", err)

	require.NoError(t, stack.ReconfigureTierd(ctx, map[string]string{"TIERD_QUOTA_COLLECTIONS": ""}))
	_, err = stack.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: "reconfigure-second", Dimension: 4, Metric: api.MetricL2})
	require.NoError(t, err, "quota removed")
	require.NoError(t, stack.Tierd.DeleteCollection(ctx, "reconfigure-second"))
}

// TestReconfigureTierdRefused: settings tierd refuses to start with leave
// tierd running with its previous settings and its data, and the error
// says so.
func TestReconfigureTierdRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "reconfigure-refused"
	_, err := stack.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 4, Metric: api.MetricL2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Tierd.DeleteCollection(context.Background(), name) })

	err = stack.ReconfigureTierd(ctx, map[string]string{"TIERD_WAL_SEGMENT_BYTES": "8KiB"}) // below tierd's minimum
	require.Error(t, err, "tierd refuses a WAL segment below 64 KiB")
	_, err = stack.Tierd.GetCollection(ctx, name)
	require.NoError(t, err, "tierd serves again, with its data, after the refused settings")
	require.NoError(t, stack.ClearFaults(ctx))
}

// TestTierdRequiresTheRunTokens: the stack starts tierd with this run's
// random tokens: without one, or with the API token on an admin route,
// tierd answers 401; the stack's own client passes.
func TestTierdRequiresTheRunTokens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.Len(t, stack.APIToken, 64)
	require.Len(t, stack.AdminToken, 64)
	require.NotEqual(t, stack.APIToken, stack.AdminToken)
	base, err := stack.TierdURL()
	require.NoError(t, err)

	_, err = client.New(base).ListCollections(ctx)
	require.Equal(t, api.CodeUnauthenticated, client.CodeOf(err), "no token: %v", err)
	_, err = client.New(base, client.WithToken(stack.APIToken)).Usage(ctx)
	require.Equal(t, api.CodeUnauthenticated, client.CodeOf(err), "the API token on an admin route: %v", err)
	require.NoError(t, client.New(base).Readyz(ctx), "readiness needs no token")

	_, err = stack.Tierd.ListCollections(ctx)
	require.NoError(t, err)
	_, err = stack.Tierd.Usage(ctx)
	require.NoError(t, err)
}

// TestTierdServesGRPC: tierd's gRPC API is reachable at Stack.TierdGRPC
// with the run's tokens, refuses a call without one, and sees what the
// REST API wrote.
func TestTierdServesGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, err := stack.TierdGRPC()
	require.NoError(t, err)
	anon, err := grpcclient.Dial(addr)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, anon.Close()) })
	require.NoError(t, anon.Readyz(ctx), "health needs no token")
	_, err = anon.ListCollections(ctx)
	require.Equal(t, api.CodeUnauthenticated, client.CodeOf(err), "no token: %v", err)

	gc, err := grpcclient.Dial(addr, grpcclient.WithToken(stack.APIToken), grpcclient.WithAdminToken(stack.AdminToken))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, gc.Close()) })
	name := fmt.Sprintf("grpc-%d", time.Now().UnixNano())
	_, err = stack.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Tierd.DeleteCollection(context.Background(), name) })
	n, err := gc.Insert(ctx, name, []api.Vector{{ID: "x", Values: []float32{1, 2}}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	res, err := stack.Tierd.Search(ctx, name, []float32{1, 2}, 1)
	require.NoError(t, err)
	require.Equal(t, []api.Result{{ID: "x", Score: 0}}, res, "REST sees the gRPC insert")
	_, err = gc.Usage(ctx)
	require.NoError(t, err)
	_, err = gc.Search(ctx, name, []float32{1}, 1)
	require.Equal(t, api.CodeInvalidArgument, client.CodeOf(err), "wrong dimension: %v", err)
}

// TestCaseLogKeepsReplacedContainers: a case that reconfigures tierd
// replaces its container, and the case's log still holds what every
// container of the case logged, oldest first; a kill and start keep the
// container and its log. The next case starts with none of it.
func TestCaseLogKeepsReplacedContainers(t *testing.T) {
	if stack.Mode != tierd.SUTContainer {
		t.Skip("in process tierd logs into the test's output; there is no container log to keep")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Run("replaced", func(t *testing.T) {
		stack.NewCase(t)
		require.NoError(t, stack.ReconfigureTierd(ctx, map[string]string{"TIERD_QUOTA_COLLECTIONS": "7"}))
		require.NoError(t, stack.RestartService(ctx, false), "SIGKILL and start")
		require.NoError(t, stack.ReconfigureTierd(ctx, map[string]string{"TIERD_QUOTA_COLLECTIONS": ""}))
		logs, err := stack.CaseLog(ctx)
		require.NoError(t, err)
		// Three sections, each under its header: the container the case
		// began with, the one killed and started, the current one.
		sections := regexp.MustCompile(`(?m)^===== tierd container \S+, (removed at \S+|current) =====$`).Split(logs, -1)
		require.Len(t, sections, 4, "nothing before the first header, then three containers: %s", logs)
		assert.Empty(t, sections[0])
		assert.GreaterOrEqual(t, strings.Count(sections[1], "tierd started"), 1, "the container the case began with")
		assert.Equal(t, 2, strings.Count(sections[2], "tierd started"), "the second container ran twice: SIGKILL keeps it and its log")
		assert.Equal(t, 1, strings.Count(sections[3], "tierd started"), "the current container")
	})
	t.Run("next-case", func(t *testing.T) {
		stack.NewCase(t)
		logs, err := stack.CaseLog(ctx)
		require.NoError(t, err)
		assert.NotContains(t, logs, "=====", "the replaced containers of the last case are not this case's")
	})
}
