// Package oracle computes the exact answer of a brute-force top-k vector
// search and judges whether a search result returned by tierd is a valid
// top-k answer.
//
// It is deliberately independent of tierd's own scoring code: it follows the
// documented contract (scores in float64 from the float32 values, summed in
// dimension order; cosine and dot: higher is better; l2: Euclidean distance,
// lower is better; ties broken by id ascending) and nothing else.
package oracle

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tierchaos/tierchaos/system/api"
)

// DefaultTolerance is the relative tolerance used when comparing a score
// reported by tierd with the oracle's score for the same vector.
const DefaultTolerance = 1e-9

// Error codes of Mismatch, stable for tests and reports.
const (
	// CodeLength: the result has the wrong number of hits.
	CodeLength = "length"
	// CodeUnknownID: a returned id is not in the collection.
	CodeUnknownID = "unknown_id"
	// CodeDuplicateID: an id is returned twice.
	CodeDuplicateID = "duplicate_id"
	// CodeScore: a returned score is not the score of that id's values.
	CodeScore = "score"
	// CodeOrder: hits are not ordered best first with ties by id ascending.
	CodeOrder = "order"
	// CodeMissing: a vector that belongs in the top-k was not returned.
	CodeMissing = "missing"
)

// ErrInvalidInput is wrapped by every error about bad oracle input (unknown
// metric, dimension mismatch, zero cosine query, bad k).
var ErrInvalidInput = errors.New("oracle: invalid input")

// Mismatch is returned by Compare when a result is not a valid top-k.
type Mismatch struct {
	// Code is one of the Code* constants.
	Code string
	// Position is the index in the returned list the problem concerns, or -1.
	Position int
	// ID is the vector id concerned.
	ID string
	// Detail is a human readable explanation.
	Detail string
}

// Error implements error.
func (m *Mismatch) Error() string {
	if m.Position >= 0 {
		return fmt.Sprintf("oracle %s at position %d (id %q): %s", m.Code, m.Position, m.ID, m.Detail)
	}
	return fmt.Sprintf("oracle %s (id %q): %s", m.Code, m.ID, m.Detail)
}

// Query is the scoring setup of one search: a metric and a query vector.
type Query struct {
	metric api.Metric
	vector []float64
	norm   float64
}

// NewQuery validates the metric and the query vector. A zero query vector is
// rejected under cosine, as tierd rejects it.
func NewQuery(metric api.Metric, vector []float32) (*Query, error) {
	if !metric.Valid() {
		return nil, fmt.Errorf("%w: unknown metric %q", ErrInvalidInput, metric)
	}
	if len(vector) == 0 {
		return nil, fmt.Errorf("%w: empty query vector", ErrInvalidInput)
	}
	q := &Query{metric: metric, vector: make([]float64, len(vector))}
	var ss float64
	for i, v := range vector {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: query value %d is not finite", ErrInvalidInput, i)
		}
		q.vector[i] = f
		ss += f * f
	}
	q.norm = math.Sqrt(ss)
	if metric == api.MetricCosine && q.norm == 0 {
		return nil, fmt.Errorf("%w: zero query vector has no direction under cosine", ErrInvalidInput)
	}
	return q, nil
}

// Metric returns the query's metric.
func (q *Query) Metric() api.Metric { return q.metric }

// Score returns the score of values against the query. A stored zero vector
// scores 0 under cosine.
func (q *Query) Score(values []float32) (float64, error) {
	if len(values) != len(q.vector) {
		return 0, fmt.Errorf("%w: vector has dimension %d, query has %d", ErrInvalidInput, len(values), len(q.vector))
	}
	switch q.metric {
	case api.MetricDot:
		var s float64
		for i, v := range values {
			s += q.vector[i] * float64(v)
		}
		return s, nil
	case api.MetricL2:
		var s float64
		for i, v := range values {
			d := q.vector[i] - float64(v)
			s += d * d
		}
		return math.Sqrt(s), nil
	default:
		var dot, vv float64
		for i, v := range values {
			f := float64(v)
			dot += q.vector[i] * f
			vv += f * f
		}
		if vv == 0 {
			return 0, nil
		}
		return dot / (q.norm * math.Sqrt(vv)), nil
	}
}

// Better reports whether a ranks strictly before b: better score, or equal
// score and smaller id.
func (q *Query) Better(a, b api.Result) bool {
	if a.Score != b.Score {
		return q.betterScore(a.Score, b.Score)
	}
	return a.ID < b.ID
}

func (q *Query) betterScore(a, b float64) bool {
	if q.metric.HigherIsBetter() {
		return a > b
	}
	return a < b
}

// Close reports whether two scores agree within the relative tolerance tol
// (absolute for scores near zero).
func Close(a, b, tol float64) bool {
	if a == b {
		return true
	}
	scale := math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
	return math.Abs(a-b) <= tol*scale
}

// Rank scores every vector and returns all of them ordered best first, ties
// by id ascending. Vector ids must be unique.
func (q *Query) Rank(vectors []api.Vector) ([]api.Result, error) {
	out := make([]api.Result, 0, len(vectors))
	seen := make(map[string]struct{}, len(vectors))
	for _, v := range vectors {
		if _, dup := seen[v.ID]; dup {
			return nil, fmt.Errorf("%w: vector id %q appears twice", ErrInvalidInput, v.ID)
		}
		seen[v.ID] = struct{}{}
		s, err := q.Score(v.Values)
		if err != nil {
			return nil, fmt.Errorf("vector %q: %w", v.ID, err)
		}
		out = append(out, api.Result{ID: v.ID, Score: s})
	}
	slices.SortFunc(out, func(a, b api.Result) int {
		switch {
		case q.Better(a, b):
			return -1
		case q.Better(b, a):
			return 1
		}
		return 0
	})
	return out, nil
}

// TopK returns the exact top-k of vectors for the query.
func (q *Query) TopK(vectors []api.Vector, k int) ([]api.Result, error) {
	if k < 1 {
		return nil, fmt.Errorf("%w: k must be positive, got %d", ErrInvalidInput, k)
	}
	all, err := q.Rank(vectors)
	if err != nil {
		return nil, err
	}
	return all[:min(k, len(all))], nil
}

// Compare judges got, a search answer for top-k, against ranked, the full
// oracle ranking of the collection (as returned by Rank). It returns nil when
// got is a valid top-k and a *Mismatch otherwise.
//
// Validity: got has min(k, len(ranked)) distinct ids of the collection; each
// reported score is within tol of the oracle score of that id; hits are
// ordered best first by the oracle scores, with exactly equal scores ordered by
// id ascending; and no id left out ranks strictly before the worst returned
// hit. Scores that differ by no more than tol are treated as tied, so at the
// k-th boundary any of several near-tied ids is accepted, while exactly tied
// ids must follow the id-ascending rule.
func (q *Query) Compare(ranked, got []api.Result, k int, tol float64) error {
	want := min(k, len(ranked))
	if len(got) != want {
		return &Mismatch{Code: CodeLength, Position: -1,
			Detail: fmt.Sprintf("got %d hits, want %d (k=%d, collection has %d vectors); want %s, got %s",
				len(got), want, k, len(ranked), Format(ranked[:want], 8), Format(got, 8))}
	}
	cands := make([]Candidate, len(ranked))
	for i, r := range ranked {
		cands[i] = Candidate{ID: r.ID, Scores: []float64{r.Score}}
	}
	return q.Judge(cands, got, k, tol)
}

// Candidate is one id that a collection may hold at the moment a search is
// linearized, with the scores of every value it may have then.
type Candidate struct {
	// ID is the vector id.
	ID string
	// Scores holds one oracle score per value the id may have.
	Scores []float64
	// MayBeAbsent is true when the id may also not exist at that moment.
	MayBeAbsent bool
}

// Judge decides whether got is a valid top-k answer for some state drawn
// from cands: each candidate independently absent (if allowed) or holding one
// of its possible values. Candidate ids must be unique. With every candidate
// fixed (one score, not MayBeAbsent) this is exactly Compare's rule.
func (q *Query) Judge(cands []Candidate, got []api.Result, k int, tol float64) error {
	if k < 1 {
		return fmt.Errorf("%w: k must be positive, got %d", ErrInvalidInput, k)
	}
	if len(got) > k {
		return &Mismatch{Code: CodeLength, Position: -1, Detail: fmt.Sprintf("got %d hits for k=%d", len(got), k)}
	}
	byID := make(map[string]int, len(cands))
	for i, c := range cands {
		byID[c.ID] = i
	}
	returned := make(map[string]struct{}, len(got))
	exact := make([]api.Result, len(got))
	for i, g := range got {
		ci, ok := byID[g.ID]
		if !ok || len(cands[ci].Scores) == 0 {
			return &Mismatch{Code: CodeUnknownID, Position: i, ID: g.ID, Detail: "id is not in the collection"}
		}
		if _, dup := returned[g.ID]; dup {
			return &Mismatch{Code: CodeDuplicateID, Position: i, ID: g.ID, Detail: "id returned twice"}
		}
		returned[g.ID] = struct{}{}
		best, found := 0.0, false
		for _, s := range cands[ci].Scores {
			if Close(g.Score, s, tol) && (!found || math.Abs(g.Score-s) < math.Abs(g.Score-best)) {
				best, found = s, true
			}
		}
		if !found {
			return &Mismatch{Code: CodeScore, Position: i, ID: g.ID,
				Detail: fmt.Sprintf("reported score %v, oracle score(s) %v", g.Score, cands[ci].Scores)}
		}
		exact[i] = api.Result{ID: g.ID, Score: best}
	}
	if len(got) < k {
		// The state held exactly len(got) vectors: everything that had to
		// exist must have been returned.
		for _, c := range cands {
			if _, ok := returned[c.ID]; !ok && !c.MayBeAbsent && len(c.Scores) > 0 {
				return &Mismatch{Code: CodeMissing, Position: -1, ID: c.ID,
					Detail: fmt.Sprintf("got %d hits for k=%d, but this id existed and was not returned", len(got), k)}
			}
		}
	}
	if len(got) == 0 {
		return nil
	}
	for i := 1; i < len(exact); i++ {
		a, b := exact[i-1], exact[i]
		if q.betterScore(b.Score, a.Score) && !Close(a.Score, b.Score, tol) {
			return &Mismatch{Code: CodeOrder, Position: i, ID: b.ID,
				Detail: fmt.Sprintf("score %v ranks before previous hit %q with %v", b.Score, a.ID, a.Score)}
		}
		if a.Score == b.Score && got[i-1].Score == got[i].Score && b.ID < a.ID {
			return &Mismatch{Code: CodeOrder, Position: i, ID: b.ID,
				Detail: fmt.Sprintf("tie with %q at score %v must be ordered by id ascending", a.ID, a.Score)}
		}
	}
	worst := exact[len(exact)-1]
	for _, c := range cands {
		if _, ok := returned[c.ID]; ok || c.MayBeAbsent || len(c.Scores) == 0 {
			continue
		}
		// The candidate is a violation only if every value it may have
		// ranks strictly before the worst hit (beyond tolerance, or an
		// exact tie lost on id order).
		mustRank := true
		for _, s := range c.Scores {
			r := api.Result{ID: c.ID, Score: s}
			if !q.Better(r, worst) || (Close(s, worst.Score, tol) && s != worst.Score) {
				mustRank = false
				break
			}
		}
		if mustRank {
			return &Mismatch{Code: CodeMissing, Position: -1, ID: c.ID,
				Detail: fmt.Sprintf("score(s) %v rank before the worst returned hit %q with %v but it was not returned",
					c.Scores, worst.ID, worst.Score)}
		}
	}
	return nil
}

// Format renders up to limit results as "[id:score ...]" for messages.
func Format(rs []api.Result, limit int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range rs {
		if i == limit {
			fmt.Fprintf(&b, " …+%d", len(rs)-limit)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%.6g", r.ID, r.Score)
	}
	b.WriteByte(']')
	return b.String()
}
