// Package vecmath scores vectors and selects the exact top-k. All arithmetic
// is done in float64 from float32 inputs, summing in dimension order, so that
// tests can reproduce every score bit for bit.
package vecmath

import (
	"container/heap"
	"errors"
	"math"

	"github.com/tierchaos/tierchaos/system/api"
)

// ErrZeroVector is returned for a zero query vector under the cosine metric.
var ErrZeroVector = errors.New("zero vector has no direction (cosine)")

// Dot returns the dot product of a and b (equal length).
func Dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// Norm returns the Euclidean norm of a.
func Norm(a []float32) float64 { return math.Sqrt(Dot(a, a)) }

// L2 returns the Euclidean distance between a and b.
func L2(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// Cosine returns the cosine similarity of a and b; 0 if b has norm 0.
// qnorm is the precomputed norm of a.
func Cosine(a []float32, qnorm float64, b []float32) float64 {
	var dot, bb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		bb += y * y
	}
	if bb == 0 {
		return 0
	}
	return dot / (qnorm * math.Sqrt(bb))
}

// Scorer scores stored vectors against one query.
type Scorer struct {
	metric api.Metric
	query  []float32
	qnorm  float64
}

// NewScorer prepares a query. It fails with ErrZeroVector for a zero query
// under cosine.
func NewScorer(metric api.Metric, query []float32) (*Scorer, error) {
	s := &Scorer{metric: metric, query: query}
	if metric == api.MetricCosine {
		s.qnorm = Norm(query)
		if s.qnorm == 0 {
			return nil, ErrZeroVector
		}
	}
	return s, nil
}

// Score returns the score of v.
func (s *Scorer) Score(v []float32) float64 {
	switch s.metric {
	case api.MetricL2:
		return L2(s.query, v)
	case api.MetricDot:
		return Dot(s.query, v)
	default:
		return Cosine(s.query, s.qnorm, v)
	}
}

// ScoreNorm is Score with the stored vector's norm precomputed (Norm(v)):
// cosine then needs one pass instead of two. The result is bit-identical
// to Score(v).
func (s *Scorer) ScoreNorm(v []float32, vnorm float64) float64 {
	if s.metric != api.MetricCosine {
		return s.Score(v)
	}
	if vnorm == 0 {
		return 0
	}
	return Dot(s.query, v) / (s.qnorm * vnorm)
}

// Better reports whether hit a ranks before hit b under metric m: better
// score first, ties broken by id ascending.
func Better(m api.Metric, a, b api.Result) bool {
	if a.Score != b.Score {
		if m.HigherIsBetter() {
			return a.Score > b.Score
		}
		return a.Score < b.Score
	}
	return a.ID < b.ID
}

// TopK collects the k best results seen so far.
type TopK struct {
	h worst
}

// NewTopK returns a collector for the k best results under metric m.
func NewTopK(m api.Metric, k int) *TopK {
	return &TopK{h: worst{metric: m, k: k, items: make([]api.Result, 0, min(k, 1024))}}
}

// Push offers one result.
func (t *TopK) Push(id string, score float64) {
	r := api.Result{ID: id, Score: score}
	if len(t.h.items) < t.h.k {
		heap.Push(&t.h, r)
		return
	}
	if t.h.k == 0 || !Better(t.h.metric, r, t.h.items[0]) {
		return
	}
	t.h.items[0] = r
	heap.Fix(&t.h, 0)
}

// Results returns the collected results, best first.
func (t *TopK) Results() []api.Result {
	out := make([]api.Result, len(t.h.items))
	h := worst{metric: t.h.metric, k: t.h.k, items: append([]api.Result(nil), t.h.items...)}
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&h).(api.Result)
	}
	return out
}

// worst is a heap whose root is the worst kept result.
type worst struct {
	metric api.Metric
	k      int
	items  []api.Result
}

func (w *worst) Len() int           { return len(w.items) }
func (w *worst) Less(i, j int) bool { return Better(w.metric, w.items[j], w.items[i]) }
func (w *worst) Swap(i, j int)      { w.items[i], w.items[j] = w.items[j], w.items[i] }
func (w *worst) Push(x any)         { w.items = append(w.items, x.(api.Result)) }
func (w *worst) Pop() any {
	n := len(w.items) - 1
	x := w.items[n]
	w.items = w.items[:n]
	return x
}
