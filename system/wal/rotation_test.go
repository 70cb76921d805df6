package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRotationFailureAfterDurableWrite: the next segment cannot be created
// (a folder already holds its name, so the open fails with EISDIR, the same
// path ENOSPC or EMFILE take at rotation). Every append whose record was
// written and fsynced is acknowledged; the log goes on writing to the
// current segment and retries the rotation on later writes; after a reopen
// every acknowledged record replays, in LSN order, and nothing else.
// Regression: the batch that crossed the segment size was reported failed
// although it was durable, and the log kept writing to the closed file, so
// every later append failed until a restart.
func TestRotationFailureAfterDurableWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{SegmentBytes: 64})
	var blocked []string
	for lsn := uint64(2); lsn <= 20; lsn++ {
		p := filepath.Join(dir, segName(lsn))
		require.NoError(t, os.Mkdir(p, 0o755))
		blocked = append(blocked, p)
	}
	// Each record (16 bytes of header and LSN + 62 of payload) fills a segment.
	var acked []rec
	for i := range 5 {
		p := fmt.Sprintf("%s-%d", strings.Repeat("x", 60), i)
		lsn, err := w.Append(ctx, []byte(p))
		require.NoError(t, err, "append %d: its record is durable, so it is acknowledged", i)
		acked = append(acked, rec{lsn, p})
	}
	segs, _ := w.Stats()
	require.Equal(t, 1, segs, "no new segment could be created")
	for _, p := range blocked {
		require.NoError(t, os.Remove(p))
	}
	more := appendN(t, w, 3, "after")
	segs, _ = w.Stats()
	require.Equal(t, 2, segs, "the rotation is retried once the name is free")
	require.NoError(t, w.Close())

	_, got, st := open(t, dir, Options{SegmentBytes: 64})
	require.Equal(t, append(acked, more...), got)
	require.Zero(t, st.Truncated)
}
