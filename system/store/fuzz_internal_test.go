package store

import (
	"testing"

	"github.com/tierchaos/tierchaos/system/api"
)

// FuzzDecodeInsertRecord feeds arbitrary WAL payloads to the record
// decoder: it never panics, and whatever it accepts re-encodes to the same
// bytes.
func FuzzDecodeInsertRecord(f *testing.F) {
	f.Add(encodeInsert(7, 2, []api.Vector{{ID: "a", Values: []float32{1, 2}}, {ID: "b", Values: []float32{3, 4}}}))
	f.Add(encodeInsert(1, 1, nil))
	f.Add([]byte{recInsert, 0, 0, 0, 0, 0, 0, 0, 1, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeInsert(b)
		if err != nil {
			return
		}
		again := encodeInsert(r.collection, r.dim, r.vectors)
		if string(again) != string(b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
		_ = r.validate(r.dim)
	})
}
