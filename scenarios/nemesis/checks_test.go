//go:build e2e

package nemesis

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/nemesis"
	"github.com/tierchaos/tierchaos/system/api"
)

// TestOrphanCheckFails: the orphan check flags an object under a
// collection's prefix that neither its cold copy nor a snapshot references,
// and an incomplete multipart upload there, and passes once they are gone.
func TestOrphanCheckFails(t *testing.T) {
	stack.NewCase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "orphan-check"
	_, err := stack.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Tierd.DeleteCollection(context.Background(), name) })
	_, err = stack.Tierd.Insert(ctx, name, []api.Vector{{ID: "a", Values: []float32{1, 2}}})
	require.NoError(t, err)
	_, err = stack.Tierd.CreateSnapshot(ctx, name)
	require.NoError(t, err)
	require.Empty(t, nemesis.Orphans(ctx, stack, []string{name}), "a snapshot tierd references is no orphan")

	stray := "collections/" + name + "/snapshots/stray.parquet"
	_, err = stack.S3.PutObject(ctx, tierd.Bucket, stray, bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
	require.NoError(t, err)
	core := minio.Core{Client: stack.S3}
	upload, err := core.NewMultipartUpload(ctx, tierd.Bucket, "collections/"+name+"/snapshots/half.parquet", minio.PutObjectOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = core.AbortMultipartUpload(context.Background(), tierd.Bucket, "collections/"+name+"/snapshots/half.parquet", upload)
		_ = stack.S3.RemoveObject(context.Background(), tierd.Bucket, stray, minio.RemoveObjectOptions{})
	})
	got := nemesis.Orphans(ctx, stack, []string{name})
	var msgs []string
	for _, f := range got {
		assert.Equal(t, "orphans", f.Check)
		msgs = append(msgs, f.Message)
	}
	assert.Contains(t, msgs, "object "+stray+" (1 bytes) is referenced by no collection or snapshot")
	found := false
	for _, m := range msgs {
		found = found || bytes.Contains([]byte(m), []byte("incomplete upload "+upload))
	}
	assert.True(t, found, "the incomplete upload is flagged: %v", msgs)
}
