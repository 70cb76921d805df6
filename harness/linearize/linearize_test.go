package linearize

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// regIn and regOut are the operations of a test model: one register per
// key, written and read.
type regIn struct {
	key   string
	write bool
	value int
}

type regOut struct {
	value   int
	unknown bool
}

// register is the register model, one partition per key; a write whose
// outcome is unknown may have happened or not.
func register() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range ops {
				k := op.Input.(regIn).key
				if _, ok := by[k]; !ok {
					keys = append(keys, k)
				}
				by[k] = append(by[k], op)
			}
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, by[k])
			}
			return out
		},
		Init: func() []any { return []any{0} },
		Step: func(st, in, out any) []any {
			s, i, o := st.(int), in.(regIn), out.(regOut)
			switch {
			case i.write && o.unknown:
				return []any{i.value, s}
			case i.write:
				return []any{i.value}
			case o.value == s:
				return []any{s}
			}
			return nil
		},
		DescribeOperation: func(in, out any) string {
			i, o := in.(regIn), out.(regOut)
			if i.write {
				return fmt.Sprintf("write(%s, %d)", i.key, i.value)
			}
			return fmt.Sprintf("read(%s) -> %d", i.key, o.value)
		},
		DescribeState: func(st any) string { return fmt.Sprintf("value %d", st.(int)) },
	}
	return nm.ToModel()
}

// op is a completed operation from call to ret.
func op(client int, in regIn, out regOut, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func TestCheck(t *testing.T) {
	w := func(k string, v int) regIn { return regIn{key: k, write: true, value: v} }
	r := func(k string) regIn { return regIn{key: k} }
	for _, tc := range []struct {
		name  string
		ops   []porcupine.Operation
		ok    bool
		state string // the failing partition's state (a set: the model is nondeterministic)
		stuck []string
	}{
		{"sequential", []porcupine.Operation{op(0, w("a", 1), regOut{}, 0, 1), op(1, r("a"), regOut{value: 1}, 2, 3)}, true, "", nil},
		{"overlapping read may see the old value", []porcupine.Operation{op(0, w("a", 1), regOut{}, 0, 10), op(1, r("a"), regOut{value: 0}, 2, 3)}, true, "", nil},
		{"stale read after the write returned", []porcupine.Operation{
			op(0, w("a", 1), regOut{}, 0, 1), op(1, r("a"), regOut{value: 0}, 2, 3),
			op(0, w("b", 5), regOut{}, 0, 1), op(1, r("b"), regOut{value: 5}, 2, 3),
		}, false, "{value 1}", []string{"read(a) -> 0"}},
		{"read of a value never written", []porcupine.Operation{op(1, r("a"), regOut{value: 7}, 0, 1)}, false, "{value 0}", []string{"read(a) -> 7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := register()
			dir := t.TempDir()
			res, err := Check(m, tc.ops, Options{Dir: dir})
			require.NoError(t, err)
			assert.Equal(t, len(tc.ops), res.Ops)
			if tc.ok {
				assert.True(t, res.Linearizable())
				assert.Empty(t, res.Failures)
				assert.Empty(t, res.Timeline, "no timeline for a linearizable history")
				return
			}
			require.Equal(t, porcupine.Illegal, res.Verdict)
			require.Len(t, res.Failures, 1, "only the failing key")
			f := res.Failures[0]
			assert.Equal(t, tc.state, f.State)
			var stuck []string
			for _, s := range f.Stuck {
				stuck = append(stuck, m.DescribeOperation(s.Input, s.Output))
			}
			assert.Equal(t, tc.stuck, stuck)
			assert.Equal(t, filepath.Join(dir, TimelineFile), res.Timeline)
			assert.FileExists(t, res.Timeline)
		})
	}
}

// TestPendingWriteMayApplyLate: a write with an unknown outcome returns at
// the end of the history, so a read long after its call may see it, or
// not; a completed read that sees a value nobody wrote still fails.
func TestPendingWriteMayApplyLate(t *testing.T) {
	rec := NewRecorder[regIn, regOut]()
	call := rec.Now()
	rec.Pending(0, regIn{key: "a", write: true, value: 3}, call, regOut{unknown: true})
	for _, seen := range []int{0, 3, 3} {
		c := rec.Now()
		rec.Done(1, regIn{key: "a"}, c, regOut{value: seen})
	}
	ops := rec.Ops()
	require.Len(t, ops, 3+1)
	for i, o := range ops {
		assert.Equal(t, i, o.Metadata, "Metadata is the recording index")
		assert.LessOrEqual(t, o.Call, o.Return)
	}
	assert.Greater(t, ops[0].Return, ops[3].Return, "the pending write returns last")
	res, err := Check(register(), ops, Options{})
	require.NoError(t, err)
	assert.True(t, res.Linearizable(), "0 before the write took effect, 3 after")

	rec.Done(1, regIn{key: "a"}, rec.Now(), regOut{value: 0})
	res, err = Check(register(), rec.Ops(), Options{})
	require.NoError(t, err)
	assert.False(t, res.Linearizable(), "once 3 was read, 0 cannot come back")
}

// TestRecorderConcurrent: clients record at once (run with -race).
func TestRecorderConcurrent(t *testing.T) {
	rec := NewRecorder[regIn, regOut]()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				call := rec.Now()
				rec.Done(c, regIn{key: fmt.Sprint(c), write: true, value: c}, call, regOut{})
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 400, rec.Len())
	res, err := Check(register(), rec.Ops(), Options{})
	require.NoError(t, err)
	assert.True(t, res.Linearizable())
}
