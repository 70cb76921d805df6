package oracle

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

func vecs(pairs ...any) []api.Vector {
	var out []api.Vector
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, api.Vector{ID: pairs[i].(string), Values: pairs[i+1].([]float32)})
	}
	return out
}

func TestScore(t *testing.T) {
	tests := []struct {
		name   string
		metric api.Metric
		query  []float32
		values []float32
		want   float64
	}{
		{"dot", api.MetricDot, []float32{1, 2, 3}, []float32{4, -5, 6}, 4 - 10 + 18},
		{"l2", api.MetricL2, []float32{0, 0}, []float32{3, 4}, 5},
		{"cosine parallel", api.MetricCosine, []float32{1, 1}, []float32{2, 2}, 1},
		{"cosine orthogonal", api.MetricCosine, []float32{1, 0}, []float32{0, 3}, 0},
		{"cosine stored zero", api.MetricCosine, []float32{1, 0}, []float32{0, 0}, 0},
		{"float32 widening", api.MetricDot, []float32{0.1}, []float32{0.1}, float64(float32(0.1)) * float64(float32(0.1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := NewQuery(tt.metric, tt.query)
			require.NoError(t, err)
			got, err := q.Score(tt.values)
			require.NoError(t, err)
			assert.InDelta(t, tt.want, got, 1e-15)
		})
	}
}

func TestNewQueryRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		metric api.Metric
		query  []float32
	}{
		{"unknown metric", "manhattan", []float32{1}},
		{"empty", api.MetricDot, nil},
		{"zero cosine", api.MetricCosine, []float32{0, 0}},
		{"nan", api.MetricL2, []float32{float32(math.NaN())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewQuery(tt.metric, tt.query)
			require.ErrorIs(t, err, ErrInvalidInput)
		})
	}
	q, err := NewQuery(api.MetricDot, []float32{1, 2})
	require.NoError(t, err)
	_, err = q.Score([]float32{1})
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = q.Rank(vecs("a", []float32{1, 1}, "a", []float32{2, 2}))
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = q.TopK(nil, 0)
	require.ErrorIs(t, err, ErrInvalidInput)
}

func TestTopKOrderAndTies(t *testing.T) {
	data := vecs(
		"c", []float32{1, 0},
		"a", []float32{1, 0},
		"b", []float32{0, 1},
		"d", []float32{3, 0},
	)
	tests := []struct {
		name   string
		metric api.Metric
		query  []float32
		k      int
		want   []string
	}{
		{"dot best first, tie by id", api.MetricDot, []float32{1, 0}, 3, []string{"d", "a", "c"}},
		{"l2 lower first", api.MetricL2, []float32{1, 0}, 3, []string{"a", "c", "b"}},
		{"cosine ties by id", api.MetricCosine, []float32{1, 0}, 2, []string{"a", "c"}},
		{"k larger than collection", api.MetricDot, []float32{0, 1}, 10, []string{"b", "a", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := NewQuery(tt.metric, tt.query)
			require.NoError(t, err)
			got, err := q.TopK(data, tt.k)
			require.NoError(t, err)
			ids := make([]string, len(got))
			for i, r := range got {
				ids[i] = r.ID
			}
			assert.Equal(t, tt.want, ids)
		})
	}
}

func TestCompare(t *testing.T) {
	data := vecs(
		"a", []float32{5, 0},
		"b", []float32{4, 0},
		"c", []float32{4, 0},
		"d", []float32{1, 0},
		"e", []float32{1.0000000001, 0}, // float32 rounds this to 1: exact tie with d
	)
	q, err := NewQuery(api.MetricDot, []float32{1, 0})
	require.NoError(t, err)
	ranked, err := q.Rank(data)
	require.NoError(t, err)
	r := func(id string, s float64) api.Result { return api.Result{ID: id, Score: s} }
	tests := []struct {
		name string
		k    int
		got  []api.Result
		code string // "" = valid
	}{
		{"exact", 3, []api.Result{r("a", 5), r("b", 4), r("c", 4)}, ""},
		{"score within tolerance", 1, []api.Result{r("a", 5*(1+1e-12))}, ""},
		{"whole collection", 9, []api.Result{r("a", 5), r("b", 4), r("c", 4), r("d", 1), r("e", 1)}, ""},
		{"too short", 3, []api.Result{r("a", 5), r("b", 4)}, CodeLength},
		{"unknown id", 2, []api.Result{r("a", 5), r("z", 4)}, CodeUnknownID},
		{"duplicate", 2, []api.Result{r("a", 5), r("a", 5)}, CodeDuplicateID},
		{"wrong score", 1, []api.Result{r("a", 5.1)}, CodeScore},
		{"out of order", 2, []api.Result{r("b", 4), r("a", 5)}, CodeOrder},
		{"exact tie wrong id order", 3, []api.Result{r("a", 5), r("c", 4), r("b", 4)}, CodeOrder},
		{"boundary exact tie must take smaller id", 2, []api.Result{r("a", 5), r("c", 4)}, CodeMissing},
		{"skipped better", 2, []api.Result{r("a", 5), r("d", 1)}, CodeMissing},
		{"missing better, worse one returned", 4, []api.Result{r("a", 5), r("b", 4), r("d", 1), r("e", 1)}, CodeMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Compare(ranked, tt.got, tt.k, DefaultTolerance)
			if tt.code == "" {
				require.NoError(t, err)
				return
			}
			var m *Mismatch
			require.True(t, errors.As(err, &m), "want mismatch %s, got %v", tt.code, err)
			assert.Equal(t, tt.code, m.Code, m.Error())
		})
	}
}

func TestCompareNearTieAtBoundary(t *testing.T) {
	// Two ids whose oracle scores differ by less than the tolerance: either
	// may fill the last slot.
	q, err := NewQuery(api.MetricL2, []float32{0})
	require.NoError(t, err)
	ranked := []api.Result{{ID: "x", Score: 1}, {ID: "y", Score: 2}, {ID: "z", Score: 2 + 1e-12}}
	require.NoError(t, q.Compare(ranked, []api.Result{{ID: "x", Score: 1}, {ID: "z", Score: 2 + 1e-12}}, 2, 1e-9))
	require.NoError(t, q.Compare(ranked, []api.Result{{ID: "x", Score: 1}, {ID: "y", Score: 2}}, 2, 1e-9))
	var m *Mismatch
	require.ErrorAs(t, q.Compare(ranked, []api.Result{{ID: "x", Score: 1}, {ID: "z", Score: 2 + 1e-12}}, 2, 0), &m)
	assert.Equal(t, CodeMissing, m.Code)
}

func TestJudgeUncertainState(t *testing.T) {
	q, err := NewQuery(api.MetricDot, []float32{1})
	require.NoError(t, err)
	cands := []Candidate{
		{ID: "fixed", Scores: []float64{3}},
		{ID: "either", Scores: []float64{1, 10}},
		{ID: "maybe", Scores: []float64{5}, MayBeAbsent: true},
	}
	r := func(id string, s float64) api.Result { return api.Result{ID: id, Score: s} }
	tests := []struct {
		name string
		k    int
		got  []api.Result
		code string
	}{
		{"either new value, maybe absent", 2, []api.Result{r("either", 10), r("fixed", 3)}, ""},
		{"either old value, maybe present", 2, []api.Result{r("maybe", 5), r("fixed", 3)}, ""},
		{"either old value, maybe absent", 2, []api.Result{r("fixed", 3), r("either", 1)}, ""},
		{"fewer than k: all fixed returned", 5, []api.Result{r("either", 10), r("fixed", 3)}, ""},
		{"fewer than k: fixed missing", 5, []api.Result{r("either", 10)}, CodeMissing},
		{"score of no possible value", 1, []api.Result{r("either", 7)}, CodeScore},
		{"fixed must rank before worst", 1, []api.Result{r("either", 1)}, CodeMissing},
		{"too many", 1, []api.Result{r("either", 10), r("fixed", 3)}, CodeLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Judge(cands, tt.got, tt.k, DefaultTolerance)
			if tt.code == "" {
				require.NoError(t, err)
				return
			}
			var m *Mismatch
			require.ErrorAs(t, err, &m)
			assert.Equal(t, tt.code, m.Code, m.Error())
		})
	}
}
