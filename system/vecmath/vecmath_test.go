package vecmath

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

// bruteForce scores every vector and sorts them all: the oracle.
func bruteForce(t *testing.T, m api.Metric, ids []string, vecs [][]float32, q []float32, k int) []api.Result {
	t.Helper()
	all := make([]api.Result, len(ids))
	for i, v := range vecs {
		var s float64
		switch m {
		case api.MetricDot:
			for j := range v {
				s += float64(q[j]) * float64(v[j])
			}
		case api.MetricL2:
			for j := range v {
				d := float64(q[j]) - float64(v[j])
				s += d * d
			}
			s = math.Sqrt(s)
		case api.MetricCosine:
			var dot, qq, vv float64
			for j := range v {
				dot += float64(q[j]) * float64(v[j])
				qq += float64(q[j]) * float64(q[j])
				vv += float64(v[j]) * float64(v[j])
			}
			if vv != 0 {
				s = dot / (math.Sqrt(qq) * math.Sqrt(vv))
			}
		}
		all[i] = api.Result{ID: ids[i], Score: s}
	}
	slices.SortFunc(all, func(a, b api.Result) int {
		if a.Score != b.Score {
			if (m == api.MetricL2) == (a.Score < b.Score) {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return all[:min(k, len(all))]
}

func TestTopKMatchesBruteForce(t *testing.T) {
	cases := []struct {
		name   string
		metric api.Metric
		n, dim int
		k      int
		// levels > 0 quantises values to few levels to force score ties.
		levels int
	}{
		{"cosine small", api.MetricCosine, 50, 8, 5, 0},
		{"cosine k>n", api.MetricCosine, 7, 4, 10, 0},
		{"l2", api.MetricL2, 500, 16, 10, 0},
		{"l2 ties", api.MetricL2, 300, 2, 50, 2},
		{"dot", api.MetricDot, 1000, 32, 100, 0},
		{"dot ties", api.MetricDot, 200, 3, 1000, 2},
		{"cosine ties and zero vectors", api.MetricCosine, 200, 2, 30, 2},
		{"k=1", api.MetricL2, 100, 5, 1, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 42))
			ids := make([]string, tc.n)
			vecs := make([][]float32, tc.n)
			for j := range ids {
				ids[j] = "v" + strconv.Itoa(r.IntN(tc.n*10)) + "-" + strconv.Itoa(j)
				vecs[j] = make([]float32, tc.dim)
				for d := range vecs[j] {
					if tc.levels > 0 {
						vecs[j][d] = float32(r.IntN(tc.levels))
					} else {
						vecs[j][d] = float32(r.NormFloat64())
					}
				}
			}
			q := make([]float32, tc.dim)
			for d := range q {
				q[d] = float32(r.NormFloat64()) + 1
			}
			sc, err := NewScorer(tc.metric, q)
			require.NoError(t, err)
			top := NewTopK(tc.metric, tc.k)
			for j, v := range vecs {
				top.Push(ids[j], sc.Score(v))
			}
			require.Equal(t, bruteForce(t, tc.metric, ids, vecs, q, tc.k), top.Results())
		})
	}
}

func TestZeroCosineQuery(t *testing.T) {
	_, err := NewScorer(api.MetricCosine, []float32{0, 0, 0})
	require.ErrorIs(t, err, ErrZeroVector)
	_, err = NewScorer(api.MetricDot, []float32{0, 0, 0})
	require.NoError(t, err)
}

func TestScoreNormIsBitIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, m := range []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot} {
		q := make([]float32, 33)
		for d := range q {
			q[d] = float32(r.NormFloat64())
		}
		sc, err := NewScorer(m, q)
		require.NoError(t, err)
		for range 500 {
			v := make([]float32, 33)
			for d := range v {
				v[d] = float32(r.NormFloat64() * 100)
			}
			require.Equal(t, math.Float64bits(sc.Score(v)), math.Float64bits(sc.ScoreNorm(v, Norm(v))), "metric %s", m)
		}
		require.Equal(t, sc.Score(make([]float32, 33)), sc.ScoreNorm(make([]float32, 33), 0))
	}
}
