package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/uploader"
)

// TestCycleCountsOnlyItsOwnPendingDeletes: a promotion from cold that
// flips (adding its old object to the pending deletes, which it deletes
// itself right after) while a worker cycle retries other pending deletes
// is not an error of that cycle. Regression: the cycle reported
// "1 object deletes still pending" although no delete failed.
func TestCycleCountsOnlyItsOwnPendingDeletes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	var armed atomic.Bool
	loaded := make(chan struct{})    // B's promotion reached hot.loaded
	proceed := make(chan struct{})   // let B's promotion flip
	committed := make(chan struct{}) // B's promotion flipped
	cycleDone := make(chan struct{}) // the cycle returned
	hook := func(p string) {
		if !armed.Load() {
			return
		}
		switch p {
		case store.HookHotLoaded:
			close(loaded)
			<-proceed
		case store.HookHotCommitted:
			close(committed)
			<-cycleDone
		}
	}
	reg := prometheus.NewRegistry()
	s := f.open(t, func(o *store.Options) { o.Hook = hook; o.Registerer = reg })
	wantA := setup(t, s, "pa", api.MetricL2)
	wantB := setup(t, s, "pb", api.MetricL2)
	a, err := s.SetTier(ctx, "pa", api.TierCold)
	require.NoError(t, err)
	_, err = s.SetTier(ctx, "pb", api.TierCold)
	require.NoError(t, err)
	// A's cold copy is not deleted on promotion: it stays pending.
	fid, err := f.objs.Inject(uploader.Fault{Kind: uploader.FaultInternal, Op: uploader.OpDeleteObject})
	require.NoError(t, err)
	_, err = s.SetTier(ctx, "pa", api.TierHot)
	require.NoError(t, err)
	// The delete runs in the background after the promotion answered.
	require.Eventually(t, func() bool { return backgroundDeletes(t, reg, "failed") >= 1 }, 10*time.Second, time.Millisecond,
		"the background delete of A's cold copy fails")
	f.objs.RemoveFault(fid)
	// The cycle's retry of A's key hangs 1s once, then succeeds on retry.
	_, err = f.objs.Inject(uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpDeleteObject, KeyPattern: a.Object, Delay: time.Second, Times: 1})
	require.NoError(t, err)
	f.objs.ResetMetrics()

	armed.Store(true)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := s.SetTier(ctx, "pb", api.TierHot)
		assert.NoError(t, err)
	})
	<-loaded
	var cyc api.WorkerCycle
	wg.Go(func() {
		defer close(cycleDone)
		s.Maintain(ctx, store.MaintainOptions{}, &cyc)
	})
	// The cycle is retrying A's key: now B's promotion flips.
	require.Eventually(t, func() bool {
		return f.objs.Metrics().Ops[uploader.OpDeleteObject].Calls >= 1
	}, 5*time.Second, time.Millisecond)
	close(proceed)
	select {
	case <-committed:
	case <-cycleDone:
		t.Fatal("the cycle ended before B's promotion flipped: the test did not set up the race")
	}
	wg.Wait()
	require.Empty(t, cyc.Errors, "no delete failed")
	requireNoObjects(t, f, "collections/")
	requireContent(t, s, "pa", api.MetricL2, wantA, dim)
	requireContent(t, s, "pb", api.MetricL2, wantB, dim)
	var quiet api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &quiet)
	require.Empty(t, quiet.Errors)
}
