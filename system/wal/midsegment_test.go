package wal

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordOffsets returns the offset of every record of an intact segment.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var offs []int64
	for off := 0; off < len(b); {
		offs = append(offs, int64(off))
		off += headerLen + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return offs
}

// TestDamageFollowedByIntactRecordsRefusesToOpen: one bad record in the
// middle of the last segment, with intact, acknowledged records after it,
// is corruption, not a torn tail. Open refuses with ErrCorrupt naming the
// file and the offset of the damage, and leaves the file as it was.
// Regression: Open truncated the segment at the damage, silently dropping
// every later record, and handed their LSNs out again.
func TestDamageFollowedByIntactRecordsRefusesToOpen(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b []byte, off int64)
	}{
		{"bit flip in a middle record", func(b []byte, off int64) { b[off+headerLen+9] ^= 0x04 }},
		{"garbled length of a middle record", func(b []byte, off int64) { binary.LittleEndian.PutUint32(b[off:], 0x00ffffff) }},
		{"zeroed middle record", func(b []byte, off int64) { clear(b[off : off+headerLen+8+3]) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _, _ := open(t, dir, Options{})
			appendN(t, w, 10, "r")
			require.NoError(t, w.Close())
			path := lastSegment(t, dir)
			offs := recordOffsets(t, path)
			require.Len(t, offs, 10)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			tc.damage(b, offs[4])
			require.NoError(t, os.WriteFile(path, b, 0o644))

			replayed := 0
			_, _, err = Open(dir, Options{}, discard(), func(uint64, []byte) error { replayed++; return nil })
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, fmt.Sprintf("offset %d", offs[4]))
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.Equal(t, b, after, "a refused segment is left as it was")
		})
	}
}

// TestRepairQuarantinesAndKeepsIntactRecords: opened with Repair, a
// segment with a bad record in the middle is copied untouched to the
// quarantine folder and rewritten with every intact record, before and
// after the damage; numbering goes on after the last of them, and the
// repaired log opens plainly.
func TestRepairQuarantinesAndKeepsIntactRecords(t *testing.T) {
	dir := t.TempDir()
	w, _, _ := open(t, dir, Options{})
	want := appendN(t, w, 10, "r")
	require.NoError(t, w.Close())
	path := lastSegment(t, dir)
	offs := recordOffsets(t, path)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	orig[offs[4]+headerLen+9] ^= 0x04
	require.NoError(t, os.WriteFile(path, orig, 0o644))

	w2, got, st := open(t, dir, Options{Repair: true})
	require.Equal(t, append(want[:4:4], want[5:]...), got, "every intact record, before and after the damage")
	require.Len(t, st.Repaired, 1)
	r := st.Repaired[0]
	require.Equal(t, path, r.Segment)
	require.Equal(t, offs[4], r.FirstDamage)
	require.Equal(t, offs[5]-offs[4], r.Dropped)
	require.Equal(t, filepath.Join(dir, QuarantineDir), filepath.Dir(r.Quarantine))
	q, err := os.ReadFile(r.Quarantine)
	require.NoError(t, err)
	require.Equal(t, orig, q, "the quarantined copy is the damaged segment as found")
	more := appendN(t, w2, 1, "n")
	require.Equal(t, want[9].lsn+1, more[0].lsn, "no LSN is handed out twice")
	require.NoError(t, w2.Close())

	_, got, st = open(t, dir, Options{})
	require.Equal(t, append(append(want[:4:4], want[5:]...), more...), got)
	require.Empty(t, st.Repaired)
	require.Zero(t, st.Truncated)
}
