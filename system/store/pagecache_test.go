package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/internal/badobjects"
	"github.com/tierchaos/tierchaos/system/store"
)

// TestColdPagingDownloadsTheObjectOnce: paging through a cold collection
// reads its object from S3 once, not once per page; after the collection
// leaves the object (promotion, new content, demotion to a new object) the
// listing shows the new content, read from the new object.
func TestColdPagingDownloadsTheObjectOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	counting := badobjects.NewCounting(f.objs)
	s := f.open(t, withObjects(t, counting))
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "p", Dimension: 8, Metric: api.MetricL2})
	require.NoError(t, err)
	vs := make([]api.Vector, 3000)
	for i := range vs {
		vs[i] = api.Vector{ID: fmt.Sprintf("v%05d", i), Values: []float32{float32(i), 1, 2, 3, 4, 5, 6, 7}}
	}
	_, err = s.Insert(ctx, "p", vs)
	require.NoError(t, err)
	c, err := s.SetTier(ctx, "p", api.TierCold)
	require.NoError(t, err)
	info, err := f.objs.StatObject(ctx, c.Object)
	require.NoError(t, err)

	walk := func() []api.Vector {
		var all []api.Vector
		after := ""
		for {
			page, err := s.ListVectors(ctx, "p", after, 500)
			require.NoError(t, err)
			all = append(all, page.Vectors...)
			if page.Next == "" {
				return all
			}
			after = page.Next
		}
	}
	before := counting.BytesRead()
	got := walk()
	require.Equal(t, vs, got)
	require.LessOrEqual(t, counting.BytesRead()-before, info.Size+1,
		"six pages of a %d-byte object read %d bytes", info.Size, counting.BytesRead()-before)
	got[0].Values[0] = -1 // a caller changing its page changes nothing cached
	require.Equal(t, vs[:1], walk()[:1])

	// New content in a new object: the listing follows it.
	_, err = s.SetTier(ctx, "p", api.TierHot)
	require.NoError(t, err)
	extra := api.Vector{ID: "w", Values: []float32{9, 9, 9, 9, 9, 9, 9, 9}}
	_, err = s.Insert(ctx, "p", []api.Vector{extra})
	require.NoError(t, err)
	c2, err := s.SetTier(ctx, "p", api.TierCold)
	require.NoError(t, err)
	require.NotEqual(t, c.Object, c2.Object)
	before = counting.BytesRead()
	require.Equal(t, append(vs[:len(vs):len(vs)], extra), walk())
	info2, err := f.objs.StatObject(ctx, c2.Object)
	require.NoError(t, err)
	require.LessOrEqual(t, counting.BytesRead()-before, info2.Size+1)
}

// TestColdPageCacheIsBounded: an object larger than the cache's bound is
// not kept, and every page downloads it again (the listing still works).
func TestColdPageCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *store.Options) { o.ColdPageCacheBytes = 1024 })
	counting := badobjects.NewCounting(f.objs)
	s := f.open(t, withObjects(t, counting))
	want := setup(t, s, "b", api.MetricL2)
	_, err := s.SetTier(ctx, "b", api.TierCold)
	require.NoError(t, err)
	before := counting.BytesRead()
	var n int
	for after := ""; ; {
		page, err := s.ListVectors(ctx, "b", after, 20)
		require.NoError(t, err)
		n += len(page.Vectors)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	require.Equal(t, len(want), n)
	c, err := s.Get(ctx, "b")
	require.NoError(t, err)
	info, err := f.objs.StatObject(ctx, c.Object)
	require.NoError(t, err)
	require.Greater(t, counting.BytesRead()-before, 2*info.Size, "every page downloads an uncached object")
}
