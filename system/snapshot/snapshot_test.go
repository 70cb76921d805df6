package snapshot

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
)

func sample(n, dim int) ([]string, []float32) {
	ids := make([]string, n)
	vecs := make([]float32, n*dim)
	for i := range ids {
		ids[i] = "id-" + strconv.Itoa(i)
		for d := 0; d < dim; d++ {
			vecs[i*dim+d] = float32(i) + float32(d)/10
		}
	}
	return ids, vecs
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 2500} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			ids, vecs := sample(n, 16)
			data, info, err := EncodeBytes(16, ids, vecs)
			require.NoError(t, err)
			require.Equal(t, int64(len(data)), info.Size)
			require.Equal(t, n, info.Count)
			gotIDs, gotVecs, err := Decode("x", data, info.Size, info.Checksum, 16)
			require.NoError(t, err)
			require.Len(t, gotIDs, n)
			require.Len(t, gotVecs, n*16)
			if n > 0 {
				require.Equal(t, ids, gotIDs)
				require.Equal(t, vecs, gotVecs)
			}
		})
	}
}

func TestCorruptionDetected(t *testing.T) {
	ids, vecs := sample(100, 8)
	data, info, err := EncodeBytes(8, ids, vecs)
	require.NoError(t, err)
	cases := []struct {
		name   string
		mutate func([]byte) []byte
		want   string
	}{
		{"bit flip", func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)/2] ^= 1; return c }, "xxh3"},
		{"truncated", func(b []byte) []byte { return append([]byte(nil), b[:len(b)-10]...) }, "bytes, expected"},
		{"empty", func([]byte) []byte { return nil }, "bytes, expected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode("collections/c/data/1.parquet", tc.mutate(data), info.Size, info.Checksum, 8)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, "collections/c/data/1.parquet")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestWrongDimensionAndGarbage(t *testing.T) {
	ids, vecs := sample(10, 8)
	data, _, err := EncodeBytes(8, ids, vecs)
	require.NoError(t, err)
	_, _, err = DecodeUnverified("f", data, 4)
	require.ErrorIs(t, err, ErrCorrupt)
	_, _, err = DecodeUnverified("f", []byte("not parquet at all"), 4)
	require.ErrorIs(t, err, ErrCorrupt)
	_, err = Encode(nil, 3, []string{"a"}, []float32{1, 2})
	require.Error(t, err)
}

func TestColumnDecodeMatchesRowDecode(t *testing.T) {
	for _, n := range []int{1, 3000, 9000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			ids, vecs := sample(n, 64)
			data, _, err := EncodeBytes(64, ids, vecs)
			require.NoError(t, err)
			gotIDs, gotVecs, ok, err := decodeColumns("f", data, 64)
			require.NoError(t, err)
			require.True(t, ok, "the fast path handles what Encode writes")
			rows, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data)))
			require.NoError(t, err)
			require.Len(t, rows, n)
			for i, r := range rows {
				require.Equal(t, r.ID, gotIDs[i])
				require.Equal(t, r.Values, gotVecs[i*64:(i+1)*64])
			}
			require.Equal(t, ids, gotIDs)
			require.Equal(t, vecs, gotVecs)
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	ids, vecs := sample(10000, 128)
	data, _, err := EncodeBytes(128, ids, vecs)
	require.NoError(b, err)
	b.Run("columns", func(b *testing.B) {
		for b.Loop() {
			if _, _, ok, err := decodeColumns("f", data, 128); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("rows", func(b *testing.B) {
		for b.Loop() {
			if _, err := parquet.Read[Row](bytes.NewReader(data), int64(len(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	ids, vecs := sample(10000, 128)
	for b.Loop() {
		if _, _, err := EncodeBytes(128, ids, vecs); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHostileFooterIsRejectedBeforeAllocation(t *testing.T) {
	ids, vecs := sample(5, 4)
	data, _, err := EncodeBytes(4, ids, vecs)
	require.NoError(t, err)
	bad := bytes.Clone(data)
	// A footer length of 3 GB: parquet-go would allocate it.
	copy(bad[len(bad)-8:], []byte{0, 0, 0, 0xb2})
	_, _, err = DecodeUnverified("f", bad, 4)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "footer")
	_, _, err = DecodeUnverified("f", []byte("PAR1"), 4)
	require.ErrorIs(t, err, ErrCorrupt)
}
