package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// packSegments frames segment files as one fuzz input: per segment its
// first LSN (u64), its length (u32) and its bytes.
func packSegments(segs map[uint64][]byte) []byte {
	var out []byte
	for _, first := range slices.Sorted(func(yield func(uint64) bool) {
		for k := range segs {
			if !yield(k) {
				return
			}
		}
	}) {
		out = binary.LittleEndian.AppendUint64(out, first)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(segs[first])))
		out = append(out, segs[first]...)
	}
	return out
}

// unpackSegments is the inverse of packSegments for any input: a frame
// cut short keeps what is there, a repeated name keeps the first, and at
// most 8 segments are read.
func unpackSegments(b []byte) map[uint64][]byte {
	segs := map[uint64][]byte{}
	for len(b) >= 12 && len(segs) < 8 {
		first := binary.LittleEndian.Uint64(b)
		n := int(min(uint64(binary.LittleEndian.Uint32(b[8:])), uint64(len(b)-12)))
		if _, dup := segs[first]; !dup {
			segs[first] = bytes.Clone(b[12 : 12+n])
		}
		b = b[12+n:]
	}
	return segs
}

func readSegments(f *testing.F, dir string) map[uint64][]byte {
	f.Helper()
	list, err := listSegments(fsutil.OS, dir)
	if err != nil {
		f.Fatal(err)
	}
	segs := map[uint64][]byte{}
	for _, s := range list {
		b, err := os.ReadFile(s.path)
		if err != nil {
			f.Fatal(err)
		}
		segs[s.first] = b
	}
	return segs
}

// FuzzWALReplaySegments writes arbitrary segment files (names and bytes)
// and opens the log. Open never panics and either
//   - succeeds: the LSNs it replays increase across segments; every
//     segment but the last is left as it was and replayed whole; of the
//     last only a torn tail (no intact record behind it) is cut; the next
//     LSN follows both the last replayed one and the newest segment's
//     name; appends then replay after the same records on a second
//     opening; or
//   - refuses with a *CorruptError naming one of the segments, and
//     changes no file.
//
// Opened to repair, files that were refused always open, and then open
// plainly.
func FuzzWALReplaySegments(f *testing.F) {
	// Small seeds keep the fuzzer's minimization of new inputs short.
	var payloads []string
	for i := range 7 {
		payloads = append(payloads, strings.Repeat("p", i%2+1))
	}
	base := readSegments(f, validSeed(f, Options{SegmentBytes: 30}, payloads...))
	if len(base) < 3 {
		f.Fatalf("seed log has %d segments", len(base))
	}
	f.Add(packSegments(base))
	firsts := slices.Sorted(func(yield func(uint64) bool) {
		for k := range base {
			if !yield(k) {
				return
			}
		}
	})
	mutate := func(fn func(segs map[uint64][]byte)) {
		segs := map[uint64][]byte{}
		for k, v := range base {
			segs[k] = bytes.Clone(v)
		}
		fn(segs)
		f.Add(packSegments(segs))
	}
	mutate(func(s map[uint64][]byte) { s[firsts[0]][headerLen+9] ^= 1 })                  // older segment damaged
	mutate(func(s map[uint64][]byte) { l := s[firsts[len(firsts)-2]]; l[len(l)-1] ^= 1 }) // older segment's tail
	mutate(func(s map[uint64][]byte) { delete(s, firsts[0]) })                            // oldest dropped
	mutate(func(s map[uint64][]byte) { delete(s, firsts[1]) })                            // a gap
	mutate(func(s map[uint64][]byte) { s[firsts[len(firsts)-1]+40] = nil })               // newest empty, far ahead
	mutate(func(s map[uint64][]byte) {
		last := firsts[len(firsts)-1]
		s[last] = append(s[last], s[firsts[0]]...) // intact old records after the end: LSNs go back
	})
	f.Fuzz(func(t *testing.T, packed []byte) {
		segs := unpackSegments(packed)
		dir := t.TempDir()
		for first, b := range segs {
			if err := os.WriteFile(filepath.Join(dir, segName(first)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var got []rec
		w, st, err := Open(dir, Options{}, discard(), collect(&got))
		for i := 1; i < len(got); i++ {
			if got[i].lsn <= got[i-1].lsn {
				t.Fatalf("lsn %d after %d", got[i].lsn, got[i-1].lsn)
			}
		}
		names := slices.Sorted(func(yield func(uint64) bool) {
			for k := range segs {
				if !yield(k) {
					return
				}
			}
		})
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open may only refuse corrupt segments, got %v", err)
			}
			named := false
			for _, first := range names {
				named = named || ce.Segment == filepath.Join(dir, segName(first))
			}
			if !named {
				t.Fatalf("the error names %s, not a segment", ce.Segment)
			}
			for first, b := range segs {
				now, rerr := os.ReadFile(filepath.Join(dir, segName(first)))
				if rerr != nil || !bytes.Equal(now, b) {
					t.Fatalf("segment %d changed although Open refused (%v)", first, rerr)
				}
			}
		} else {
			checkOpened(t, w, st, dir, segs, names, got)
			return
		}
		repairDir := t.TempDir()
		for first, b := range segs {
			if err := os.WriteFile(filepath.Join(repairDir, segName(first)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var repaired []rec
		w, _, err = Open(repairDir, Options{Repair: true}, discard(), collect(&repaired))
		if err != nil {
			t.Fatalf("opening to repair failed: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var again []rec
		w, st, err = Open(repairDir, Options{}, discard(), collect(&again))
		if err != nil {
			t.Fatalf("a repaired log must open plainly: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st.Truncated != 0 || len(again) != len(repaired) {
			t.Fatalf("reopened repaired log: %d records (want %d), %d bytes cut", len(again), len(repaired), st.Truncated)
		}
	})
}

// checkOpened checks a successful opening of segs (names ascending).
func checkOpened(t *testing.T, w *WAL, st ReplayStats, dir string, segs map[uint64][]byte, names []uint64, got []rec) {
	t.Helper()
	var after uint64
	var want []rec
	for i, first := range names {
		now, err := os.ReadFile(filepath.Join(dir, segName(first)))
		if err != nil {
			t.Fatal(err)
		}
		orig := segs[first]
		last := i == len(names)-1
		if !last && !bytes.Equal(now, orig) {
			t.Fatalf("segment %d (not the last) changed", first)
		}
		if !bytes.HasPrefix(orig, now) {
			t.Fatalf("segment %d: what is left is not a prefix", first)
		}
		recs, ok := oracleRecords(now, after)
		if !ok {
			t.Fatalf("segment %d is not whole records after Open", first)
		}
		want = append(want, recs...)
		if n := len(recs); n > 0 {
			after = recs[n-1].lsn
		}
		if last {
			for off := len(now); off < len(orig); off++ {
				if oracleIntactAt(orig, off, after) {
					t.Fatalf("cut a tail of segment %d with an intact record at offset %d", first, off)
				}
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, the files hold %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: replayed %+v, file holds %+v", i, got[i], want[i])
		}
	}
	if len(names) > 0 && (st.LastLSN+1 < names[len(names)-1] || st.LastLSN < after) {
		t.Fatalf("next LSN %d is not after the last replayed (%d) and the newest segment's name (%d)", st.LastLSN+1, after, names[len(names)-1])
	}
	lsn, err := w.Append(context.Background(), []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if lsn != st.LastLSN+1 {
		t.Fatalf("appended at %d, want %d", lsn, st.LastLSN+1)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var second []rec
	w2, _, err := Open(dir, Options{}, discard(), collect(&second))
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(want, rec{lsn, "after"})
	if len(second) != len(want) || second[len(second)-1] != want[len(want)-1] {
		t.Fatalf("second replay has %d records ending %+v, want %d ending %+v", len(second), second[len(second)-1], len(want), want[len(want)-1])
	}
}
