package wal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tierchaos/tierchaos/system/fsutil"
	"time"

	"github.com/stretchr/testify/require"
)

type rec struct {
	lsn     uint64
	payload string
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, dir string, opts Options) (*WAL, []rec, ReplayStats) {
	t.Helper()
	var got []rec
	w, st, err := Open(dir, opts, discard(), func(lsn uint64, p []byte) error {
		got = append(got, rec{lsn, string(p)})
		return nil
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return w, got, st
}

func appendN(t *testing.T, w *WAL, n int, prefix string) []rec {
	t.Helper()
	var out []rec
	for i := range n {
		p := fmt.Sprintf("%s-%d", prefix, i)
		lsn, err := w.Append(context.Background(), []byte(p))
		require.NoError(t, err)
		out = append(out, rec{lsn, p})
	}
	return out
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(fsutil.OS, dir)
	require.NoError(t, err)
	for i := len(segs) - 1; i >= 0; i-- {
		if info, err := os.Stat(segs[i].path); err == nil && info.Size() > 0 {
			return segs[i].path
		}
	}
	t.Fatal("no non-empty segment")
	return ""
}

func TestReplayAfterCleanClose(t *testing.T) {
	dir := t.TempDir()
	w, got, _ := open(t, dir, Options{})
	require.Empty(t, got)
	want := appendN(t, w, 50, "a")
	require.NoError(t, w.Close())
	w2, got, st := open(t, dir, Options{})
	require.Equal(t, want, got)
	require.Equal(t, uint64(50), st.LastLSN)
	more := appendN(t, w2, 3, "b")
	require.Equal(t, uint64(51), more[0].lsn)
}

func TestTornTailIsTruncated(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the last segment; keep is how many records survive.
		damage func(t *testing.T, path string)
		keep   int
	}{
		{"half a header", func(t *testing.T, p string) { appendBytes(t, p, []byte{9, 0, 0}) }, 10},
		{"header without body", func(t *testing.T, p string) { appendBytes(t, p, []byte{100, 0, 0, 0, 1, 2, 3, 4}) }, 10},
		{"garbage tail", func(t *testing.T, p string) { appendBytes(t, p, []byte("this is not a record at all")) }, 10},
		{"last record cut", func(t *testing.T, p string) { chop(t, p, 3) }, 9},
		{"last record bit flip", func(t *testing.T, p string) { flip(t, p, -2) }, 9},
		{"zeroed tail", func(t *testing.T, p string) { appendBytes(t, p, make([]byte, 4096)) }, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _, _ := open(t, dir, Options{})
			want := appendN(t, w, 10, "r")
			require.NoError(t, w.Close())
			path := lastSegment(t, dir)
			tc.damage(t, path)
			w2, got, st := open(t, dir, Options{})
			require.Equal(t, want[:tc.keep], got)
			require.Positive(t, st.Truncated)
			// New appends continue after the survivors and replay cleanly.
			more := appendN(t, w2, 2, "n")
			require.Equal(t, uint64(tc.keep+1), more[0].lsn)
			require.NoError(t, w2.Close())
			_, got, st = open(t, dir, Options{})
			require.Equal(t, append(want[:tc.keep:tc.keep], more...), got)
			require.Zero(t, st.Truncated)
		})
	}
}

func TestCorruptOlderSegmentFailsOpen(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{SegmentBytes: 200})
	appendN(t, w, 30, "x")
	require.NoError(t, w.Close())
	segs, err := listSegments(fsutil.OS, dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 2)
	flip(t, segs[0].path, 20)
	_, _, err = Open(dir, Options{}, discard(), func(uint64, []byte) error { return nil })
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, segs[0].path)
}

func TestGroupCommitConcurrent(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	syncs, synced := 0, 0
	w, _, _ := open(t, dir, Options{OnSync: func(_ time.Duration, n int) {
		mu.Lock()
		syncs++
		synced += n
		mu.Unlock()
	}})
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() { appendN(t, w, 20, fmt.Sprintf("g%d", g)) })
	}
	wg.Wait()
	mu.Lock()
	require.Equal(t, 640, synced, "every record is made durable by exactly one sync")
	require.LessOrEqual(t, syncs, 640)
	t.Logf("640 records in %d fsyncs", syncs)
	mu.Unlock()
	require.NoError(t, w.Close())
	_, got, _ := open(t, dir, Options{})
	require.Len(t, got, 640)
	for i, r := range got {
		require.Equal(t, uint64(i+1), r.lsn)
	}
}

func TestDropBefore(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{SegmentBytes: 300})
	recs := appendN(t, w, 60, "d")
	before, _ := w.Stats()
	require.Greater(t, before, 3)
	n, err := w.DropBefore(31)
	require.NoError(t, err)
	require.Positive(t, n)
	after, _ := w.Stats()
	require.Equal(t, before-n, after)
	require.NoError(t, w.Close())
	_, got, _ := open(t, dir, Options{})
	// Every record at or after LSN 31 is still there.
	require.LessOrEqual(t, got[0].lsn, uint64(31))
	require.Equal(t, recs[len(recs)-1], got[len(got)-1])
	require.Equal(t, recs[got[0].lsn-1:], got)
}

func TestAppendAfterClose(t *testing.T) {
	w, _, _ := open(t, t.TempDir(), Options{})
	require.NoError(t, w.Close())
	_, err := w.Append(context.Background(), []byte("x"))
	require.ErrorIs(t, err, ErrClosed)
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func chop(t *testing.T, path string, n int64) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, info.Size()-n))
}

// flip flips one bit at off (negative: from the end).
func flip(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	if off < 0 {
		off += len(b)
	}
	b[off] ^= 0x10
	require.NoError(t, os.WriteFile(filepath.Clean(path), b, 0o644))
}

func TestRotateLetsCoveredLogGo(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{})
	recs := appendN(t, w, 5, "r")
	require.NoError(t, w.Rotate())
	require.NoError(t, w.Rotate(), "rotating an empty segment is a no-op")
	n, err := w.DropBefore(recs[4].lsn + 1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	segs, bytes := w.Stats()
	require.Equal(t, 1, segs)
	require.Zero(t, bytes)
	more := appendN(t, w, 2, "m")
	require.NoError(t, w.Close())
	_, got, _ := open(t, dir, Options{})
	require.Equal(t, more, got)
}

// TestHaltWritesNothingMore: after Halt every append fails with ErrHalted
// and nothing reaches the file; the records before it replay.
func TestHaltWritesNothingMore(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{SegmentBytes: 1 << 20})
	want := appendN(t, w, 5, "before")
	size := func() int64 {
		info, err := os.Stat(lastSegment(t, dir))
		require.NoError(t, err)
		return info.Size()
	}
	before := size()
	w.Halt()
	_, err := w.Append(context.Background(), []byte("after"))
	require.ErrorIs(t, err, ErrHalted)
	_, err = w.DropBefore(100)
	require.ErrorIs(t, err, ErrClosed)
	require.Equal(t, before, size())
	_, got, _ := open(t, dir, Options{SegmentBytes: 1 << 20})
	require.Equal(t, want, got)
}

// After every record's segment is dropped (all covered by snapshots), a
// reopened log must go on numbering after the LSNs it handed out before:
// those LSNs are recorded as covered elsewhere, and a record that reused
// one would be skipped as covered by the next recovery.
func TestLSNsContinueAfterEverySegmentWasDropped(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{})
	recs := appendN(t, w, 5, "before")
	last := recs[len(recs)-1].lsn
	require.NoError(t, w.Rotate())
	n, err := w.DropBefore(last + 1)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the segment of every record is dropped")
	require.NoError(t, w.Close())

	for round := range 3 { // the LSN must keep going up over several restarts
		w2, got, st := open(t, dir, Options{})
		require.Empty(t, got, "nothing left to replay")
		require.Equal(t, last, st.LastLSN, "round %d: the last LSN handed out before", round)
		require.Equal(t, last, w2.LastLSN())
		next := appendN(t, w2, 1, fmt.Sprintf("after-%d", round))
		require.Equal(t, last+1, next[0].lsn, "round %d: numbering goes on after the dropped records", round)
		last = next[0].lsn
		require.NoError(t, w2.Rotate())
		_, err := w2.DropBefore(last + 1)
		require.NoError(t, err)
		require.NoError(t, w2.Close())
	}
	w3, got, _ := open(t, dir, Options{})
	require.Empty(t, got)
	require.Equal(t, last, w3.LastLSN())
}
