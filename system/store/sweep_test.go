package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/store"
)

// TestSweepKeepsUploadCommittedBetweenItsReads: an upload whose object
// the sweep listed and that commits and finishes between the sweep's two
// reads of what to keep (running uploads, manifest references) must not
// be deleted. Regression: the sweep read the references first, so such an
// object was in neither set and a committed cold copy or user snapshot
// was deleted.
func TestSweepKeepsUploadCommittedBetweenItsReads(t *testing.T) {
	cases := []struct {
		name string
		hold string // where the upload waits, object stored, not committed
		run  func(ctx context.Context, s *store.Store) (key string, err error)
	}{
		{"demotion", store.HookColdVerified, func(ctx context.Context, s *store.Store) (string, error) {
			c, err := s.SetTier(ctx, "sw", api.TierCold)
			return c.Object, err
		}},
		{"snapshot", store.HookSnapshotUploaded, func(ctx context.Context, s *store.Store) (string, error) {
			sn, err := s.CreateSnapshot(ctx, "sw")
			return sn.Object, err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, nil)
			var armed atomic.Bool
			uploaded, commit := make(chan struct{}), make(chan struct{})
			between, resume := make(chan struct{}), make(chan struct{})
			hook := func(p string) {
				if !armed.Load() {
					return
				}
				switch p {
				case tc.hold:
					close(uploaded)
					<-commit
				case store.HookSweepBetweenReads:
					close(between)
					<-resume
				}
			}
			s := f.open(t, func(o *store.Options) { o.Hook = hook })
			want := setup(t, s, "sw", api.MetricDot)
			armed.Store(true)

			var wg sync.WaitGroup
			var key string
			var upErr error
			upDone := make(chan struct{})
			go func() {
				defer close(upDone)
				key, upErr = tc.run(ctx, s)
			}()
			<-uploaded
			var removed []string
			var sweepErr error
			wg.Go(func() { removed, sweepErr = s.SweepOrphans(ctx) })
			<-between
			// The upload commits and finishes between the sweep's reads.
			close(commit)
			<-upDone
			close(resume)
			wg.Wait()
			require.NoError(t, upErr)
			require.NoError(t, sweepErr)
			assert.Empty(t, removed, "nothing was an orphan")
			require.Contains(t, objectKeys(t, f.objs, "collections/sw/"), key, "the committed object survives")
			armed.Store(false)
			if tc.name == "snapshot" {
				_, err := s.Restore(ctx, "sw", key[len("collections/sw/snapshots/"):len(key)-len(".parquet")])
				require.NoError(t, err)
			}
			requireContent(t, s, "sw", api.MetricDot, want, dim)
		})
	}
}

// TestCrashAfterSnapshotUpload: a crash between a snapshot's upload and
// its commit leaves an object no manifest lists; after the restart the
// sweep removes it and the collection is intact.
func TestCrashAfterSnapshotUpload(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "cs", api.MetricL2)
	require.NoError(t, s.Close())
	s = f.open(t, func(o *store.Options) { o.Hook = crashAt(store.HookSnapshotUploaded) })
	got := runCrashing(func() { _, _ = s.CreateSnapshot(ctx, "cs") })
	require.Equal(t, store.HookSnapshotUploaded, got)
	require.NoError(t, s.Close())
	require.Len(t, objectKeys(t, f.objs, "collections/cs/snapshots/"), 1, "the uploaded object")

	s = f.open(t, nil)
	list, err := s.ListSnapshots(ctx, "cs")
	require.NoError(t, err)
	require.Empty(t, list, "the snapshot was never acknowledged")
	removed, err := s.SweepOrphans(ctx)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	require.Empty(t, objectKeys(t, f.objs, "collections/"))
	requireContent(t, s, "cs", api.MetricL2, want, dim)
}
