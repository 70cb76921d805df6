package uploader

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// storeContract checks the S3 behaviour the uploaders and tierd rely on.
// It runs against the MemStore here and against MinIO in the e2e tests,
// so that the in-memory store cannot drift from the real one. Keys live
// under prefix, which must be empty of objects and uploads.
func storeContract(t *testing.T, s ObjectStore, prefix string) {
	ctx := context.Background()
	k := func(name string) string { return prefix + "/" + name }

	t.Run("put get stat range list delete", func(t *testing.T) {
		info, err := s.PutObject(ctx, k("obj/a"), strings.NewReader("hello world"), 11,
			PutOptions{Metadata: map[string]string{"Xxh3": "abc"}, ContentType: "text/plain"})
		require.NoError(t, err)
		assert.Equal(t, int64(11), info.Size)
		assert.Equal(t, "5eb63bbbe01eeed093cb22bb8f5acdc3", info.ETag)
		put(t, s, k("obj/b"), []byte("second"))
		put(t, s, k("other/c"), []byte("third"))

		rc, gi, err := s.GetObject(ctx, k("obj/a"))
		require.NoError(t, err)
		assert.Equal(t, "hello world", string(readAll(t, rc)))
		assert.Equal(t, "abc", gi.Metadata["xxh3"], "metadata keys come back lower-cased")
		st, err := s.StatObject(ctx, k("obj/a"))
		require.NoError(t, err)
		assert.Equal(t, int64(11), st.Size)
		assert.Equal(t, info.ETag, st.ETag)

		rr, err := s.GetObjectRange(ctx, k("obj/a"), 6, 5)
		require.NoError(t, err)
		assert.Equal(t, "world", string(readAll(t, rr)))
		rr, err = s.GetObjectRange(ctx, k("obj/a"), 6, 100)
		require.NoError(t, err)
		assert.Equal(t, "world", string(readAll(t, rr)), "a range past the end is cut")
		_, err = s.GetObjectRange(ctx, k("obj/a"), 11, 1)
		assert.Equal(t, CodeBadRequest, CodeOf(err), "a range starting at the end is 416")

		list, err := s.ListObjects(ctx, k("obj/"))
		require.NoError(t, err)
		require.Len(t, list, 2)
		assert.Equal(t, k("obj/a"), list[0].Key)
		assert.Equal(t, k("obj/b"), list[1].Key)
		assert.Equal(t, int64(6), list[1].Size)

		put(t, s, k("obj/a"), []byte("replaced"))
		rc, _, err = s.GetObject(ctx, k("obj/a"))
		require.NoError(t, err)
		assert.Equal(t, "replaced", string(readAll(t, rc)))

		require.NoError(t, s.DeleteObject(ctx, k("obj/a")))
		require.NoError(t, s.DeleteObject(ctx, k("obj/a")), "deleting a missing key succeeds")
		_, err = s.StatObject(ctx, k("obj/a"))
		assert.ErrorIs(t, err, ErrNotFound)
		_, _, err = s.GetObject(ctx, k("obj/a"))
		assert.ErrorIs(t, err, ErrNotFound)
		_, err = s.GetObjectRange(ctx, k("obj/a"), 0, 1)
		assert.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("multipart lifecycle", func(t *testing.T) {
		key := k("mp/big")
		id, err := s.InitiateMultipart(ctx, key, PutOptions{Metadata: map[string]string{"m": "1"}})
		require.NoError(t, err)
		p1data := bytes.Repeat([]byte{'a'}, MinPartSize)
		p1, err := s.UploadPart(ctx, key, id, 1, bytes.NewReader(p1data), int64(len(p1data)), PartOptions{})
		require.NoError(t, err)
		p2, err := s.UploadPart(ctx, key, id, 2, strings.NewReader("tail"), 4, PartOptions{})
		require.NoError(t, err)

		_, err = s.StatObject(ctx, key)
		assert.ErrorIs(t, err, ErrNotFound, "invisible before complete")
		ups, err := s.ListMultipartUploads(ctx, k("mp/"))
		require.NoError(t, err)
		require.Len(t, ups, 1)
		assert.Equal(t, key, ups[0].Key)
		assert.Equal(t, id, ups[0].UploadID)

		info, err := s.CompleteMultipart(ctx, key, id, []Part{p1, p2})
		require.NoError(t, err)
		assert.Equal(t, multipartETag([]Part{p1, p2}), info.ETag)
		st, err := s.StatObject(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, int64(MinPartSize+4), st.Size)
		assert.Equal(t, info.ETag, st.ETag)
		assert.Equal(t, "1", st.Metadata["m"])
		rr, err := s.GetObjectRange(ctx, key, MinPartSize-2, 6)
		require.NoError(t, err)
		assert.Equal(t, "aatail", string(readAll(t, rr)))
		ups, err = s.ListMultipartUploads(ctx, k("mp/"))
		require.NoError(t, err)
		assert.Empty(t, ups)
	})

	t.Run("abort leaves nothing", func(t *testing.T) {
		key := k("ab/obj")
		id, err := s.InitiateMultipart(ctx, key, PutOptions{})
		require.NoError(t, err)
		p, err := s.UploadPart(ctx, key, id, 1, strings.NewReader("abc"), 3, PartOptions{})
		require.NoError(t, err)
		require.NoError(t, s.AbortMultipart(ctx, key, id))
		ups, err := s.ListMultipartUploads(ctx, k("ab/"))
		require.NoError(t, err)
		assert.Empty(t, ups)
		_, err = s.CompleteMultipart(ctx, key, id, []Part{p})
		assert.ErrorIs(t, err, ErrNotFound)
		_, err = s.StatObject(ctx, key)
		assert.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("small non-last part rejected", func(t *testing.T) {
		key := k("small/obj")
		id, err := s.InitiateMultipart(ctx, key, PutOptions{})
		require.NoError(t, err)
		p1, err := s.UploadPart(ctx, key, id, 1, strings.NewReader("tiny"), 4, PartOptions{})
		require.NoError(t, err)
		p2, err := s.UploadPart(ctx, key, id, 2, strings.NewReader("tiny"), 4, PartOptions{})
		require.NoError(t, err)
		_, err = s.CompleteMultipart(ctx, key, id, []Part{p1, p2})
		require.Error(t, err)
		assert.Equal(t, CodeBadRequest, CodeOf(err))
		assert.False(t, IsRetryable(err))
		require.NoError(t, s.AbortMultipart(ctx, key, id))
	})
}

func TestMemStoreContract(t *testing.T) {
	storeContract(t, NewMemStore(), "contract")
}
