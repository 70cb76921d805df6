package store_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

// valuesOf derives a vector from its id, so any search hit can be checked.
func valuesOf(id string, dim int) []float32 {
	var h uint32 = 2166136261
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	v := make([]float32, dim)
	for d := range v {
		h = h*1103515245 + 12345
		v[d] = float32(int(h>>16)%21) - 10
	}
	return v
}

// TestInsertsSearchesAndTransitionsRace runs inserters, searchers and tier
// changes on one collection at once. Every search hit must carry the exact
// score of its id's vector in the right order, never a partial state; at
// the end (and after a restart) exactly the acknowledged inserts are there.
func TestInsertsSearchesAndTransitionsRace(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	const dim = 8
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "mix", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	var mu sync.Mutex
	acked := data{}
	errs := make(chan error, 16)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 25 {
				var b []api.Vector
				for j := range 4 {
					id := fmt.Sprintf("w%d-%d-%d", w, i, j)
					b = append(b, api.Vector{ID: id, Values: valuesOf(id, dim)})
				}
				if _, err := s.Insert(ctx, "mix", b); err != nil {
					report(fmt.Errorf("insert: %w", err))
					return
				}
				mu.Lock()
				acked.add(b)
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	var others sync.WaitGroup
	others.Go(func() {
		tiers := []api.Tier{api.TierWarm, api.TierCold, api.TierHot, api.TierCold, api.TierWarm}
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.SetTier(ctx, "mix", tiers[i%len(tiers)]); err != nil && api.CodeOf(err) != api.CodeTransitionInProgress {
				report(fmt.Errorf("set tier: %w", err))
				return
			}
		}
	})
	q := valuesOf("query", dim)
	others.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			res, err := s.Search(ctx, "mix", q, 50)
			if err != nil {
				report(fmt.Errorf("search: %w", err))
				return
			}
			for i, r := range res {
				v := valuesOf(r.ID, dim)
				var ss float64
				for d := range v {
					x := float64(q[d]) - float64(v[d])
					ss += x * x
				}
				if math.Sqrt(ss) != r.Score {
					report(fmt.Errorf("hit %s has score %v, its vector scores %v", r.ID, r.Score, math.Sqrt(ss)))
					return
				}
				if i > 0 && (res[i-1].Score > r.Score || (res[i-1].Score == r.Score && res[i-1].ID >= r.ID)) {
					report(fmt.Errorf("results out of order at %d", i))
					return
				}
			}
		}
	})
	writers.Wait()
	close(done)
	others.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	require.Len(t, acked, 400)
	requireContent(t, s, "mix", api.MetricL2, acked, dim)
	require.NoError(t, s.Close())
	s = f.open(t, nil)
	requireContent(t, s, "mix", api.MetricL2, acked, dim)
}

// TestSnapshotWhileRestoring races snapshots against restores: every
// snapshot holds exactly one of the two contents, never a mix.
func TestSnapshotWhileRestoring(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	const dim = 4
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "sr", Dimension: dim, Metric: api.MetricDot})
	require.NoError(t, err)
	small := batch("s", 10, dim, 1)
	_, err = s.Insert(ctx, "sr", small)
	require.NoError(t, err)
	snapSmall, err := s.CreateSnapshot(ctx, "sr")
	require.NoError(t, err)
	large := batch("l", 30, dim, 2)
	_, err = s.Insert(ctx, "sr", large)
	require.NoError(t, err)
	snapLarge, err := s.CreateSnapshot(ctx, "sr")
	require.NoError(t, err)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var taken []api.Snapshot
	wg.Go(func() {
		for i := range 10 {
			id := snapSmall.ID
			if i%2 == 1 {
				id = snapLarge.ID
			}
			_, err := s.Restore(ctx, "sr", id)
			require.NoError(t, err)
		}
	})
	wg.Go(func() {
		for range 10 {
			sn, err := s.CreateSnapshot(ctx, "sr")
			require.NoError(t, err)
			mu.Lock()
			taken = append(taken, sn)
			mu.Unlock()
		}
	})
	wg.Wait()
	for _, sn := range taken {
		require.Contains(t, []int{10, 40}, sn.Vectors)
		require.Contains(t, []string{snapSmall.Checksum, snapLarge.Checksum}, sn.Checksum,
			"a snapshot is byte-identical to one of the two contents")
	}
	// The last restore was of the large snapshot.
	want := data{}
	want.add(small)
	want.add(large)
	requireContent(t, s, "sr", api.MetricDot, want, dim)
}
