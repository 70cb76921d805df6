package chaos

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// op builds a history entry; ret < 0 is pending (unknown outcome).
func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	if ret < 0 {
		out.Unknown = true
		ret = 1 << 40
	}
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func put(k, v string) Input        { return Input{Kind: Put, Key: k, Value: v} }
func del(k string) Input           { return Input{Kind: Delete, Key: k} }
func get(k string) Input           { return Input{Kind: Get, Key: k} }
func cas(k, from, to string) Input { return Input{Kind: CAS, Key: k, From: from, Value: to} }
func saw(v string) Output          { return Output{Value: v, Exists: true} }

var absent = Output{}

// TestModel shows the checker passing linearizable histories and failing
// histories that are not, pending writes included.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want bool
	}{
		{name: "read your write", want: true, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, get("a"), saw("1")),
		}},
		{name: "lost acknowledged write", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(1, 2, 3, get("a"), absent),
		}},
		{name: "stale read after a newer write", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, put("a", "2"), Output{}), op(1, 4, 5, get("a"), saw("1")),
		}},
		{name: "concurrent write may be seen or not", want: true, ops: []porcupine.Operation{
			op(0, 0, 10, put("a", "1"), Output{}), op(1, 1, 2, get("a"), absent), op(1, 3, 4, get("a"), saw("1")),
		}},
		{name: "value read back after it was read older", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, put("a", "2"), Output{}),
			op(1, 4, 5, get("a"), saw("2")), op(1, 6, 7, get("a"), saw("1")),
		}},
		{name: "pending write takes effect late", want: true, ops: []porcupine.Operation{
			op(0, 0, -1, put("a", "1"), Output{}), op(1, 5, 6, get("a"), absent), op(1, 7, 8, get("a"), saw("1")),
		}},
		{name: "pending write never takes effect", want: true, ops: []porcupine.Operation{
			op(0, 0, -1, put("a", "1"), Output{}), op(1, 5, 6, get("a"), absent),
		}},
		{name: "pending write cannot act before its call", want: false, ops: []porcupine.Operation{
			op(1, 0, 1, get("a"), saw("1")), op(0, 2, -1, put("a", "1"), Output{}),
		}},
		{name: "delete", want: true, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, del("a"), Output{}), op(1, 4, 5, get("a"), absent),
		}},
		{name: "read of a deleted value", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, del("a"), Output{}), op(1, 4, 5, get("a"), saw("1")),
		}},
		{name: "cas swaps on match", want: true, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, cas("a", "1", "2"), Output{Swapped: true}), op(1, 4, 5, get("a"), saw("2")),
		}},
		{name: "cas swapped without a match", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, cas("a", "9", "2"), Output{Swapped: true}),
		}},
		{name: "cas refused on a match", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, cas("a", "1", "2"), Output{Swapped: false}),
		}},
		{name: "cas on a missing key", want: true, ops: []porcupine.Operation{
			op(0, 0, 1, cas("a", "", "2"), Output{Swapped: false}), op(1, 2, 3, get("a"), absent),
		}},
		{name: "pending cas may have swapped", want: true, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, -1, cas("a", "1", "2"), Output{}),
			op(1, 4, 5, get("a"), saw("2")),
		}},
		{name: "pending cas may not have swapped", want: true, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, -1, cas("a", "1", "2"), Output{}),
			op(1, 4, 5, get("a"), saw("1")), op(1, 6, 7, put("a", "3"), Output{}), op(1, 8, 9, get("a"), saw("3")),
		}},
		{name: "keys are independent", want: false, ops: []porcupine.Operation{
			op(0, 0, 1, put("a", "1"), Output{}), op(0, 2, 3, put("b", "1"), Output{}), op(1, 4, 5, get("b"), absent),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Check(tc.ops, 10*time.Second, dir)
			require.NoError(t, err)
			require.Equal(t, tc.want, res.Linearizable(), "verdict %s", res.Verdict)
			if tc.want {
				require.Empty(t, res.Timeline)
				return
			}
			require.Equal(t, porcupine.Illegal, res.Verdict)
			require.Equal(t, filepath.Join(dir, "linearizability.html"), res.Timeline)
			st, err := os.Stat(res.Timeline)
			require.NoError(t, err)
			require.Positive(t, st.Size())
		})
	}
}

// TestRecorderPendingReturnsLast: an unknown write returns after every
// other operation, a determinate failure and a lost read are left out.
func TestRecorderPendingReturnsLast(t *testing.T) {
	r := NewRecorder()
	r.record(0, put("a", "1"), r.now(), Output{}, errUnknown)
	r.record(1, get("a"), r.now(), Output{}, nil)
	r.record(1, get("a"), r.now(), Output{}, errUnknown)
	r.record(1, put("a", "2"), r.now(), Output{}, errRefused)
	ops := r.Ops()
	require.Len(t, ops, 2)
	require.True(t, ops[0].Output.(Output).Unknown)
	require.Greater(t, ops[0].Return, ops[1].Return)
	require.Equal(t, Stats{OK: 1, Failed: 1, Unknown: 1, LostReads: 1, OKWrites: 0}, r.Stats())
}
