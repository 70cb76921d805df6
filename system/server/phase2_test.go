package server_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
)

// TestTierWalkWithWarmStep is the unit-level twin of the e2e scenario:
// hot → warm → cold → hot through the API, with exact search at each step.
func TestTierWalkWithWarmStep(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "walk", Dimension: 8, Metric: api.MetricCosine})
	require.NoError(t, err)
	vs := randomVectors(rand.New(rand.NewPCG(3, 4)), 500, 8)
	_, err = e.c.Insert(ctx, "walk", vs)
	require.NoError(t, err)
	q := []float32{1, 2, 3, 4, -1, -2, 0, 1}
	want := oracle(api.MetricCosine, vs, q, 10)
	for _, target := range []api.Tier{api.TierWarm, api.TierCold, api.TierHot} {
		c, err := e.c.SetTier(ctx, "walk", target)
		require.NoError(t, err)
		require.Equal(t, target, c.Tier)
		if target == api.TierCold {
			keys, err := e.objs.ListObjects(ctx, "collections/walk/")
			require.NoError(t, err)
			require.Len(t, keys, 1)
			require.Equal(t, c.Object, keys[0].Key)
			require.NotEmpty(t, c.Checksum)
		} else {
			// The cold copy a promotion replaced is deleted in the background.
			require.Eventually(t, func() bool {
				keys, err := e.objs.ListObjects(ctx, "collections/walk/")
				return err == nil && len(keys) == 0
			}, 10*time.Second, 5*time.Millisecond, "no object left after the move to %s", target)
		}
	}
	got, err := e.c.Search(ctx, "walk", q, 10)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestSnapshotsRestoreAndWorkerEndpoints(t *testing.T) {
	e := start(t, true, func(c *config.Config) {
		c.Worker.HotIdle = config.Duration(time.Nanosecond)
		c.Worker.WarmIdle = 0
	})
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "s", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	first := []api.Vector{{ID: "a", Values: []float32{0, 0}}, {ID: "b", Values: []float32{1, 1}}}
	_, err = e.c.Insert(ctx, "s", first)
	require.NoError(t, err)
	sn, err := e.c.CreateSnapshot(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, 2, sn.Vectors)
	_, err = e.c.Insert(ctx, "s", []api.Vector{{ID: "c", Values: []float32{5, 5}}})
	require.NoError(t, err)
	list, err := e.c.ListSnapshots(ctx, "s")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, sn.ID, list[0].ID)
	c, err := e.c.Restore(ctx, "s", sn.ID)
	require.NoError(t, err)
	require.Equal(t, 2, c.Vectors)
	res, err := e.c.Search(ctx, "s", []float32{5, 5}, 10)
	require.NoError(t, err)
	require.Equal(t, oracle(api.MetricL2, first, []float32{5, 5}, 10), res)

	st, err := e.c.WorkerState(ctx)
	require.NoError(t, err)
	require.Equal(t, "paused", st.State)
	st, err = e.c.Worker(ctx, api.WorkerRunOnce)
	require.NoError(t, err)
	require.Equal(t, int64(1), st.Cycles)
	require.NotNil(t, st.Last)
	require.Equal(t, "run_once", st.Last.Trigger)
	require.Equal(t, []string{"s"}, st.Last.DemotedWarm)
	require.Empty(t, st.Last.Errors)
	got, err := e.c.GetCollection(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, api.TierWarm, got.Tier)
	st, err = e.c.Worker(ctx, api.WorkerResume)
	require.NoError(t, err)
	require.Equal(t, "running", st.State)
	st, err = e.c.Worker(ctx, api.WorkerPause)
	require.NoError(t, err)
	require.Equal(t, "paused", st.State)

	u, err := e.c.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, u.Collections)
	require.Positive(t, u.WarmBytes)
	require.Positive(t, u.ColdBytes, "the user snapshot is in S3")
}

func TestQuotaAnswers(t *testing.T) {
	e := start(t, true, func(c *config.Config) { c.Quotas.Collections = 2 })
	ctx := context.Background()
	for _, n := range []string{"x1", "x2"} {
		_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: n, Dimension: 2, Metric: api.MetricL2})
		require.NoError(t, err)
	}
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "x3", Dimension: 2, Metric: api.MetricL2})
	require.Equal(t, api.CodeQuotaExceeded, clientCode(err))
	require.ErrorContains(t, err, "collections")
	require.NoError(t, e.c.DeleteCollection(ctx, "x1"))
	_, err = e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "x3", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
}
