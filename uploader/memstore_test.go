package uploader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func put(t *testing.T, s ObjectStore, key string, data []byte) ObjectInfo {
	t.Helper()
	info, err := s.PutObject(context.Background(), key, bytes.NewReader(data), int64(len(data)), PutOptions{})
	require.NoError(t, err)
	return info
}

func TestMemStoreObjects(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	info, err := s.PutObject(ctx, "a/b/1", strings.NewReader("hello"), 5, PutOptions{Metadata: map[string]string{"X-Sum": "abc"}})
	require.NoError(t, err)
	assert.Equal(t, int64(5), info.Size)
	assert.Equal(t, "5d41402abc4b2a76b9719d911017c592", info.ETag)
	assert.Equal(t, map[string]string{"x-sum": "abc"}, info.Metadata)
	put(t, s, "a/b/2", []byte("world!"))
	put(t, s, "a/c/1", []byte("x"))

	rc, got, err := s.GetObject(ctx, "a/b/1")
	require.NoError(t, err)
	assert.Equal(t, []byte("hello"), readAll(t, rc))
	assert.Equal(t, "abc", got.Metadata["x-sum"])

	rr, err := s.GetObjectRange(ctx, "a/b/2", 2, 3)
	require.NoError(t, err)
	assert.Equal(t, []byte("rld"), readAll(t, rr))
	rr, err = s.GetObjectRange(ctx, "a/b/2", 4, 100) // cut at the end, like S3
	require.NoError(t, err)
	assert.Equal(t, []byte("d!"), readAll(t, rr))
	_, err = s.GetObjectRange(ctx, "a/b/2", 6, 1)
	require.Error(t, err)
	assert.Equal(t, CodeBadRequest, CodeOf(err))

	list, err := s.ListObjects(ctx, "a/b/")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "a/b/1", list[0].Key)
	assert.Equal(t, "a/b/2", list[1].Key)

	require.NoError(t, s.DeleteObject(ctx, "a/b/1"))
	require.NoError(t, s.DeleteObject(ctx, "a/b/1"), "deleting a missing key is not an error")
	_, err = s.StatObject(ctx, "a/b/1")
	require.ErrorIs(t, err, ErrNotFound)
	_, _, err = s.GetObject(ctx, "a/b/1")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, err, ErrPermanent)
	var se *StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 404, se.Status)
	assert.Equal(t, "GetObject", se.Op)
}

func TestMemStoreInvalidInput(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	tests := []struct {
		name string
		call func() error
	}{
		{"empty key", func() error { _, err := s.PutObject(ctx, "", nil, 0, PutOptions{}); return err }},
		{"negative size", func() error { _, err := s.PutObject(ctx, "k", nil, -1, PutOptions{}); return err }},
		{"bad range", func() error { _, err := s.GetObjectRange(ctx, "k", -1, 3); return err }},
		{"part zero", func() error { _, err := s.UploadPart(ctx, "k", "id", 0, nil, 0, PartOptions{}); return err }},
		{"no parts", func() error { _, err := s.CompleteMultipart(ctx, "k", "id", nil); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, ErrInvalidArgument)
			assert.Equal(t, CodeInvalidArgument, CodeOf(err))
		})
	}
}

func TestMemStoreShortBody(t *testing.T) {
	s := NewMemStore()
	_, err := s.PutObject(context.Background(), "k", strings.NewReader("abc"), 10, PutOptions{})
	require.Error(t, err)
	assert.Equal(t, CodeTruncated, CodeOf(err))
	assert.Equal(t, 0, s.Len(), "a short body stores nothing")
}

func TestMemStoreMultipart(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(WithMinPartSize(4))
	id, err := s.InitiateMultipart(ctx, "big", PutOptions{Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)
	p2, err := s.UploadPart(ctx, "big", id, 2, strings.NewReader("EFG"), 3, PartOptions{})
	require.NoError(t, err)
	p1, err := s.UploadPart(ctx, "big", id, 1, strings.NewReader("ABCD"), 4, PartOptions{})
	require.NoError(t, err)

	_, err = s.StatObject(ctx, "big")
	require.ErrorIs(t, err, ErrNotFound, "not visible before complete")
	ups, err := s.ListMultipartUploads(ctx, "b")
	require.NoError(t, err)
	require.Len(t, ups, 1)
	assert.Equal(t, id, ups[0].UploadID)

	_, err = s.CompleteMultipart(ctx, "big", id, []Part{p2, p1})
	assert.Equal(t, CodeBadRequest, CodeOf(err), "parts out of order")
	_, err = s.CompleteMultipart(ctx, "big", id, []Part{{Number: 1, ETag: "nope"}, p2})
	assert.Equal(t, CodeBadRequest, CodeOf(err), "wrong etag")

	info, err := s.CompleteMultipart(ctx, "big", id, []Part{p1, p2})
	require.NoError(t, err)
	assert.Equal(t, int64(7), info.Size)
	assert.True(t, strings.HasSuffix(info.ETag, "-2"), info.ETag)
	data, ok := s.ObjectData("big")
	require.True(t, ok)
	assert.Equal(t, "ABCDEFG", string(data))
	assert.Equal(t, "v", info.Metadata["k"])
	ups, err = s.ListMultipartUploads(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, ups)
}

func TestMemStoreMultipartTooSmall(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore() // S3's 5 MiB minimum
	id, err := s.InitiateMultipart(ctx, "k", PutOptions{})
	require.NoError(t, err)
	p1, err := s.UploadPart(ctx, "k", id, 1, strings.NewReader("tiny"), 4, PartOptions{})
	require.NoError(t, err)
	p2, err := s.UploadPart(ctx, "k", id, 2, strings.NewReader("tiny"), 4, PartOptions{})
	require.NoError(t, err)
	_, err = s.CompleteMultipart(ctx, "k", id, []Part{p1, p2})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "EntityTooSmall")
}

func TestMemStoreAbort(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	id, err := s.InitiateMultipart(ctx, "k", PutOptions{})
	require.NoError(t, err)
	p, err := s.UploadPart(ctx, "k", id, 1, strings.NewReader("abc"), 3, PartOptions{})
	require.NoError(t, err)
	require.NoError(t, s.AbortMultipart(ctx, "k", id))
	ups, err := s.ListMultipartUploads(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, ups)
	_, err = s.CompleteMultipart(ctx, "k", id, []Part{p})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.UploadPart(ctx, "k", id, 2, strings.NewReader("abc"), 3, PartOptions{})
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, s.AbortMultipart(ctx, "k", id), ErrNotFound)
	assert.Equal(t, 0, s.Len())
}

func TestMemStoreCancelledContext(t *testing.T) {
	s := NewMemStore(WithLatency(Latency{Base: time.Hour}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.PutObject(ctx, "k", strings.NewReader("x"), 1, PutOptions{})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, CodeCanceled, CodeOf(err))
	assert.False(t, IsRetryable(err))
}

func TestMemStoreLatencyHonoursDeadline(t *testing.T) {
	s := NewMemStore(WithLatency(Latency{Base: time.Hour}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := s.StatObject(ctx, "k")
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded))
	assert.Equal(t, CodeTimeout, CodeOf(err), "a deadline is a timeout, a cancel is not")
}
