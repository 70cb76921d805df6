//go:build linux

package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/tmpfs/tmpfstest"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/store"
)

// TestDiskFullFailsTransitionCleanly runs the store on a 1 MiB tmpfs and
// fills it: a transition that needs the local volume fails with
// insufficient_storage, keeps the old tier and leaves no partial file.
// The tmpfs needs no root (internal/tmpfs); where none can be made the
// test skips with the reason, or fails in CI.
func TestDiskFullFailsTransitionCleanly(t *testing.T) {
	vol := tmpfstest.Dir(t, "1m")
	ctx := context.Background()
	f := newFixture(t, nil)
	f.dir = vol
	s := f.open(t, nil)
	const dim = 64
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "full", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	want := data{}
	// About 650 KiB of WAL: the Parquet copy cannot fit beside it.
	for i := range 25 {
		b := batch(fmt.Sprintf("f%d-", i), 100, dim, i)
		_, err := s.Insert(ctx, "full", b)
		require.NoError(t, err)
		want.add(b)
	}
	_, err = s.SetTier(ctx, "full", api.TierWarm)
	require.Equal(t, api.CodeInsufficientStorage, api.CodeOf(err), "%v", err)
	c, err := s.Get(ctx, "full")
	require.NoError(t, err)
	require.Equal(t, api.TierHot, c.Tier)
	files, temps := localFiles(t, vol)
	require.Empty(t, files, "no partial file")
	require.Empty(t, temps, "no temporary file")
	requireContent(t, s, "full", api.MetricL2, want, dim)

	// Cold does not need the volume; coming back from cold does, and fails
	// the same way, keeping the collection cold.
	_, err = s.SetTier(ctx, "full", api.TierCold)
	require.NoError(t, err)
	_, err = s.Insert(ctx, "full", batch("x", 1, dim, 0))
	require.Equal(t, api.CodeInsufficientStorage, api.CodeOf(err), "%v", err)
	c, err = s.Get(ctx, "full")
	require.NoError(t, err)
	require.Equal(t, api.TierCold, c.Tier)
	files, temps = localFiles(t, vol)
	require.Empty(t, files)
	require.Empty(t, temps)
	// Once the WAL is trimmed by a worker cycle there is room again.
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &cyc)
	require.Empty(t, cyc.Errors)
	require.Positive(t, cyc.WALSegmentsDropped)
	requireContent(t, s, "full", api.MetricL2, want, dim)
}

// TestFullVolumeCanBeFreedThroughTheAPI fills a 1 MiB tmpfs data volume
// through the WAL to its last page while a warm collection F holds a big
// local file: deleting F, or demoting it to cold, must still commit and
// free its file, after which inserts work again. Regression: every commit
// wrote a new manifest file, which needs a free page, so a full volume
// wedged tierd (DELETE answered insufficient_storage).
func TestFullVolumeCanBeFreedThroughTheAPI(t *testing.T) {
	cases := []struct {
		name string
		free func(ctx context.Context, s *store.Store) error
	}{
		{"delete", func(ctx context.Context, s *store.Store) error { return s.Delete(ctx, "f") }},
		{"demote-to-cold", func(ctx context.Context, s *store.Store) error {
			_, err := s.SetTier(ctx, "f", api.TierCold)
			return err
		}},
		// The WAL hog itself: its segment goes at the next worker cycle.
		{"delete-hot-then-cycle", func(ctx context.Context, s *store.Store) error {
			if err := s.Delete(ctx, "h"); err != nil {
				return err
			}
			var cyc api.WorkerCycle
			s.Maintain(ctx, store.MaintainOptions{}, &cyc)
			if len(cyc.Errors) > 0 {
				return fmt.Errorf("worker cycle: %v", cyc.Errors)
			}
			if cyc.WALSegmentsDropped == 0 {
				return errors.New("no WAL segment dropped")
			}
			_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "h", Dimension: 64, Metric: api.MetricL2})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vol := tmpfstest.Dir(t, "1m")
			ctx := context.Background()
			f := newFixture(t, nil)
			f.dir = vol
			s := f.open(t, nil)
			const dim = 64
			_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "f", Dimension: dim, Metric: api.MetricL2})
			require.NoError(t, err)
			wantF := data{}
			for i := range 4 {
				b := batch(fmt.Sprintf("f%d-", i), 250, dim, i)
				_, err := s.Insert(ctx, "f", b)
				require.NoError(t, err)
				wantF.add(b)
			}
			_, err = s.SetTier(ctx, "f", api.TierWarm)
			require.NoError(t, err)
			var cyc api.WorkerCycle
			s.Maintain(ctx, store.MaintainOptions{}, &cyc)
			require.Empty(t, cyc.Errors)

			// H fills the rest of the volume through the WAL, to the last page.
			_, err = s.Create(ctx, api.CreateCollectionRequest{Name: "h", Dimension: dim, Metric: api.MetricL2})
			require.NoError(t, err)
			wantH := data{}
			fill := func(size int) int {
				acked := 0
				for i := 0; ; i++ {
					b := batch(fmt.Sprintf("h%d-%d-", size, i), size, dim, i)
					_, err := s.Insert(ctx, "h", b)
					if err != nil {
						require.Equal(t, api.CodeInsufficientStorage, api.CodeOf(err), "%v", err)
						return acked
					}
					wantH.add(b)
					acked++
				}
			}
			require.Positive(t, fill(50))
			fill(1)
			requireContent(t, s, "h", api.MetricL2, wantH, dim)

			require.NoError(t, tc.free(ctx, s), "freeing space must work on a full volume")
			files, temps := localFiles(t, vol)
			if tc.name == "delete-hot-then-cycle" {
				wantH = data{} // a new, empty h
				require.Len(t, files, 1, "F's file stays")
			} else {
				require.Empty(t, files, "F's local file is gone")
			}
			require.Empty(t, temps)
			b := batch("after", 50, dim, 9)
			_, err = s.Insert(ctx, "h", b)
			require.NoError(t, err, "inserts work again")
			wantH.add(b)

			require.NoError(t, s.Close())
			s = f.open(t, nil)
			requireContent(t, s, "h", api.MetricL2, wantH, dim)
			c, err := s.Get(ctx, "f")
			switch tc.name {
			case "delete-hot-then-cycle":
				require.NoError(t, err)
				require.Equal(t, api.TierWarm, c.Tier)
				requireContent(t, s, "f", api.MetricL2, wantF, dim)
			case "delete":
				require.Equal(t, api.CodeNotFound, api.CodeOf(err))
			default:
				require.NoError(t, err)
				require.Equal(t, api.TierCold, c.Tier)
				// Read in place: a promotion would need the space H holds.
				got, _, err := listAll(ctx, s, "f", api.MaxListLimit)
				require.NoError(t, err)
				require.Equal(t, wantF, got)
			}
		})
	}
}
