//go:build e2e

package diskfull

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/scenarios/quota/internal/datadir"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

const (
	// dim makes a vector about 2 KiB, so that a few hundred vectors fill
	// megabytes and each collection stays below api.MaxK (the checkers
	// read every id back).
	dim     = 512
	batch   = 100
	topK    = 10
	queries = 5
	// walPerVector is a vector's bytes in a WAL record (u16 id length,
	// the 6-byte fixture id, float32 values).
	walPerVector = 2 + 6 + 4*dim
)

// TestDiskFull is the disk-full suite: each row names its fault (the
// data volume running out of space), its actions and its expectations,
// read back from tierd, its data directory and MinIO.
func TestDiskFull(t *testing.T) {
	cases := []scenario.Scenario[*tierd.Case]{
		{
			// Scenario 9.
			Name:   "warm-disk-full-demotion",
			Faults: []scenario.Fault{scenario.Described("ENOSPC: the 4 MiB tmpfs data volume has less room than the demoted collection's Parquet file")},
			Guards: "a demotion that hits ENOSPC answers insufficient_storage, keeps the collection hot, exact and writable, and leaves no partial file (the volume's free space is exactly what it was); after space is freed through tierd the same demotion succeeds",
			Run:    warmDiskFull,
		},
		{
			Name:    "warm-disk-full-demotion-grpc",
			Faults:  []scenario.Fault{scenario.Described("ENOSPC: the 4 MiB tmpfs data volume has less room than the demoted collection's Parquet file")},
			Guards:  "as warm-disk-full-demotion; the failed demotion answers gRPC RESOURCE_EXHAUSTED with the ErrorInfo reason insufficient_storage",
			Run:     warmDiskFull,
			Variant: string(tierd.APIGRPC),
		},
		{
			// Own case: the volume filled to the last page by concurrent inserts.
			Name:   "volume-full-inserts-then-delete",
			Faults: []scenario.Fault{scenario.Described("ENOSPC on the WAL: 3 concurrent writers fill the 4 MiB tmpfs data volume through inserts, then single-vector inserts fill its last page")},
			Guards: "inserts that hit ENOSPC answer insufficient_storage and apply nothing while every acknowledged insert stays readable and exact; a full volume does not wedge tierd: deleting a collection through the API frees its space and inserts work again",
			Run:    volumeFullInserts,
		},
	}
	scenario.Run(t, cases, func(t *testing.T, s scenario.Scenario[*tierd.Case]) *tierd.Case {
		stack.RequireDataTmpfs(t) // a real ENOSPC needs the 4 MiB tmpfs
		return stack.CaseFor(t, s)
	})
}

// warmDiskFull is scenario 9.
func warmDiskFull(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	deleteAtEnd(t)
	// A space hog: filler F, warm. Its WAL records are dropped by a worker
	// cycle, so the volume holds only its Parquet file.
	f := fixture.Create(ctx, t, c, rng, 800, dim, api.MetricCosine)
	_, err := c.SetTier(ctx, f.Name, api.TierWarm)
	require.NoError(t, err)
	runWorker(ctx, t)
	fSize := usage(ctx, t).WarmBytes
	require.Positive(t, fSize)
	space, err := datadir.Statfs(ctx, stack)
	require.NoError(t, err)
	t.Logf("volume %d B, free %d B with F's warm file (%d B)", space.Total, space.Free, fSize)

	// The victim V: its WAL fits in the free space, but its WAL and its
	// Parquet file together exceed it by half of F's file, and fit once F's
	// file is gone with as much to spare.
	perVector := fSize / int64(len(f.Vectors)) // Parquet bytes per vector
	nV := int((space.Free + fSize/2) / (walPerVector + perVector))
	require.Less(t, nV, api.MaxK, "V must stay readable by the checkers")
	require.Less(t, int64(nV)*walPerVector, space.Free-fSize/4, "V's WAL must fit")
	v := fixture.Create(ctx, t, c, rng, nV, dim, api.MetricL2)
	before, err := datadir.Statfs(ctx, stack)
	require.NoError(t, err)
	estV := int64(nV) * perVector
	require.Less(t, before.Free, estV, "premise: less free space (%d B) than V's Parquet file (about %d B)", before.Free, estV)
	filesBefore, err := datadir.List(ctx, stack)
	require.NoError(t, err)
	warmBefore := usage(ctx, t).WarmBytes

	// The demotion hits ENOSPC and fails cleanly.
	_, err = c.SetTier(ctx, v.Name, api.TierWarm)
	require.Error(t, err, "demotion of V onto a full volume")
	tc.RequireWireError(t, err, api.CodeInsufficientStorage)
	fixture.RequireTier(ctx, t, c, v, api.TierHot)
	after, err := datadir.Statfs(ctx, stack)
	require.NoError(t, err)
	require.Equal(t, before.Free, after.Free, "no partial file: the volume's free space is what it was before the demotion")
	filesAfter, err := datadir.List(ctx, stack)
	require.NoError(t, err)
	require.Equal(t, filesBefore.Files, filesAfter.Files, "no partial file: the data directory is unchanged")
	require.Empty(t, filesAfter.Partial())
	require.Equal(t, warmBefore, usage(ctx, t).WarmBytes, "warm usage unchanged")
	require.Equal(t, filesAfter.ParquetBytes(), usage(ctx, t).WarmBytes, "warm usage = Parquet files on disk")
	requireNoObjects(ctx, t, v.Name)

	// V stays usable: exact searches, and an insert.
	fixture.RequireExactSearch(ctx, t, c, rng, v, queries, topK)
	more := fixture.RandomVectors(rng, nV+10, dim)[nV:]
	_, err = c.Insert(ctx, v.Name, more)
	require.NoError(t, err, "insert into V after the failed demotion")
	v.Vectors = append(v.Vectors, more...)
	fixture.RequireExactSearch(ctx, t, c, rng, v, queries, topK)

	// Free space through tierd: F goes cold, its local file goes away.
	_, err = c.SetTier(ctx, f.Name, api.TierCold)
	require.NoError(t, err, "demotion of F to cold with the volume nearly full")
	require.Len(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", f.Name), 1)
	freed, err := datadir.Statfs(ctx, stack)
	require.NoError(t, err)
	require.Greater(t, freed.Free, after.Free+fSize/2, "F's local file is gone")

	// The same demotion succeeds now.
	_, err = c.SetTier(ctx, v.Name, api.TierWarm)
	require.NoError(t, err, "demotion of V after space was freed")
	fixture.RequireTier(ctx, t, c, v, api.TierWarm)
	l, err := datadir.List(ctx, stack)
	require.NoError(t, err)
	require.Empty(t, l.Partial())
	require.Len(t, l.Parquet(), 1, "only V's warm file")
	require.Equal(t, l.ParquetBytes(), usage(ctx, t).WarmBytes, "warm usage = Parquet files on disk")
	fixture.RequireExactSearch(ctx, t, c, rng, v, queries, topK)

	// Make room for the checkers' read-back (F's promotion from cold
	// passes through the volume): drop the WAL V's warm file covers.
	runWorker(ctx, t)
	tc.Check(ctx, t, check.Config{}, f.Name, v.Name)
}

// deleteAtEnd deletes every collection when t ends: this package's
// stack belongs to its cases, and the next one needs the volume empty.
// When tierd cannot delete them (a failed case may leave the volume
// full), tierd's data directory is wiped instead.
func deleteAtEnd(t *testing.T) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := deleteAll(ctx); err != nil {
			t.Logf("cleanup: %v; wiping tierd's data directory", err)
			if err := wipe(ctx); err != nil {
				t.Errorf("wipe tierd's data after the case: %v", err)
			}
		}
	})
}

func deleteAll(ctx context.Context) error {
	list, err := stack.Tierd.ListCollections(ctx)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, col := range list {
		if err := stack.Tierd.DeleteCollection(ctx, col.Name); err != nil {
			return fmt.Errorf("delete %s: %w", col.Name, err)
		}
	}
	if _, err := stack.Tierd.Worker(ctx, "run_once"); err != nil {
		return fmt.Errorf("worker cycle: %w", err)
	}
	if u, err := stack.Tierd.Usage(ctx); err != nil || u.WarmBytes != 0 || u.Collections != 0 {
		return fmt.Errorf("usage after deleting everything: %+v (%v)", u, err)
	}
	return nil
}

// wipe stops tierd, empties its data directory and starts it again.
func wipe(ctx context.Context) error {
	return stack.WipeTierdData(ctx)
}

// runWorker runs one worker cycle (it drops the WAL segments that
// snapshots cover) and requires it to end without errors.
func runWorker(ctx context.Context, t *testing.T) {
	t.Helper()
	st, err := stack.Tierd.Worker(ctx, "run_once")
	require.NoError(t, err)
	require.NotNil(t, st.Last)
	require.Empty(t, st.Last.Errors, "worker cycle errors")
}

func usage(ctx context.Context, t *testing.T) api.Usage {
	t.Helper()
	u, err := stack.Tierd.Usage(ctx)
	require.NoError(t, err)
	return u
}

// requireNoObjects requires that MinIO holds nothing of the collections.
func requireNoObjects(ctx context.Context, t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		require.Empty(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", n), "objects of %s in MinIO", n)
		require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", n), "incomplete uploads of %s", n)
	}
}

// volumeFullInserts is the own case: concurrent inserts fill the volume
// through the WAL to its last page; then a delete must free space.
func volumeFullInserts(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	deleteAtEnd(t)
	// F: a warm collection whose file a delete can free later.
	f := fixture.Create(ctx, t, c, rng, 900, dim, api.MetricDot)
	_, err := c.SetTier(ctx, f.Name, api.TierWarm)
	require.NoError(t, err)
	runWorker(ctx, t)
	fSize := usage(ctx, t).WarmBytes

	// Two hot collections take the inserts (each stays below api.MaxK).
	hs := make([]*growing, 2)
	for i := range hs {
		hs[i] = &growing{Collection: fixture.Collection{Name: fixture.UniqueName(t, rng), Dim: dim, Metric: api.MetricL2}}
		_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: hs[i].Name, Dimension: dim, Metric: hs[i].Metric})
		require.NoError(t, err)
	}
	// tiny's 1-dimensional vectors fill the last page. Every collection is
	// created now: on the full volume no create could commit.
	tiny := &growing{Collection: fixture.Collection{Name: fixture.UniqueName(t, rng), Dim: 1, Metric: api.MetricL2}}
	_, err = c.CreateCollection(ctx, api.CreateCollectionRequest{Name: tiny.Name, Dimension: 1, Metric: tiny.Metric})
	require.NoError(t, err)
	// Three writers insert until the volume refuses them.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for w := range errs {
		wg.Add(1)
		rng := tc.Seed.Stream(fmt.Sprintf("writer-%d", w))
		go func() {
			defer wg.Done()
			errs[w] = fillUntilFull(ctx, c, rng, hs[w%len(hs)], 20)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	// Then single vectors, then a collection of 1-dimensional vectors,
	// until not one more record fits: the volume is full to its last page.
	require.NoError(t, fillUntilFull(ctx, c, rng, hs[0], 1))
	require.NoError(t, fillUntilFull(ctx, c, rng, tiny, 1))
	full, err := datadir.Statfs(ctx, stack)
	require.NoError(t, err)
	t.Logf("volume full: %d B free; acknowledged %d + %d + %d vectors; F's file %d B",
		full.Free, len(hs[0].Vectors), len(hs[1].Vectors), len(tiny.Vectors), fSize)
	require.Less(t, full.Free, int64(4096), "premise: the volume is full to its last page")

	// Every acknowledged insert is there and exact, nothing refused is.
	for _, h := range append(hs, tiny) {
		fixture.RequireTier(ctx, t, c, &h.Collection, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c, rng, &h.Collection, queries, topK)
		requireNoObjects(ctx, t, h.Name)
	}

	// Free space through tierd: deleting F removes its file.
	err = c.DeleteCollection(ctx, f.Name)
	require.NoError(t, err, "deleting a collection on a full volume (the only way to free space through tierd)")
	freed, err := datadir.Statfs(ctx, stack)
	require.NoError(t, err)
	require.GreaterOrEqual(t, freed.Free, fSize-4096, "F's file is gone")
	l, err := datadir.List(ctx, stack)
	require.NoError(t, err)
	require.Empty(t, l.Partial())
	require.Empty(t, l.Parquet(), "no warm file left")
	require.Zero(t, usage(ctx, t).WarmBytes)

	// Inserts work again.
	more := vectorsFrom(rng, hs[1].next(batch), batch, dim)
	_, err = c.Insert(ctx, hs[1].Name, more)
	require.NoError(t, err, "insert after space was freed")
	hs[1].Vectors = append(hs[1].Vectors, more...)
	fixture.RequireExactSearch(ctx, t, c, rng, &hs[1].Collection, queries, topK)
	tc.Check(ctx, t, check.Config{}, f.Name, hs[0].Name, hs[1].Name, tiny.Name)
}

// growing is a collection that several writers extend with fresh ids.
type growing struct {
	fixture.Collection
	mu  sync.Mutex
	ids int
}

// next reserves n ids and returns the first.
func (g *growing) next(n int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	first := g.ids
	g.ids += n
	return first
}

// fillUntilFull inserts batches of n vectors into g until tierd answers
// insufficient_storage; any other error is returned.
func fillUntilFull(ctx context.Context, c fixture.Tierd, rng *rand.Rand, g *growing, n int) error {
	for {
		first := g.next(n)
		if first+n >= api.MaxK {
			return fmt.Errorf("%s: %d vectors inserted and the volume is still not full", g.Name, first)
		}
		vs := vectorsFrom(rng, first, n, g.Dim)
		_, err := c.Insert(ctx, g.Name, vs)
		switch {
		case err == nil:
			g.mu.Lock()
			g.Vectors = append(g.Vectors, vs...)
			g.mu.Unlock()
		case client.CodeOf(err) == api.CodeInsufficientStorage:
			return nil
		default:
			return fmt.Errorf("insert into %s on a filling volume: want success or insufficient_storage, got %w", g.Name, err)
		}
	}
}

// vectorsFrom returns n random vectors with ids v<first>... (the
// fixture's id format).
func vectorsFrom(rng *rand.Rand, first, n, dim int) []api.Vector {
	vs := fixture.RandomVectors(rng, n, dim)
	for i := range vs {
		vs[i].ID = fmt.Sprintf("v%05d", first+i)
	}
	return vs
}
