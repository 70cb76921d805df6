package check

import (
	"maps"
	"math"
	"slices"
	"sort"

	"github.com/tierchaos/tierchaos/harness/history"
	"github.com/tierchaos/tierchaos/system/api"
)

// never is the effective return time of an operation with an unknown
// outcome: it may take effect at any moment after its call.
const never = math.MaxInt64

// write is one vector written by one insert operation.
type write struct {
	id     string
	op     int
	call   int64
	ret    int64 // never for unknown outcomes
	ok     bool
	values []float32
	// kill is the earliest return time of an acknowledged write of the same
	// id, or acknowledged delete of the collection, that started after this
	// write returned: from then on this write's value is certainly gone.
	kill int64
}

// span is the interval of a delete_collection.
type span struct {
	op        int
	call, ret int64 // ret is never for unknown outcomes
	ok        bool
}

// collection indexes the content-changing operations on one collection.
type collection struct {
	name    string
	metric  api.Metric
	ids     map[string][]*write // per id, in call order
	order   []string            // ids in first-write order
	deletes []span
	creates []span // ok or unknown creates
	inserts []int  // indexes of ok or unknown inserts
	byOp    map[int][]*write
}

// effectiveReturn is the return time a checker must assume for op.
func effectiveReturn(op history.Op) int64 {
	if op.Outcome == history.Unknown {
		return never
	}
	return op.Return
}

// buildIndex groups the history by collection. Failed operations had no
// effect and are left out.
func buildIndex(ops []history.Op) map[string]*collection {
	colls := map[string]*collection{}
	get := func(name string) *collection {
		c := colls[name]
		if c == nil {
			c = &collection{name: name, ids: map[string][]*write{}, byOp: map[int][]*write{}}
			colls[name] = c
		}
		return c
	}
	for _, op := range ops {
		c := get(op.Collection)
		if op.Outcome == history.Failed {
			continue
		}
		ret := effectiveReturn(op)
		switch op.Kind {
		case history.KindCreateCollection:
			if c.metric == "" || op.Outcome == history.OK {
				c.metric = op.Metric
			}
			c.creates = append(c.creates, span{op: op.Index, call: op.Call, ret: ret, ok: op.Outcome == history.OK})
		case history.KindGetCollection:
			if c.metric == "" && op.Outcome == history.OK {
				c.metric = op.Metric
			}
		case history.KindDeleteCollection:
			c.deletes = append(c.deletes, span{op: op.Index, call: op.Call, ret: ret, ok: op.Outcome == history.OK})
		case history.KindInsert:
			c.inserts = append(c.inserts, op.Index)
			for _, v := range op.Vectors {
				if _, seen := c.ids[v.ID]; !seen {
					c.order = append(c.order, v.ID)
				}
				w := &write{
					id: v.ID, op: op.Index, call: op.Call, ret: ret, ok: op.Outcome == history.OK, values: v.Values,
				}
				c.ids[v.ID] = append(c.ids[v.ID], w)
				c.byOp[op.Index] = append(c.byOp[op.Index], w)
			}
		}
	}
	for _, c := range colls {
		c.computeKill()
	}
	return colls
}

// computeKill fills write.kill for every write of c in O(n log n) per id.
func (c *collection) computeKill() {
	type killer struct{ call, ret int64 }
	var delKillers []killer
	for _, d := range c.deletes {
		if d.ok {
			delKillers = append(delKillers, killer{d.call, d.ret})
		}
	}
	for _, ws := range c.ids {
		killers := slices.Clone(delKillers)
		for _, w := range ws {
			if w.ok {
				killers = append(killers, killer{w.call, w.ret})
			}
		}
		slices.SortFunc(killers, func(a, b killer) int { return cmpInt64(a.call, b.call) })
		// suffix[i] = min ret over killers[i:].
		suffix := make([]int64, len(killers)+1)
		suffix[len(killers)] = never
		for i := len(killers) - 1; i >= 0; i-- {
			suffix[i] = min(killers[i].ret, suffix[i+1])
		}
		for _, w := range ws {
			if w.ret == never {
				w.kill = never
				continue
			}
			i := sort.Search(len(killers), func(i int) bool { return killers[i].call > w.ret })
			w.kill = suffix[i]
		}
	}
}

// deleteBetween reports whether a delete of c (acknowledged or unknown) may
// take effect after time from and before time to.
func (c *collection) deleteBetween(from, to int64) bool {
	for _, d := range c.deletes {
		if d.ret > from && d.call < to {
			return true
		}
	}
	return false
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equalValues compares two vectors exactly (values survive a JSON round trip
// bit for bit). A nil side stands for values that were not read back and
// matches anything.
func equalValues(a, b []float32) bool { return a == nil || b == nil || slices.Equal(a, b) }

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
