package chaos

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/tierchaos/tierchaos/harness/linearize"
)

// Kind is an operation of the store.
type Kind string

// Operations.
const (
	Get    Kind = "get"
	Put    Kind = "put"
	Delete Kind = "delete"
	CAS    Kind = "cas"
)

// Input is an operation as a client invoked it.
type Input struct {
	Kind Kind
	Key  string
	// Value is what Put writes, and what CAS writes (its "to").
	Value string
	// From is what CAS expects.
	From string
}

// Output is what the client saw.
type Output struct {
	// Value and Exists are what Get read.
	Value  string
	Exists bool
	// Swapped is CAS's answer.
	Swapped bool
	// Unknown marks a write whose outcome the client does not know (a
	// timeout, a reset connection, a 5xx answer): it may have taken effect
	// at any moment after its call, or never. Its Return is the end of the
	// history, as porcupine expects of a pending operation.
	Unknown bool
}

// state is one key's state in the model.
type state struct {
	value  string
	exists bool
}

// Model is the sequential specification of the store, one key per
// partition: Get reads the key, Put and CAS (when the key has From) set
// it, Delete removes it. A write with an unknown outcome takes effect
// (porcupine may place it anywhere after its call, the end included,
// where nothing reads it); a CAS with an unknown outcome may have swapped
// or not.
func Model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partitionByKey,
		Init:      func() []any { return []any{state{}} },
		Step: func(st, in, out any) []any {
			s, i, o := st.(state), in.(Input), out.(Output)
			switch i.Kind {
			case Get:
				if o.Exists == s.exists && (!s.exists || o.Value == s.value) {
					return []any{s}
				}
				return nil
			case Put:
				return []any{state{value: i.Value, exists: true}}
			case Delete:
				return []any{state{}}
			case CAS:
				match := s.exists && s.value == i.From
				swapped := state{value: i.Value, exists: true}
				switch {
				case o.Unknown && match:
					return []any{swapped, s}
				case o.Unknown, !match && !o.Swapped:
					return []any{s}
				case match && o.Swapped:
					return []any{swapped}
				}
				return nil
			}
			return nil
		},
		DescribeOperation: func(in, out any) string { return describe(in.(Input), out.(Output)) },
		DescribeState: func(st any) string {
			if s := st.(state); s.exists {
				return fmt.Sprintf("%q", s.value)
			}
			return "(absent)"
		},
	}
	return nm.ToModel()
}

func describe(i Input, o Output) string {
	var op string
	switch i.Kind {
	case Get:
		op = fmt.Sprintf("get(%s)", i.Key)
	case Put:
		op = fmt.Sprintf("put(%s, %q)", i.Key, i.Value)
	case Delete:
		op = fmt.Sprintf("delete(%s)", i.Key)
	case CAS:
		op = fmt.Sprintf("cas(%s, %q -> %q)", i.Key, i.From, i.Value)
	}
	switch {
	case o.Unknown:
		return op + " -> unknown"
	case i.Kind == Get && o.Exists:
		return fmt.Sprintf("%s -> %q", op, o.Value)
	case i.Kind == Get:
		return op + " -> absent"
	case i.Kind == CAS:
		return fmt.Sprintf("%s -> swapped=%v", op, o.Swapped)
	}
	return op + " -> ok"
}

// partitionByKey splits a history into one history per key, in a stable
// order.
func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		k := op.Input.(Input).Key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// Result is the verdict on a history (harness/linearize's).
type Result = linearize.Result

// Check judges ops with Model within timeout. When the verdict is not
// Ok and dir is set, porcupine's timeline is written to
// dir/linearizability.html (open it in a browser: the longest
// linearizable prefix of each key, and where it breaks).
func Check(ops []porcupine.Operation, timeout time.Duration, dir string) (Result, error) {
	return linearize.Check(Model(), ops, linearize.Options{Timeout: timeout, Dir: dir})
}
