package check

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

func createDim(call, ret int64, metric api.Metric, dim int, out history.Outcome) history.Op {
	return history.Op{Kind: history.KindCreateCollection, Call: call, Return: ret, Dimension: dim, Metric: metric,
		Outcome: out}
}

func del(call, ret int64, out history.Outcome) history.Op {
	return history.Op{Kind: history.KindDeleteCollection, Call: call, Return: ret, Outcome: out}
}

// TestSearchesPerIncarnation: a name deleted and created again with another
// metric and dimension is judged per incarnation. Scores: cosine of (1,0)
// with query (1,0) is 1, l2 of (1,0,0) to (3,0,0) is 2.
func TestSearchesPerIncarnation(t *testing.T) {
	q2, q3 := []float32{1, 0}, []float32{3, 0, 0}
	// cosine, dimension 2, then l2, dimension 3.
	recreated := func(first, second history.Op) *builder {
		return new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
			add(insert(3, 4, history.OK, vec("a", 1, 0), vec("b", 0, 2))).
			add(first).
			add(del(7, 8, history.OK)).
			add(createDim(9, 10, api.MetricL2, 3, history.OK)).
			add(insert(11, 12, history.OK, vec("a", 1, 0, 0))).
			add(second)
	}
	// Both incarnations dimension 2: cosine, then l2. The search runs from
	// 5 to 20, across the delete, the create and the insert.
	racing := func(createOutcome history.Outcome, rs ...api.Result) *builder {
		return new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
			add(insert(3, 4, history.OK, vec("a", 1, 0))).
			add(search(5, 20, 1, []float32{4, 0}, rs...)).
			add(del(7, 8, history.OK)).
			add(createDim(9, 10, api.MetricL2, 2, createOutcome)).
			add(insert(11, 12, history.OK, vec("a", 2, 0)))
	}
	tests := []struct {
		name string
		ops  *builder
		want string // "" = must pass
	}{
		{"each search judged with its own incarnation's metric",
			recreated(search(5, 6, 2, q2, res("a", 1), res("b", 0)), search(13, 14, 1, q3, res("a", 2))), ""},
		{"wrong score for the first incarnation (l2 distance instead of cosine)",
			recreated(search(5, 6, 1, q2, res("a", 0)), search(13, 14, 1, q3, res("a", 2))), "oracle score"},
		{"wrong score for the second incarnation (cosine instead of l2)",
			recreated(search(5, 6, 1, q2, res("a", 1)), search(13, 14, 1, q3, res("a", 1))), "oracle score"},
		{"value of the first incarnation seen in the second",
			recreated(search(5, 6, 1, q2, res("a", 1)), search(13, 14, 2, q3, res("a", 2), res("b", 3.6055512754639896))),
			"id is not in the collection"},
		{"old dimension after a certain re-create",
			recreated(search(5, 6, 1, q2, res("a", 1)), search(13, 14, 1, q2, res("a", 1))),
			"has another dimension [3]"},
		{"search across delete and re-create: first incarnation (cosine)", racing(history.OK, res("a", 1)), ""},
		{"search across delete and re-create: second incarnation (l2)", racing(history.OK, res("a", 2)), ""},
		{"search across delete and re-create: second incarnation still empty", racing(history.OK), ""},
		{"search across delete and re-create: old value under the new metric", racing(history.OK, res("a", 3)),
			"oracle score"},
		{"unknown re-create: either incarnation", racing(history.Unknown, res("a", 2)), ""},
		{"search after an unknown re-create: old incarnation",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(del(5, 6, history.OK)).
				add(createDim(7, 8, api.MetricL2, 2, history.Unknown)).
				add(search(9, 10, 1, []float32{4, 0})), ""},
		{"search after a certain re-create never sees the old metric",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(del(5, 6, history.OK)).
				add(createDim(7, 8, api.MetricL2, 2, history.OK)).
				add(insert(9, 10, history.OK, vec("a", 1, 0))).
				add(search(11, 12, 1, []float32{4, 0}, res("a", 1))),
			"metric l2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{}).Searches()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, SearchesName, tt.want)
		})
	}
}

// TestLostWritesPerIncarnation: an acknowledged create wipes what earlier
// incarnations held, even when the delete between them timed out.
func TestLostWritesPerIncarnation(t *testing.T) {
	tests := []struct {
		name  string
		ops   *builder
		final history.Final
		want  string
	}{
		{"re-created with another dimension, new content",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(del(5, 6, history.OK)).
				add(createDim(7, 8, api.MetricL2, 3, history.OK)).
				add(insert(9, 10, history.OK, vec("b", 1, 0, 0))),
			final(vec("b", 1, 0, 0)), ""},
		{"old write resurrected after an unknown delete and an acknowledged create",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(del(5, 6, history.Unknown)).
				add(createDim(7, 8, api.MetricL2, 2, history.OK)),
			final(vec("a", 1, 0)), "certainly wiped"},
		{"unknown delete without a re-create may leave the write",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(del(5, 6, history.Unknown)),
			final(vec("a", 1, 0)), ""},
		{"write of the new incarnation lost",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(del(5, 6, history.OK)).
				add(createDim(7, 8, api.MetricL2, 2, history.OK)).
				add(insert(9, 10, history.OK, vec("a", 5, 5))),
			final(vec("a", 1, 0)), "not the values of any write"},
		{"acknowledged search proves existence",
			new(builder).add(createDim(1, 2, api.MetricCosine, 2, history.OK)).
				add(del(3, 4, history.OK)).
				add(createDim(5, 6, api.MetricL2, 2, history.Unknown)).
				add(search(7, 8, 1, []float32{1, 0})),
			history.NewFinal(nil, "c"), "existed at op 3 (acknowledged) and was never deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{}).LostWrites(tt.final)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, LostWritesName, tt.want)
		})
	}
}
