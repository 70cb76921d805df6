//go:build e2e

package tierd_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
)

// TestFixtureSeesIncompleteUploads makes sure the "no incomplete multipart
// upload left" assertion of the scenarios can fail: an upload initiated
// under a collection's prefix and never completed is listed, and an
// aborted one is not.
func TestFixtureSeesIncompleteUploads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := stack.NewCase(t)
	name := fixture.UniqueName(t, c.Rand)
	key := fixture.ObjectPrefix("", name) + "data/orphan.parquet"
	core := minio.Core{Client: stack.S3}

	require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", name))
	id, err := core.NewMultipartUpload(ctx, tierd.Bucket, key, minio.PutObjectOptions{})
	require.NoError(t, err)
	_, err = core.PutObjectPart(ctx, tierd.Bucket, key, id, 1, bytes.NewReader([]byte("part")), 4, minio.PutObjectPartOptions{})
	require.NoError(t, err)

	ups := fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", name)
	require.Len(t, ups, 1, "the incomplete upload under the collection's prefix is seen")
	require.Equal(t, key, ups[0].Key)
	require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", name+"-other"), "and only there")

	require.NoError(t, core.AbortMultipartUpload(ctx, tierd.Bucket, key, id))
	require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", name), "an aborted upload is gone")
}
