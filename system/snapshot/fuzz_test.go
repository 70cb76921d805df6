package snapshot

import (
	"testing"
)

// FuzzDecode feeds mutated Parquet files to the decoder (past the
// checksum, as if a corrupt file had the right checksum): it never panics,
// and what it accepts has one id per row and dim values per id.
func FuzzDecode(f *testing.F) {
	ids, vecs := sample(50, 4)
	data, _, err := EncodeBytes(4, ids, vecs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gotIDs, gotVecs, err := DecodeUnverified("fuzz", b, 4)
		if err != nil {
			return
		}
		if len(gotVecs) != 4*len(gotIDs) {
			t.Fatalf("%d ids with %d values", len(gotIDs), len(gotVecs))
		}
	})
}
