package check

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tierchaos/tierchaos/harness/history"
	"github.com/tierchaos/tierchaos/harness/oracle"
	"github.com/tierchaos/tierchaos/system/api"
)

// Searches checks every acknowledged search against the oracle.
//
// For a search S on collection C, each id may hold, at S's linearization
// point, the value of any insert (ok or unknown) that was called before S
// returned and that was not certainly overwritten (by an acknowledged insert
// of the id, or an acknowledged delete of C, started after it returned and
// finished before S was called). The id must exist if an acknowledged insert
// of it returned before S was called and no delete may lie between. S's
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
	for _, op := range c.ops {
		if op.Kind != history.KindSearch || op.Outcome != history.OK {
			continue
		}
		coll := c.index[op.Collection]
		metric := coll.metric
		if metric == "" {
			metric = c.cfg.Metrics[op.Collection]
		}
		if metric == "" {
			return nil, fmt.Errorf("%w: metric of collection %q unknown: record its create_collection or a get_collection, or set Config.Metrics",
				ErrConfig, op.Collection)
		}
		if v := c.checkSearch(coll, metric, op); v != nil {
			out = append(out, *v)
		}
	}
	return out, nil
}

func (c *Checker) checkSearch(coll *collection, metric api.Metric, op history.Op) *Violation {
	viol := func(ops []int, format string, args ...any) *Violation {
		return &Violation{Checker: SearchesName, Collection: coll.name, Ops: ops, Message: fmt.Sprintf(format, args...)}
	}
	q, err := oracle.NewQuery(metric, op.Query)
	if err != nil {
		return viol([]int{op.Index}, "search op %d succeeded but its query is invalid: %v", op.Index, err)
	}
	cands := make([]oracle.Candidate, 0, len(coll.order))
	var acked []api.Vector // the acknowledged state, for the message
	uncertain := false
	involved := []int{op.Index}
	for _, id := range coll.order {
		cand := oracle.Candidate{ID: id, MayBeAbsent: true}
		var latestAcked *write
		for _, w := range coll.ids[id] {
			if w.call >= op.Return || w.kill < op.Call {
				continue
			}
			s, err := q.Score(w.values)
			if err != nil {
				// A write of the wrong dimension cannot have been applied.
				continue
			}
			if !containsFloat(cand.Scores, s) {
				cand.Scores = append(cand.Scores, s)
			}
			if w.ok && w.ret < op.Call {
				if !coll.deleteBetween(w.call, op.Return) {
					cand.MayBeAbsent = false
				}
				if latestAcked == nil || w.ret > latestAcked.ret {
					latestAcked = w
				}
			} else {
				involved = append(involved, w.op)
			}
		}
		if len(cand.Scores) == 0 {
			continue
		}
		if cand.MayBeAbsent || len(cand.Scores) > 1 {
			uncertain = true
		}
		if latestAcked != nil && !cand.MayBeAbsent {
			acked = append(acked, api.Vector{ID: id, Values: latestAcked.values})
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
		state = fmt.Sprintf("judged against every state allowed by %d concurrent or unknown insert(s)", len(involved)-1)
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
