package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/internal/badobjects"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/uploader"
)

// withObjects makes an opening use objs as its object store.
func withObjects(t *testing.T, objs uploader.ObjectStore) func(*store.Options) {
	return func(o *store.Options) {
		cs, err := cold.New(objs, cold.Options{OpTimeout: 2 * time.Second, MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2}, discard())
		require.NoError(t, err)
		o.Cold = cs
	}
}

// TestDemotionKeepsDataWhenBytesChangeInTransit: a demotion to cold whose
// upload arrives changed fails, and the collection stays hot with all its
// vectors; once the link is sound the demotion works and the content
// survives the round trip. Regression: the changed bytes were stored, the
// size and metadata check passed, the collection was flipped to cold and
// its only good copy dropped.
func TestDemotionKeepsDataWhenBytesChangeInTransit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	tr := badobjects.NewTransit(f.objs)
	s := f.open(t, withObjects(t, tr))
	want := setup(t, s, "t", api.MetricCosine)
	tr.Arm()
	_, err := s.SetTier(ctx, "t", api.TierCold)
	require.Error(t, err)
	require.Equal(t, api.CodeStorageUnavailable, api.CodeOf(err))
	c, err := s.Get(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, api.TierHot, c.Tier)
	requireContent(t, s, "t", api.MetricCosine, want, dim)
	require.Empty(t, objectKeys(t, f.objs, "collections/"))
	tr.Disarm()
	_, err = s.SetTier(ctx, "t", api.TierCold)
	require.NoError(t, err)
	_, err = s.SetTier(ctx, "t", api.TierHot)
	require.NoError(t, err)
	requireContent(t, s, "t", api.MetricCosine, want, dim)
}

// TestMissingBucketIsNotDataCorrupted: a promotion that finds the bucket
// gone answers bucket_not_found, not data_corrupted, and the collection
// stays cold. Regression: NoSuchBucket was taken for a missing object.
func TestMissingBucketIsNotDataCorrupted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	setup(t, s, "nb", api.MetricL2)
	_, err := s.SetTier(ctx, "nb", api.TierCold)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	gone, stop, err := badobjects.NoBucket()
	require.NoError(t, err)
	t.Cleanup(stop)
	s = f.open(t, withObjects(t, gone))
	_, err = s.SetTier(ctx, "nb", api.TierHot)
	require.Error(t, err)
	require.Equal(t, api.CodeBucketNotFound, api.CodeOf(err), "%v", err)
	c, err := s.Get(ctx, "nb")
	require.NoError(t, err)
	require.Equal(t, api.TierCold, c.Tier)
}

// TestDownloadReadsNoMoreThanTheSnapshotSize: when the cold object is far
// larger than the manifest says, the promotion fails with data_corrupted
// after reading at most the expected size (plus one byte). Regression: the
// whole object was read into memory first.
func TestDownloadReadsNoMoreThanTheSnapshotSize(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	counting := badobjects.NewCounting(f.objs)
	s := f.open(t, withObjects(t, counting))
	setup(t, s, "big", api.MetricL2)
	c, err := s.SetTier(ctx, "big", api.TierCold)
	require.NoError(t, err)
	info, err := f.objs.StatObject(ctx, c.Object)
	require.NoError(t, err)
	huge := make([]byte, 8<<20)
	_, _ = rand.Read(huge)
	_, err = f.objs.PutObject(ctx, c.Object, bytes.NewReader(huge), int64(len(huge)), uploader.PutOptions{Metadata: info.Metadata})
	require.NoError(t, err)
	_, err = s.SetTier(ctx, "big", api.TierHot)
	require.Equal(t, api.CodeDataCorrupted, api.CodeOf(err), "%v", err)
	require.LessOrEqual(t, counting.BytesRead(), info.Size+1, "bytes read of an object of %d bytes", info.Size)
}
