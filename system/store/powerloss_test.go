package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
	"github.com/tierchaos/tierchaos/system/store"
)

// TestPowerLoss runs the store on the power-loss layer, cuts the power
// after (or, at a hook point, during) its work, reopens it on what the
// cut left, and requires everything it acknowledged back. The same rows
// run end to end in scenarios/powerloss.
func TestPowerLoss(t *testing.T) {
	tests := []struct {
		name string
		// before brings the collection to a state (all acknowledged).
		before []api.Tier
		// point, if set, cuts during a move to target at that hook point;
		// else the cut comes after the move.
		point  string
		target api.Tier
		want   api.Tier
	}{
		{name: "inserts", want: api.TierHot},
		{name: "demotion to warm", target: api.TierWarm, want: api.TierWarm},
		{name: "demotion to warm, cut before the flip", point: store.HookWarmWritten, target: api.TierWarm, want: api.TierHot},
		{name: "demotion to warm, cut after the flip", point: store.HookWarmCommitted, target: api.TierWarm, want: api.TierWarm},
		{name: "demotion to cold", before: []api.Tier{api.TierWarm}, target: api.TierCold, want: api.TierCold},
		{name: "demotion to cold, cut after the flip", before: []api.Tier{api.TierWarm}, point: store.HookColdCommitted, target: api.TierCold, want: api.TierCold},
		{name: "promotion to hot, cut after the flip", before: []api.Tier{api.TierWarm, api.TierCold}, point: store.HookHotCommitted, target: api.TierHot, want: api.TierHot},
	}
	for _, tc := range tests {
		for _, torn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/torn=%v", tc.name, torn), func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, nil)
				fs, err := powerloss.New(f.dir)
				require.NoError(t, err)
				var cut chan error
				s := f.open(t, func(o *store.Options) {
					o.FS = fs
					o.Hook = func(point string) {
						if tc.point != "" && point == tc.point && cut != nil {
							_, err := fs.Cut(powerloss.CutOptions{Seed: 3, Torn: torn})
							cut <- err
							cut = nil
						}
					}
				})
				_, err = s.Create(ctx, api.CreateCollectionRequest{Name: "c", Dimension: 4, Metric: api.MetricCosine})
				require.NoError(t, err)
				want := map[string][]float32{}
				for i := range 20 {
					v := api.Vector{ID: fmt.Sprintf("v%02d", i), Values: []float32{float32(i), 1, 2, 3}}
					_, err := s.Insert(ctx, "c", []api.Vector{v})
					require.NoError(t, err)
					want[v.ID] = v.Values
				}
				for _, tier := range tc.before {
					_, err := s.SetTier(ctx, "c", tier)
					require.NoError(t, err)
				}
				switch {
				case tc.point != "":
					cut = make(chan error, 1)
					done := cut
					_, _ = s.SetTier(ctx, "c", tc.target)
					require.NoError(t, <-done, "the cut at %s", tc.point)
				default:
					if tc.target != "" {
						_, err := s.SetTier(ctx, "c", tc.target)
						require.NoError(t, err)
					}
					_, err := fs.Cut(powerloss.CutOptions{Seed: 3, Torn: torn})
					require.NoError(t, err)
				}
				s.Halt()
				fs2, err := powerloss.New(f.dir)
				require.NoError(t, err)
				s2 := f.open(t, func(o *store.Options) { o.FS = fs2 })
				got, err := s2.Get(ctx, "c")
				require.NoError(t, err)
				require.Equal(t, tc.want, got.Tier)
				require.Equal(t, len(want), got.Vectors)
				page, err := s2.ListVectors(ctx, "c", "", 100)
				require.NoError(t, err)
				require.Len(t, page.Vectors, len(want))
				for _, v := range page.Vectors {
					require.Equal(t, want[v.ID], v.Values, v.ID)
				}
			})
		}
	}
}
