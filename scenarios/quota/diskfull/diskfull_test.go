//go:build e2e

package diskfull

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness"
	"github.com/tierchaos/tierchaos/harness/check"
	"github.com/tierchaos/tierchaos/harness/fixture"
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
	cases := []struct {
		name   string
		fault  string
		guards string
		run    func(ctx context.Context, t *testing.T, c *harness.Case)
	}{
		{
			// Scenario 9.
			name:   "warm-disk-full-demotion",
			fault:  "ENOSPC: the 4 MiB tmpfs data volume has less room than the demoted collection's Parquet file",
			guards: "a demotion that hits ENOSPC answers insufficient_storage, keeps the collection hot, exact and writable, and leaves no partial file (the volume's free space is exactly what it was); after space is freed through tierd the same demotion succeeds",
			run:    warmDiskFull,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t.Cleanup(cancel)
			t.Logf("fault: %s", tc.fault)
			t.Logf("guards: %s", tc.guards)
			start := time.Now()
			tc.run(ctx, t, stack.NewCase(t))
			t.Logf("case took %s (%s mode)", time.Since(start).Round(time.Millisecond), stack.Mode)
		})
	}
}

// warmDiskFull is scenario 9.
func warmDiskFull(ctx context.Context, t *testing.T, tc *harness.Case) {
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
	require.Equal(t, api.CodeInsufficientStorage, client.CodeOf(err), "error: %v", err)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 507, ce.StatusCode)
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
	require.Len(t, fixture.Objects(ctx, t, stack.S3, harness.Bucket, "", f.Name), 1)
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
func deleteAtEnd(t *testing.T) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := stack.Tierd.ListCollections(ctx)
		if err != nil {
			t.Errorf("list collections after the case: %v", err)
			return
		}
		for _, col := range list {
			if err := stack.Tierd.DeleteCollection(ctx, col.Name); err != nil {
				t.Errorf("delete %s after the case: %v", col.Name, err)
			}
		}
		runWorkerErr(ctx, t)
	})
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

func runWorkerErr(ctx context.Context, t *testing.T) {
	if _, err := stack.Tierd.Worker(ctx, "run_once"); err != nil {
		t.Errorf("worker cycle after the case: %v", err)
	}
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
		require.Empty(t, fixture.Objects(ctx, t, stack.S3, harness.Bucket, "", n), "objects of %s in MinIO", n)
		require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, harness.Bucket, "", n), "incomplete uploads of %s", n)
	}
}
