package store_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

// listAll pages through a collection with the store's ListVectors.
func listAll(ctx context.Context, s interface {
	ListVectors(context.Context, string, string, int) (api.VectorPage, error)
}, name string, limit int) (data, []string, error) {
	got := data{}
	var order []string
	after := ""
	for {
		p, err := s.ListVectors(ctx, name, after, limit)
		if err != nil {
			return nil, nil, err
		}
		for _, v := range p.Vectors {
			got[v.ID] = v.Values
			order = append(order, v.ID)
		}
		if p.Next == "" {
			return got, order, nil
		}
		after = p.Next
	}
}

// TestListVectorsDuringTransitions lists a collection page by page while
// another goroutine moves it through every tier: each listing is complete,
// exact and in id order, and never fails (a page whose file or object a
// transition removed while it was read is read again from the new state).
func TestListVectorsDuringTransitions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "lt", api.MetricDot)
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer done.Store(true)
		tiers := []api.Tier{api.TierWarm, api.TierCold, api.TierHot, api.TierCold, api.TierWarm, api.TierHot}
		for i := range 5 * len(tiers) {
			if _, err := s.SetTier(ctx, "lt", tiers[i%len(tiers)]); err != nil {
				t.Errorf("set tier: %v", err)
				return
			}
		}
	})
	listings := 0
	for i := 0; !done.Load(); i++ {
		got, order, err := listAll(ctx, s, "lt", 1+i%9)
		require.NoError(t, err, "listing %d", i)
		require.Equal(t, want, got, "listing %d", i)
		require.True(t, slices.IsSortedFunc(order, strings.Compare), "ids ascending")
		require.Len(t, order, len(want), "no id twice")
		listings++
	}
	wg.Wait()
	require.Positive(t, listings)
}

func TestListVectorsArguments(t *testing.T) {
	ctx := context.Background()
	s := newFixture(t, nil).open(t, nil)
	setup(t, s, "la", api.MetricL2)
	cases := []struct {
		name, coll, after string
		limit             int
		code              string
	}{
		{"limit zero", "la", "", 0, api.CodeInvalidArgument},
		{"limit too big", "la", "", api.MaxListLimit + 1, api.CodeInvalidArgument},
		{"cursor too long", "la", strings.Repeat("x", api.MaxIDLen+1), 1, api.CodeInvalidArgument},
		{"bad name", "LA", "", 1, api.CodeInvalidArgument},
		{"missing", "nope", "", 1, api.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ListVectors(ctx, tc.coll, tc.after, tc.limit)
			require.Equal(t, tc.code, api.CodeOf(err), "%v", err)
		})
	}
	require.NoError(t, s.Delete(ctx, "la"))
	_, err := s.ListVectors(ctx, "la", "", 1)
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))
}
