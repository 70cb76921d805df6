package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/uploader"
)

// exactKeyLister lists incomplete multipart uploads the way MinIO does:
// by exact object name only; a folder prefix lists nothing.
type exactKeyLister struct{ *uploader.MemStore }

func (e exactKeyLister) ListMultipartUploads(ctx context.Context, prefix string) ([]uploader.MultipartUpload, error) {
	ups, err := e.MemStore.ListMultipartUploads(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []uploader.MultipartUpload
	for _, u := range ups {
		if u.Key == prefix {
			out = append(out, u)
		}
	}
	return out, nil
}

// TestCrashedUploadIsAbortedByExactKey: tierd dies while a demotion's
// multipart upload is incomplete. After the restart, on an object store
// that lists incomplete uploads by exact key only (MinIO), the upload is
// aborted by the worker, because its key was recorded durably before the
// upload started. Regression: the key was only in memory and the sweep
// listed by prefix, which finds nothing on MinIO: the parts leaked.
func TestCrashedUploadIsAbortedByExactKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "cu", api.MetricL2)
	require.NoError(t, s.Close())
	s = f.open(t, func(o *store.Options) { o.Hook = crashAt(store.HookColdUploaded) })
	require.Equal(t, store.HookColdUploaded, runCrashing(func() { _, _ = s.SetTier(ctx, "cu", api.TierCold) }))
	require.NoError(t, s.Close())
	// The crash struck before CompleteMultipart: replace the stored object
	// by an incomplete upload of the same key, with one part.
	keys := objectKeys(t, f.objs, "collections/")
	require.Len(t, keys, 1)
	key := keys[0]
	require.NoError(t, f.objs.DeleteObject(ctx, key))
	id, err := f.objs.InitiateMultipart(ctx, key, uploader.PutOptions{})
	require.NoError(t, err)
	_, err = f.objs.UploadPart(ctx, key, id, 1, bytes.NewReader([]byte("part")), 4, uploader.PartOptions{})
	require.NoError(t, err)

	minio := exactKeyLister{f.objs}
	s = f.open(t, func(o *store.Options) {
		cs, err := cold.New(minio, cold.Options{OpTimeout: 2 * time.Second, MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2}, discard())
		require.NoError(t, err)
		o.Cold = cs
	})
	_, err = s.SweepOrphans(ctx)
	require.NoError(t, err)
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &cyc)
	require.Empty(t, cyc.Errors)
	require.Zero(t, incomplete(t, f.objs, "collections/"), "the crashed upload is aborted")
	require.Empty(t, objectKeys(t, f.objs, "collections/"))
	c, err := s.Get(ctx, "cu")
	require.NoError(t, err)
	require.Equal(t, api.TierHot, c.Tier)
	requireContent(t, s, "cu", api.MetricL2, want, dim)
	// Nothing is left to retry: a second cycle has nothing to do.
	var again api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &again)
	require.Empty(t, again.Errors)
}
