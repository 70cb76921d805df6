package check

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/harness/tierd/oracle"
	"github.com/tierchaos/tierchaos/system/api"
)

// Searches checks every acknowledged search against the oracle.
//
// A search S is judged against each incarnation of the collection name it
// may have run against (see the package README); it passes if one explains
// the answer. For an incarnation, each id may hold, at S's linearization
// point, the value of any write (ok or unknown insert, or a value a restore
// may re-install) that was called before S returned, not certainly done
// before the incarnation's create was called, and not certainly overwritten
// (by an acknowledged write of the id, or an acknowledged delete, create or
// restore of C, started after it returned and finished before S was
// called). The id must exist if an acknowledged write of it returned before
// S was called and no delete, create or restore may lie between. S's
// answer must be a valid top-k (oracle.Query.Judge: right length, exact
// scores within the tolerance, best first with ties by id, nothing better
// left out) for some choice of these values. A search with no concurrent or
// unknown writes has exactly one possible state, so its answer must equal
// the oracle's top-k over the acknowledged state.
func (c *Checker) Searches() error {
	vs, err := c.searches()
	if err != nil {
		return err
	}
	return c.fail(vs)
}

func (c *Checker) searches() ([]Violation, error) {
	var out []Violation
	var sc scratch
	for _, op := range c.ops {
		if op.Kind != history.KindSearch || op.Outcome != history.OK {
			continue
		}
		v, err := c.judgeSearch(c.index[op.Collection], op, &sc)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, *v)
		}
	}
	return out, nil
}

// judgeSearch judges op against every incarnation of the name it may have
// run against; it passes if one explains the answer.
func (c *Checker) judgeSearch(coll *collection, op history.Op, sc *scratch) (*Violation, error) {
	incs := slices.DeleteFunc(coll.incarnationsAt(op.Call, op.Return), func(inc incarnation) bool { return inc.metric == "" })
	if len(incs) == 0 {
		return nil, fmt.Errorf("%w: search op %d: metric of collection %q unknown: record its create_collection "+
			"or a get_collection, or set Config.Metrics", ErrConfig, op.Index, op.Collection)
	}
	var dims []int
	matching := incs[:0:0]
	for _, inc := range incs {
		if inc.dim == 0 || inc.dim == len(op.Query) {
			matching = append(matching, inc)
		} else if !slices.Contains(dims, inc.dim) {
			dims = append(dims, inc.dim)
		}
	}
	if len(matching) == 0 {
		return &Violation{Checker: SearchesName, Collection: coll.name, Ops: []int{op.Index},
			Message: fmt.Sprintf("search op %d succeeded with a query of dimension %d, but every incarnation it may "+
				"have run against has another dimension %v", op.Index, len(op.Query), dims)}, nil
	}
	var first *Violation
	for i := len(matching) - 1; i >= 0; i-- {
		v := c.checkSearch(coll, matching[i], op, sc)
		if v == nil {
			return nil, nil
		}
		if first == nil {
			first = v
		}
	}
	first.Message += "; this is for " + matching[len(matching)-1].String()
	if len(matching) > 1 {
		first.Message += fmt.Sprintf(", and none of the %d other incarnation(s) of the name the search may have "+
			"run against explains the answer either", len(matching)-1)
	}
	return first, nil
}

func (c *Checker) checkSearch(coll *collection, inc incarnation, op history.Op, sc *scratch) *Violation {
	viol := func(ops []int, format string, args ...any) *Violation {
		return &Violation{Checker: SearchesName, Collection: coll.name, Ops: ops, Message: fmt.Sprintf(format, args...)}
	}
	q, err := oracle.NewQuery(inc.metric, op.Query)
	if err != nil {
		return viol([]int{op.Index}, "search op %d succeeded but its query is invalid: %v", op.Index, err)
	}
	states := sc.stateAt(coll, op.Call, op.Return, inc, -1)
	cands := make([]oracle.Candidate, 0, len(states))
	var acked []api.Vector // the acknowledged state, for the message
	uncertain := false
	involved := []int{op.Index}
	for _, st := range states {
		cand := oracle.Candidate{ID: st.id, MayBeAbsent: st.mayBeAbsent}
		for _, w := range st.writes {
			s, err := q.Score(w.values)
			if err != nil {
				// A write of the wrong dimension cannot have been applied.
				continue
			}
			if !containsFloat(cand.Scores, s) {
				cand.Scores = append(cand.Scores, s)
			}
			if !w.ok || w.ret >= op.Call {
				involved = append(involved, w.op)
			}
		}
		if len(cand.Scores) == 0 {
			continue
		}
		if cand.MayBeAbsent || len(cand.Scores) > 1 {
			uncertain = true
		}
		if st.latestAcked != nil && !cand.MayBeAbsent {
			acked = append(acked, api.Vector{ID: st.id, Values: st.latestAcked.values})
		}
		cands = append(cands, cand)
	}
	err = q.Judge(cands, op.Results, op.K, c.cfg.Tolerance)
	if err == nil {
		return nil
	}
	var m *oracle.Mismatch
	if !errors.As(err, &m) {
		return viol([]int{op.Index}, "search op %d cannot be judged: %v", op.Index, err)
	}
	want, werr := q.TopK(acked, op.K)
	wantText := oracle.Format(want, 10)
	if werr != nil {
		wantText = werr.Error()
	}
	kind := "wrong result"
	if m.Code == oracle.CodeMissing || m.Code == oracle.CodeLength {
		kind = "stale or incomplete read"
	}
	state := "no concurrent or unknown writes: the state was fully determined"
	if uncertain {
		slices.Sort(involved[1:])
		involved = append(involved[:1], slices.Compact(involved[1:])...)
		state = fmt.Sprintf("judged against every state allowed by %d concurrent or unknown write(s)", len(involved)-1)
		if len(involved) > 9 {
			involved = involved[:9]
		}
	} else {
		involved = involved[:1]
	}
	return viol(involved, "%s in search op %d (k=%d): %v; got %s; oracle over the acknowledged state %s; %s",
		kind, op.Index, op.K, m, oracle.Format(op.Results, 10), wantText, state)
}

func containsFloat(xs []float64, x float64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
