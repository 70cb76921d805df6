package wal

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tierchaos/tierchaos/system/fsutil"

	"github.com/stretchr/testify/require"
)

// TestSegmentNamesBoundTheirRecords: with appends and Rotate running
// concurrently, every record of a segment has an LSN at or after the
// segment's name and before the next segment's name, the invariant
// DropBefore relies on to delete only segments whose records are all
// covered. Regression: Rotate named the new segment after the LSN the
// writer had last reported durable, which could lag behind a batch just
// written to the old segment; a later DropBefore could then delete that
// batch's records while a collection still needed them.
func TestSegmentNamesBoundTheirRecords(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{})
	var done atomic.Bool
	var rotations sync.WaitGroup
	rotations.Go(func() {
		for !done.Load() {
			require.NoError(t, w.Rotate())
		}
	})
	var appends sync.WaitGroup
	for g := range 8 {
		appends.Go(func() {
			for i := range 150 {
				_, err := w.Append(context.Background(), []byte(fmt.Sprintf("g%d-%d", g, i)))
				require.NoError(t, err)
			}
		})
	}
	appends.Wait()
	done.Store(true)
	rotations.Wait()
	require.NoError(t, w.Close())

	segs, err := listSegments(fsutil.OS, dir)
	require.NoError(t, err)
	total := 0
	for i, s := range segs {
		b, err := os.ReadFile(s.path)
		require.NoError(t, err)
		recs, ok := oracleRecords(b, 0)
		require.True(t, ok, "segment %d is whole records", s.first)
		total += len(recs)
		for _, r := range recs {
			require.GreaterOrEqual(t, r.lsn, s.first, "record %d in segment %d", r.lsn, s.first)
			if i+1 < len(segs) {
				require.Less(t, r.lsn, segs[i+1].first, "record %d in segment %d, before segment %d", r.lsn, s.first, segs[i+1].first)
			}
		}
	}
	require.Equal(t, 8*150, total)
}
