package server_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/uploader"
)

// requireSameVectors compares ids and the exact bits of every value.
func requireSameVectors(t *testing.T, want, got []api.Vector) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].ID, got[i].ID, "position %d", i)
		require.Len(t, got[i].Values, len(want[i].Values), "vector %q", want[i].ID)
		for d, v := range want[i].Values {
			require.Equal(t, math.Float32bits(v), math.Float32bits(got[i].Values[d]), "vector %q value %d: want %v got %v", want[i].ID, d, v, got[i].Values[d])
		}
	}
}

// TestListVectorsThroughTiers pages through a collection in every tier:
// ids ascending byte-wise, values bit-exact (extreme, subnormal and
// negative-zero floats included), cursors consistent, tier unchanged.
func TestListVectorsThroughTiers(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	const name, dim = "lv", 3
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 9))
	negZero := float32(math.Copysign(0, -1))
	special := []float32{0.1, negZero, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 1e-38, 16777217, float32(math.Pi)}
	byID := map[string][]float32{}
	var batch []api.Vector
	for i := range 257 {
		// Ids of varied length and bytes, inserted in random order.
		id := strconv.Itoa(r.IntN(100000)) + "-" + strings.Repeat("z", i%4) + []string{"", "é", "_A", "~"}[i%4]
		v := []float32{special[i%len(special)], r.Float32()*2 - 1, float32(i)}
		byID[id] = v
		batch = append(batch, api.Vector{ID: id, Values: v})
	}
	r.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for chunk := range slices.Chunk(batch, 100) {
		_, err := e.c.Insert(ctx, name, chunk)
		require.NoError(t, err)
	}
	// Replacing an id shows the new values.
	repl := batch[17]
	repl.Values = []float32{negZero, 42, math.SmallestNonzeroFloat32}
	byID[repl.ID] = repl.Values
	_, err = e.c.Insert(ctx, name, []api.Vector{repl})
	require.NoError(t, err)
	want := make([]api.Vector, 0, len(byID))
	for id, v := range byID {
		want = append(want, api.Vector{ID: id, Values: v})
	}
	slices.SortFunc(want, func(a, b api.Vector) int { return strings.Compare(a.ID, b.ID) })

	for _, tier := range []api.Tier{api.TierHot, api.TierWarm, api.TierCold, api.TierWarm, api.TierHot} {
		t.Run(string(tier), func(t *testing.T) {
			_, err := e.c.SetTier(ctx, name, tier)
			require.NoError(t, err)
			for _, size := range []int{0, 1, 7, len(want) - 1, len(want), api.MaxListLimit} {
				got, err := e.c.AllVectors(ctx, name, size)
				require.NoError(t, err, "page size %d", size)
				requireSameVectors(t, want, got)
			}
			// One page by hand: the cursor is the page's last id.
			p, err := e.c.ListVectors(ctx, name, "", 10)
			require.NoError(t, err)
			requireSameVectors(t, want[:10], p.Vectors)
			require.Equal(t, want[9].ID, p.Next)
			p, err = e.c.ListVectors(ctx, name, p.Next, 10)
			require.NoError(t, err)
			requireSameVectors(t, want[10:20], p.Vectors)
			// A cursor between ids and one past the end.
			p, err = e.c.ListVectors(ctx, name, want[len(want)-3].ID+"\x00", 10)
			require.NoError(t, err)
			requireSameVectors(t, want[len(want)-2:], p.Vectors)
			require.Empty(t, p.Next)
			p, err = e.c.ListVectors(ctx, name, "\xff", 10)
			require.NoError(t, err)
			require.Empty(t, p.Vectors)
			require.NotNil(t, p.Vectors, "an empty page is [] on the wire")
			require.Empty(t, p.Next)
			c, err := e.c.GetCollection(ctx, name)
			require.NoError(t, err)
			require.Equal(t, tier, c.Tier, "listing does not promote")
		})
	}

	// An empty collection lists as one empty page.
	_, err = e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "empty", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	p, err := e.c.ListVectors(ctx, "empty", "", 0)
	require.NoError(t, err)
	require.Empty(t, p.Vectors)
	require.Empty(t, p.Next)
}

// TestListVectorsOfCorruptColdObject: a cold object that fails its
// checksum is refused with data_corrupted naming the object.
func TestListVectorsOfCorruptColdObject(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "cc", Dimension: 2, Metric: api.MetricDot})
	require.NoError(t, err)
	_, err = e.c.Insert(ctx, "cc", []api.Vector{{ID: "a", Values: []float32{1, 2}}, {ID: "b", Values: []float32{3, 4}}})
	require.NoError(t, err)
	c, err := e.c.SetTier(ctx, "cc", api.TierCold)
	require.NoError(t, err)
	id, err := e.objs.Inject(uploader.Fault{Kind: uploader.FaultCorrupt, Op: uploader.OpGetObject})
	require.NoError(t, err)
	_, err = e.c.ListVectors(ctx, "cc", "", 0)
	require.Equal(t, api.CodeDataCorrupted, clientCode(err), "%v", err)
	require.ErrorContains(t, err, c.Object)
	e.objs.RemoveFault(id)
	got, err := e.c.AllVectors(ctx, "cc", 1)
	require.NoError(t, err)
	require.Equal(t, []api.Vector{{ID: "a", Values: []float32{1, 2}}, {ID: "b", Values: []float32{3, 4}}}, got)
}
