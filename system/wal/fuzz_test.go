package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets check Open against an oracle written from the record
// layout alone (oracleRecords, oracleIntactAt), not from the replay code.

// oracleIntactAt reports whether a whole record starts at off in b whose
// CRC matches and whose LSN follows after by at most maxLSNGap.
func oracleIntactAt(b []byte, off int, after uint64) bool {
	if off < 0 || off+headerLen+8 > len(b) {
		return false
	}
	n := int(binary.LittleEndian.Uint32(b[off:]))
	if n < 8 || n > MaxRecord+8 || off+headerLen+n > len(b) {
		return false
	}
	body := b[off+headerLen : off+headerLen+n]
	lsn := binary.LittleEndian.Uint64(body)
	return crc32.Checksum(body, castagnoli) == binary.LittleEndian.Uint32(b[off+4:]) && lsn > after && lsn-after <= maxLSNGap
}

// oracleRecords decodes b as whole records with increasing LSNs after
// after; ok is false if b is not exactly that.
func oracleRecords(b []byte, after uint64) (recs []rec, ok bool) {
	for off := 0; off < len(b); {
		if !oracleIntactAt(b, off, after) {
			return recs, false
		}
		n := int(binary.LittleEndian.Uint32(b[off:]))
		lsn := binary.LittleEndian.Uint64(b[off+headerLen:])
		recs = append(recs, rec{lsn, string(b[off+headerLen+8 : off+headerLen+n])})
		after = lsn
		off += headerLen + n
	}
	return recs, true
}

func collect(out *[]rec) func(uint64, []byte) error {
	return func(lsn uint64, p []byte) error {
		*out = append(*out, rec{lsn, string(p)})
		return nil
	}
}

func validSeed(f *testing.F, opts Options, payloads ...string) string {
	f.Helper()
	dir := f.TempDir()
	w, _, err := Open(dir, opts, discard(), func(uint64, []byte) error { return nil })
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range payloads {
		if _, err := w.Append(context.Background(), []byte(p)); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	return dir
}

// FuzzWALReplay writes arbitrary bytes as the only segment and opens the
// log. Open never panics and either
//   - succeeds, having replayed exactly the intact records before the
//     first damage, in LSN order, and cut only a tail in which no intact
//     record follows (a torn tail); the log then takes appends that a
//     second opening replays after the same records; or
//   - refuses with a *CorruptError at the first damage, whose Next is an
//     intact record, and leaves the file as it was.
//
// Opened to repair, the same bytes always open, keep every record the
// plain opening replayed and the one at Next, quarantine the original,
// and leave a segment a plain opening reads whole.
func FuzzWALReplay(f *testing.F) {
	dir := validSeed(f, Options{}, "one", "two", "three")
	valid, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0))
	mid := bytes.Clone(valid)
	mid[headerLen+8+headerLen+9] ^= 1 // inside "two"
	f.Add(mid)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, segName(1))
		if err := os.WriteFile(path, seg, 0o644); err != nil {
			t.Fatal(err)
		}
		var first []rec
		w, st, err := Open(dir, Options{}, discard(), collect(&first))
		for i := 1; i < len(first); i++ {
			if first[i].lsn <= first[i-1].lsn {
				t.Fatalf("lsn %d after %d", first[i].lsn, first[i-1].lsn)
			}
		}
		if err != nil {
			checkRefusal(t, err, path, seg, first)
		} else {
			checkTornTail(t, w, st, path, seg, first)
		}
		checkRepair(t, seg, first, err)
	})
}

// checkRefusal: err is a *CorruptError at the end of the replayed
// records, with an intact record at Next, and the file is unchanged.
func checkRefusal(t *testing.T, err error, path string, seg []byte, replayed []rec) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Segment != path {
		t.Fatalf("the only segment may only be refused as corrupt, got %v", err)
	}
	after := uint64(0)
	if n := len(replayed); n > 0 {
		after = replayed[n-1].lsn
	}
	intact, ok := oracleRecords(seg[:ce.Offset], 0)
	if !ok || len(intact) != len(replayed) {
		t.Fatalf("refused at offset %d, but the bytes before it are not the %d replayed records", ce.Offset, len(replayed))
	}
	if ce.Next >= 0 && (ce.Next <= ce.Offset || !oracleIntactAt(seg, int(ce.Next), after)) {
		t.Fatalf("no intact record at offset %d (damage at %d)", ce.Next, ce.Offset)
	}
	if ce.Next < 0 {
		for off := int(ce.Offset) + 1; off < len(seg); off++ {
			if oracleIntactAt(seg, off, after) {
				return // refused as unsure, and rightly: there is one
			}
		}
	}
	now, rerr := os.ReadFile(path)
	if rerr != nil || !bytes.Equal(now, seg) {
		t.Fatalf("a refused segment must be left as it was (%v)", rerr)
	}
}

// checkTornTail: Open kept a prefix made of the replayed records, cut
// nothing behind which an intact record lies, and the log goes on.
func checkTornTail(t *testing.T, w *WAL, st ReplayStats, path string, seg []byte, replayed []rec) {
	t.Helper()
	now, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(seg, now) || st.Truncated != int64(len(seg)-len(now)) {
		t.Fatalf("kept %d of %d bytes, not a prefix, or Truncated=%d wrong", len(now), len(seg), st.Truncated)
	}
	kept, ok := oracleRecords(now, 0)
	if !ok || len(kept) != len(replayed) || st.Records != len(replayed) {
		t.Fatalf("kept bytes are not exactly the %d replayed records (%d decoded, stats %d)", len(replayed), len(kept), st.Records)
	}
	for i := range kept {
		if kept[i] != replayed[i] {
			t.Fatalf("record %d: replayed %+v, file holds %+v", i, replayed[i], kept[i])
		}
	}
	after := uint64(0)
	if n := len(replayed); n > 0 {
		after = replayed[n-1].lsn
	}
	for off := len(now); off < len(seg); off++ {
		if oracleIntactAt(seg, off, after) {
			t.Fatalf("cut a tail with an intact record at offset %d", off)
		}
	}
	lsn, err := w.Append(context.Background(), []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var second []rec
	w2, _, err := Open(filepath.Dir(path), Options{}, discard(), collect(&second))
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(replayed, rec{lsn, "after"})
	if len(second) != len(want) {
		t.Fatalf("second replay has %d records, want %d", len(second), len(want))
	}
	for i := range want {
		if second[i] != want[i] {
			t.Fatalf("record %d: %+v, want %+v", i, second[i], want[i])
		}
	}
}

// checkRepair opens seg with Repair in a fresh folder.
func checkRepair(t *testing.T, seg []byte, plain []rec, plainErr error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, segName(1))
	if err := os.WriteFile(path, seg, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []rec
	w, st, err := Open(dir, Options{Repair: true}, discard(), collect(&got))
	if err != nil {
		t.Fatalf("opening to repair failed: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) < len(plain) {
		t.Fatalf("repair replayed %d records, fewer than the %d before the damage", len(got), len(plain))
	}
	for i := range plain {
		if got[i] != plain[i] {
			t.Fatalf("record %d: %+v, the plain opening replayed %+v", i, got[i], plain[i])
		}
	}
	var ce *CorruptError
	if errors.As(plainErr, &ce) {
		if len(st.Repaired) != 1 {
			t.Fatalf("damage at %d: %d repairs reported", ce.Offset, len(st.Repaired))
		}
		q, err := os.ReadFile(st.Repaired[0].Quarantine)
		if err != nil || !bytes.Equal(q, seg) {
			t.Fatalf("quarantined copy differs from the original (%v)", err)
		}
		if ce.Next >= 0 && len(got) == len(plain) {
			t.Fatalf("the intact record at %d was not kept", ce.Next)
		}
	} else if len(st.Repaired) != 0 || len(got) != len(plain) {
		t.Fatalf("nothing to repair, but %d repairs and %d records (plain %d)", len(st.Repaired), len(got), len(plain))
	}
	var again []rec
	w, st, err = Open(dir, Options{}, discard(), collect(&again))
	if err != nil {
		t.Fatalf("a repaired log must open plainly: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Truncated != 0 || len(again) != len(got) {
		t.Fatalf("reopened repaired log: %d records (want %d), %d bytes cut", len(again), len(got), st.Truncated)
	}
}
