package check

import (
	"fmt"
	"slices"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
)

// Snapshots checks what snapshots and restores answered. Their effect on
// the content is judged by the other checkers (a restore re-installs what
// its snapshot may have captured); this checker judges the answers:
//   - An ok snapshot is a full read: its vector count must lie between the
//     number of ids that certainly exist and the number that may exist at
//     some point of the call, for some incarnation it may have read.
//   - Snapshot ids are unique: two ok snapshots never answer the same id.
//   - An ok restore answers exactly its snapshot's count (or, for a snapshot
//     whose answer was lost, a count that snapshot may have captured), and
//     uses a snapshot of its own collection and incarnation, taken before
//     the restore was called.
func (c *Checker) Snapshots() error { return c.fail(c.snapshotChecks()) }

func (c *Checker) snapshotChecks() []Violation {
	var out []Violation
	for _, name := range sortedKeys(c.index) {
		coll := c.index[name]
		for _, id := range sortedKeys(coll.snapshots) {
			if ops := coll.snapshots[id]; len(ops) > 1 {
				out = append(out, Violation{Checker: SnapshotsName, Collection: name, Ops: ops,
					Message: fmt.Sprintf("snapshot id %q was answered by %d snapshot operations %v", id, len(ops), ops)})
			}
		}
		for _, idx := range slices.Sorted(func(yield func(int) bool) {
			for _, ops := range coll.snapshots {
				for _, i := range ops {
					if !yield(i) {
						return
					}
				}
			}
		}) {
			if v := c.checkSnapshotCount(coll, c.ops[idx]); v != nil {
				out = append(out, *v)
			}
		}
		for _, r := range coll.restores {
			out = append(out, r.problems...)
			op := c.ops[r.op]
			if op.Outcome != history.OK || len(r.sources) == 0 {
				continue
			}
			if slices.Contains(r.counts, op.Count) || r.rangeKnown && op.Count >= r.minCount && op.Count <= r.maxCount {
				continue
			}
			want := fmt.Sprint(r.counts)
			if r.rangeKnown {
				want = fmt.Sprintf("%d..%d (its snapshot's answer was lost)", r.minCount, r.maxCount)
			}
			out = append(out, Violation{Checker: SnapshotsName, Collection: name, Ops: append([]int{r.op}, r.sources...),
				Message: fmt.Sprintf("restore op %d of snapshot %q answered %d vectors, but the snapshot holds %s",
					r.op, op.Snapshot, op.Count, want)})
		}
	}
	return out
}

// checkSnapshotCount judges an ok snapshot's count as a full read.
func (c *Checker) checkSnapshotCount(coll *collection, op history.Op) *Violation {
	incs := coll.incarnationsAt(op.Call, op.Return)
	var ranges []string
	for _, inc := range incs {
		lo, hi := countRange(coll.stateAt(op.Call, op.Return, inc, -1))
		if op.Count >= lo && op.Count <= hi {
			return nil
		}
		ranges = append(ranges, fmt.Sprintf("%d..%d for %s", lo, hi, inc))
	}
	return &Violation{Checker: SnapshotsName, Collection: coll.name, Ops: []int{op.Index},
		Message: fmt.Sprintf("snapshot op %d captured %d vectors, but the history allows %v", op.Index, op.Count, ranges)}
}
