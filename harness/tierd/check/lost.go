package check

import (
	"fmt"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
)

// LostWrites checks that no acknowledged write was lost.
//
// The rule, per collection and vector id, with "after" meaning "called after
// the other returned" and unknown operations returning never. A write is an
// insert, or a value a restore may re-install (see the package README); an
// acknowledged delete, create or restore wipes everything written before it.
//   - The final value must be the value of some write (ok or unknown) of
//     that id that no acknowledged write of the id and no acknowledged
//     delete, create or restore of the collection started after: the last
//     write of some linearization.
//   - The id may be absent only if every acknowledged write of it could be
//     followed by a delete, create or restore (ok or unknown); with none in
//     the history, an acknowledged insert must be readable.
//   - An id no recorded insert wrote must not exist (phantom).
//   - An insert with an unknown outcome is all-or-nothing: the final values
//     of all its ids must be explainable with it applied, or all without it.
//   - A collection that an acknowledged operation (other than a delete)
//     saw and that no delete could follow must exist.
//
// Each id is judged on its own (the checker does not search for one global
// linearization), so the rule never rejects a correct history; it can miss
// anomalies that only a joint choice across ids would expose.
func (c *Checker) LostWrites(final history.Final) error {
	vs, err := c.lostWrites(final)
	if err != nil {
		return err
	}
	return c.fail(vs)
}

func (c *Checker) lostWrites(final history.Final) ([]Violation, error) {
	var out []Violation
	names := sortedKeys(c.index)
	for _, name := range names {
		coll := c.index[name]
		st, ok := final.Collections[name]
		if !ok {
			return nil, fmt.Errorf("%w: final state has no entry for collection %q (read it back, or record it as missing)", ErrConfig, name)
		}
		out = append(out, coll.checkFinal(st)...)
	}
	return out, nil
}

// finalVerdict is the per-id result the all-or-nothing rule builds on.
type finalVerdict struct {
	present bool
	values  []float32
	cands   []*write // writes that may be the last one
	bad     bool     // the id already has a violation
}

func (coll *collection) checkFinal(st history.CollectionState) []Violation {
	var out []Violation
	v := func(id string, ops []int, format string, args ...any) {
		out = append(out, Violation{Checker: LostWritesName, Collection: coll.name, ID: id, Ops: ops,
			Message: fmt.Sprintf(format, args...)})
	}
	if !st.Exists {
		for _, p := range coll.present {
			if !coll.deletedBetween(p.call, never) {
				v("", []int{p.op}, "collection existed at op %d (acknowledged) and was never deleted, but is gone", p.op)
				return out
			}
		}
	}
	verdicts := make(map[string]*finalVerdict, len(coll.ids))
	for _, id := range coll.order {
		ws := coll.ids[id]
		fv := &finalVerdict{}
		verdicts[id] = fv
		if st.Exists {
			fv.values, fv.present = st.Vectors[id]
		}
		for _, w := range ws {
			if w.kill == never {
				fv.cands = append(fv.cands, w)
			}
		}
		mustExist := mustExistAtEnd(coll, ws)
		switch {
		case !fv.present && mustExist != nil:
			fv.bad = true
			v(id, []int{mustExist.op}, "acknowledged %s (op %d) is lost: id is missing at the end", mustExist.kind(), mustExist.op)
		case fv.present && len(fv.cands) == 0:
			fv.bad = true
			v(id, opsOf(ws), "id exists at the end although every write of it was certainly wiped by a later delete, create or restore")
		case fv.present && !containsValues(fv.cands, fv.values):
			fv.bad = true
			v(id, opsOf(fv.cands), "final values %s are not the values of any write that may be the last one (candidates: %s)",
				fmtValues(fv.values), fmtCandidates(fv.cands))
		}
	}
	if st.Exists {
		for _, id := range sortedKeys(st.Vectors) {
			if _, known := coll.ids[id]; !known {
				v(id, nil, "phantom: id exists at the end but no recorded insert wrote it")
			}
		}
	}
	out = append(out, coll.checkAllOrNothing(verdicts)...)
	return out
}

// mustExistAtEnd returns an acknowledged write of the id that no delete can
// follow, or nil if the id may be absent at the end.
func mustExistAtEnd(coll *collection, ws []*write) *write {
	for _, w := range ws {
		if w.ok && !coll.erasedBetween(w.call, never, w.op, -1) {
			return w
		}
	}
	return nil
}

// checkAllOrNothing applies the all-or-nothing rule to unknown inserts.
func (coll *collection) checkAllOrNothing(verdicts map[string]*finalVerdict) []Violation {
	var out []Violation
	for _, opIdx := range coll.inserts {
		mine := coll.byOp[opIdx]
		if len(mine) < 2 || mine[0].ok {
			continue
		}
		bad := false
		for _, u := range mine {
			bad = bad || verdicts[u.id].bad
		}
		if bad {
			continue
		}
		allApplied, allNot := true, true
		var appliedIDs, missingIDs []string
		for _, u := range mine {
			fv := verdicts[u.id]
			ap, na := explainApplied(coll, fv, u), explainNotApplied(coll, fv, u)
			allApplied = allApplied && ap
			allNot = allNot && na
			if ap && !na {
				appliedIDs = append(appliedIDs, u.id)
			}
			if na && !ap {
				missingIDs = append(missingIDs, u.id)
			}
		}
		if !allApplied && !allNot {
			out = append(out, Violation{Checker: LostWritesName, Collection: coll.name, Ops: []int{opIdx},
				Message: fmt.Sprintf("torn insert: op %d (outcome unknown) is visible for ids %v but absent for ids %v",
					opIdx, appliedIDs, missingIDs)})
		}
	}
	return out
}

// explainApplied: with u applied, the final state of its id is explainable.
func explainApplied(coll *collection, fv *finalVerdict, u *write) bool {
	if !fv.present {
		return coll.erasedBetween(u.call, never, u.op, -1) && !mustExistWithout(coll, u)
	}
	if equalValues(fv.values, u.values) {
		return true
	}
	for _, w := range fv.cands {
		if w != u && w.ret > u.call && equalValues(fv.values, w.values) {
			return true
		}
	}
	return false
}

// explainNotApplied: with u not applied, the final state is explainable.
func explainNotApplied(coll *collection, fv *finalVerdict, u *write) bool {
	if !fv.present {
		return !mustExistWithout(coll, u)
	}
	for _, w := range fv.cands {
		if w != u && equalValues(fv.values, w.values) {
			return true
		}
	}
	return false
}

// mustExistWithout reports whether some acknowledged write other than u
// forces the id to exist at the end.
func mustExistWithout(coll *collection, u *write) bool {
	for _, w := range coll.ids[u.id] {
		if w != u && w.ok && !coll.erasedBetween(w.call, never, w.op, -1) {
			return true
		}
	}
	return false
}

func containsValues(ws []*write, values []float32) bool {
	for _, w := range ws {
		if equalValues(w.values, values) {
			return true
		}
	}
	return false
}

func opsOf(ws []*write) []int {
	out := make([]int, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.op)
	}
	return out
}

func fmtValues(v []float32) string {
	if len(v) > 6 {
		return fmt.Sprintf("%v…(%d values)", v[:6], len(v))
	}
	return fmt.Sprint(v)
}

func fmtCandidates(ws []*write) string {
	if len(ws) == 0 {
		return "none"
	}
	s := ""
	for i, w := range ws {
		if i == 4 {
			s += fmt.Sprintf(" …+%d", len(ws)-4)
			break
		}
		if i > 0 {
			s += ", "
		}
		via := ""
		if w.restored {
			via = "(restore) "
		}
		s += fmt.Sprintf("op %d %s%s", w.op, via, fmtValues(w.values))
	}
	return s
}
