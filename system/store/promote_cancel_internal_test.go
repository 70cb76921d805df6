package store

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/uploader"
)

// TestCancelledPromotionIsNotSharedWithWaiters: requests that find a
// cold collection wait for one promotion and share its outcome. When that
// promotion fails only because its own requester gave up (the client's
// context ended), the waiters must not answer with that failure: it says
// nothing about the collection, and each of them promotes it itself. A
// promotion that fails for the collection's own reason (its object is
// gone) is shared.
func TestCancelledPromotionIsNotSharedWithWaiters(t *testing.T) {
	d := config.Default()
	objs := uploader.NewMemStore()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cs, err := cold.New(objs, cold.Options{OpTimeout: 2 * time.Second, MaxRetries: 1, PartSize: 5 << 20, Concurrency: 2}, log)
	require.NoError(t, err)
	s, err := Open(Options{DataDir: t.TempDir(), Limits: d.Limits, WAL: d.WAL, Cold: cs}, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for _, name := range []string{"gave-up", "gone"} {
		_, err = s.Create(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
		require.NoError(t, err)
		_, err = s.Insert(ctx, name, []api.Vector{{ID: "a", Values: []float32{1, 2}}})
		require.NoError(t, err)
		_, err = s.SetTier(ctx, name, api.TierCold)
		require.NoError(t, err)
	}

	// The requester's context ends: its own answer says so, the waiters
	// see nothing to share, and the next waiter's promotion succeeds.
	c, err := s.lookup("gave-up")
	require.NoError(t, err)
	gen := c.promoteGen.Load() // what a waiter read before the slot
	gaveUp, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, acquire(ctx, c, true))
	err = s.promoteRecorded(gaveUp, c, "access")
	release(c)
	require.ErrorIs(t, err, context.Canceled)
	require.NotEqual(t, gen, c.promoteGen.Load(), "the promotion ran")
	c.mu.RLock()
	shared := c.promoteErr
	c.mu.RUnlock()
	require.NoError(t, shared, "a requester's cancellation is not the waiters' answer")
	require.NoError(t, s.ensureHot(ctx, c), "a waiter promotes the collection itself")
	got, err := s.Get(ctx, "gave-up")
	require.NoError(t, err)
	require.Equal(t, api.TierHot, got.Tier)

	// The object is gone: that failure is the collection's, and shared.
	g, err := s.lookup("gone")
	require.NoError(t, err)
	g.mu.RLock()
	key := g.data.Key
	g.mu.RUnlock()
	require.NoError(t, objs.DeleteObject(ctx, key))
	require.NoError(t, acquire(ctx, g, true))
	err = s.promoteRecorded(ctx, g, "access")
	release(g)
	require.Error(t, err)
	g.mu.RLock()
	shared = g.promoteErr
	g.mu.RUnlock()
	require.Equal(t, err, shared, "the collection's own failure is what waiters answer")
}
