package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/store"
)

func randBatch(r *rand.Rand, prefix string, n, dim int) []api.Vector {
	out := make([]api.Vector, n)
	for i := range out {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32(r.NormFloat64())
		}
		out[i] = api.Vector{ID: fmt.Sprintf("%s%d", prefix, i), Values: v}
	}
	return out
}

func benchStore(b *testing.B) *store.Store {
	b.Helper()
	f := newFixture(b, nil)
	return f.open(b, func(o *store.Options) { o.Limits.MaxVectorsPerInsert = 100000 })
}

// BenchmarkInsertWAL measures acknowledged inserts (WAL fsync included),
// dimension 128, one client, and 16 concurrent clients on 16 collections.
func BenchmarkInsertWAL(b *testing.B) {
	const dim = 128
	for _, bs := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d/clients=1", bs), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "b", Dimension: dim, Metric: api.MetricDot})
			require.NoError(b, err)
			r := rand.New(rand.NewPCG(1, 2))
			batches := make([][]api.Vector, 64)
			for i := range batches {
				batches[i] = randBatch(r, fmt.Sprintf("v%d-", i), bs, dim)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Insert(ctx, "b", batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "vectors/s")
		})
		b.Run(fmt.Sprintf("batch=%d/clients=16", bs), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			for c := range 16 {
				_, err := s.Create(ctx, api.CreateCollectionRequest{Name: fmt.Sprintf("b%d", c), Dimension: dim, Metric: api.MetricDot})
				require.NoError(b, err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			batch := randBatch(r, "v", bs, dim)
			b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 clients
			next := make(chan int, 16)
			for c := range 16 {
				next <- c
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				name := fmt.Sprintf("b%d", <-next)
				for pb.Next() {
					if _, err := s.Insert(ctx, name, batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "vectors/s")
		})
	}
}

func loaded(b *testing.B, s *store.Store, name string, n, dim int) {
	b.Helper()
	ctx := context.Background()
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: name, Dimension: dim, Metric: api.MetricCosine})
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i += 10000 {
		_, err := s.Insert(ctx, name, randBatch(r, fmt.Sprintf("v%d-", i), min(10000, n-i), dim))
		require.NoError(b, err)
	}
}

// BenchmarkSearch measures exact top-10 search latency, dimension 128.
func BenchmarkSearch(b *testing.B) {
	const dim = 128
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			s := benchStore(b)
			loaded(b, s, "s", n, dim)
			q := randBatch(rand.New(rand.NewPCG(5, 6)), "q", 1, dim)[0].Values
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Search(ctx, "s", q, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTransitions measures the demotion and promotion of a 10k x 128
// collection and of a small one (200 x 64, the nightly load's shape),
// against the in-memory object store.
func BenchmarkTransitions(b *testing.B) {
	for _, size := range []struct{ n, dim int }{{10_000, 128}, {200, 64}} {
		for _, path := range [][2]api.Tier{{api.TierHot, api.TierWarm}, {api.TierHot, api.TierCold}} {
			b.Run(fmt.Sprintf("%dx%d/%s-%s-%s", size.n, size.dim, path[0], path[1], path[0]), func(b *testing.B) {
				s := benchStore(b)
				loaded(b, s, "t", size.n, size.dim)
				ctx := context.Background()
				var down, up float64
				b.ResetTimer()
				for b.Loop() {
					t0 := time.Now()
					if _, err := s.SetTier(ctx, "t", path[1]); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if _, err := s.SetTier(ctx, "t", path[0]); err != nil {
						b.Fatal(err)
					}
					down += t1.Sub(t0).Seconds()
					up += time.Now().Sub(t1).Seconds()
				}
				b.ReportMetric(down/float64(b.N)*1000, "ms/demote")
				b.ReportMetric(up/float64(b.N)*1000, "ms/promote")
			})
		}
	}
}

// BenchmarkRecovery measures Open (restart) of a store holding one hot
// collection of 100k x 128 vectors, from the WAL alone and from a
// checkpoint.
func BenchmarkRecovery(b *testing.B) {
	const dim, n = 128, 100_000
	for _, checkpoint := range []bool{false, true} {
		b.Run(fmt.Sprintf("checkpoint=%v", checkpoint), func(b *testing.B) {
			f := newFixture(b, nil)
			s := f.open(b, func(o *store.Options) { o.CheckpointBytes = 1 })
			loaded(b, s, "r", n, dim)
			if checkpoint {
				var cyc api.WorkerCycle
				s.Maintain(context.Background(), store.MaintainOptions{}, &cyc)
				require.Equal(b, []string{"r"}, cyc.Checkpointed)
			}
			require.NoError(b, s.Close())
			b.ResetTimer()
			for b.Loop() {
				s := f.open(b, nil)
				b.StopTimer()
				require.NoError(b, s.Close())
				b.StartTimer()
			}
		})
	}
}

// BenchmarkListVectors measures one page of GET .../vectors (the first
// page of 1000, and of 10000) of a 100k x 128 collection in each local tier
// (a warm page reads, verifies and decodes the whole file).
func BenchmarkListVectors(b *testing.B) {
	const dim, n = 128, 100000
	s := benchStore(b)
	ctx := context.Background()
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "l", Dimension: dim, Metric: api.MetricDot})
	require.NoError(b, err)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range n / 10000 {
		_, err := s.Insert(ctx, "l", randBatch(r, fmt.Sprintf("v%d-", i), 10000, dim))
		require.NoError(b, err)
	}
	for _, tier := range []api.Tier{api.TierHot, api.TierWarm} {
		_, err := s.SetTier(ctx, "l", tier)
		require.NoError(b, err)
		for _, limit := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/limit=%d", tier, limit), func(b *testing.B) {
				for b.Loop() {
					p, err := s.ListVectors(ctx, "l", "", limit)
					if err != nil || len(p.Vectors) != limit {
						b.Fatal(err, len(p.Vectors))
					}
				}
			})
		}
	}
}
