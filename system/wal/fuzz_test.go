package wal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzWALReplay writes arbitrary bytes as the only segment and opens the
// log: it never panics, replays only whole records with increasing LSNs,
// and after it the log accepts appends that a second opening replays
// after exactly the same surviving records.
func FuzzWALReplay(f *testing.F) {
	// A valid log of three records as a seed, plus damaged variants.
	dir := f.TempDir()
	w, _, err := Open(dir, Options{}, discard(), func(uint64, []byte) error { return nil })
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{"one", "two", "three"} {
		if _, err := w.Append(context.Background(), []byte(p)); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		var first []rec
		w, st, err := Open(dir, Options{}, discard(), func(lsn uint64, p []byte) error {
			if n := len(first); n > 0 && lsn <= first[n-1].lsn {
				t.Fatalf("lsn %d after %d", lsn, first[n-1].lsn)
			}
			first = append(first, rec{lsn, string(p)})
			return nil
		})
		if err != nil {
			t.Fatalf("the only segment's damage must be truncated, got %v", err)
		}
		if st.Records != len(first) {
			t.Fatalf("stats say %d records, replayed %d", st.Records, len(first))
		}
		lsn, err := w.Append(context.Background(), []byte("after"))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var second []rec
		_, _, err = openNoCleanup(dir, func(lsn uint64, p []byte) error {
			second = append(second, rec{lsn, string(p)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := append(first, rec{lsn, "after"})
		if len(second) != len(want) {
			t.Fatalf("second replay has %d records, want %d", len(second), len(want))
		}
		for i := range want {
			if second[i] != want[i] {
				t.Fatalf("record %d: %+v, want %+v", i, second[i], want[i])
			}
		}
	})
}

func openNoCleanup(dir string, replay func(uint64, []byte) error) (*WAL, ReplayStats, error) {
	w, st, err := Open(dir, Options{}, discard(), replay)
	if err == nil {
		err = w.Close()
	}
	return w, st, err
}
