package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func md5Sum(b []byte) []byte { s := md5.Sum(b); return s[:] }

// TestMemStoreChecksContentMD5: like S3, a body whose MD5 differs from
// its Content-MD5 is refused with BadDigest and a digest of the wrong
// length with InvalidDigest (both checksum_mismatch); nothing is stored.
func TestMemStoreChecksContentMD5(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore(WithMinPartSize(1))
	data := []byte("hello")
	_, err := s.PutObject(ctx, "k", bytes.NewReader(data), 5, PutOptions{ContentMD5: md5Sum([]byte("hellO"))})
	require.ErrorIs(t, err, ErrChecksumMismatch)
	_, err = s.PutObject(ctx, "k", bytes.NewReader(data), 5, PutOptions{ContentMD5: []byte{1, 2, 3}})
	require.ErrorIs(t, err, ErrChecksumMismatch)
	assert.Contains(t, err.Error(), "InvalidDigest")
	_, ok := s.ObjectData("k")
	require.False(t, ok)
	_, err = s.PutObject(ctx, "k", bytes.NewReader(data), 5, PutOptions{ContentMD5: md5Sum(data)})
	require.NoError(t, err)

	id, err := s.InitiateMultipart(ctx, "m", PutOptions{})
	require.NoError(t, err)
	_, err = s.UploadPart(ctx, "m", id, 1, bytes.NewReader(data), 5, PartOptions{ContentMD5: md5Sum([]byte("x"))})
	require.ErrorIs(t, err, ErrChecksumMismatch)
	p, err := s.UploadPart(ctx, "m", id, 1, bytes.NewReader(data), 5, PartOptions{ContentMD5: md5Sum(data)})
	require.NoError(t, err)
	_, err = s.CompleteMultipart(ctx, "m", id, []Part{p})
	require.NoError(t, err)
}

// recordingStore records the Content-MD5 of every PUT and part, and can
// flip a bit of every body on its way to the store below.
type recordingStore struct {
	ObjectStore
	mu      sync.Mutex
	digests map[string][]byte // "put" or "part N" -> ContentMD5
	bodies  map[string][]byte // the same -> bytes sent
	corrupt bool
}

func (r *recordingStore) record(name string, sum []byte, data io.Reader, size int64) io.Reader {
	b, _ := io.ReadAll(io.LimitReader(data, size))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.digests[name], r.bodies[name] = sum, b
	if r.corrupt {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x40
	}
	return bytes.NewReader(b)
}

func (r *recordingStore) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	return r.ObjectStore.PutObject(ctx, key, r.record("put", opts.ContentMD5, data, size), size, opts)
}

func (r *recordingStore) UploadPart(ctx context.Context, key, uploadID string, number int, data io.Reader, size int64, opts PartOptions) (Part, error) {
	name := "part " + string(rune('0'+number))
	return r.ObjectStore.UploadPart(ctx, key, uploadID, number, r.record(name, opts.ContentMD5, data, size), size, opts)
}

// TestParallelUploaderSendsContentMD5: with ContentMD5 on, every request
// body (a single PUT, every part) carries the MD5 of exactly its bytes, so
// a body changed on the way is refused: the upload fails as a checksum
// mismatch, is not retried into success, and leaves no object and no
// incomplete upload.
func TestParallelUploaderSendsContentMD5(t *testing.T) {
	for _, size := range []int{1000, 5<<20 + 17} {
		name := "single PUT"
		if size > 1<<20 {
			name = "multipart"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			mem := NewMemStore()
			rec := &recordingStore{ObjectStore: mem, digests: map[string][]byte{}, bodies: map[string][]byte{}}
			cfg := DefaultParallelConfig()
			cfg.PartSize, cfg.MultipartThreshold, cfg.ContentMD5, cfg.BackoffBase = 5<<20, 5<<20, true, time.Millisecond
			up, err := NewParallelUploader(rec, cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			require.NoError(t, err)
			data := make([]byte, size)
			r := rand.New(rand.NewPCG(3, 4))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			res := up.Upload(ctx, BytesItem("k", data))
			require.NoError(t, res.Err)
			require.NotEmpty(t, rec.digests)
			for req, sum := range rec.digests {
				assert.Equal(t, md5Sum(rec.bodies[req]), sum, "%s carries the MD5 of its body", req)
			}
			rec.corrupt = true
			res = up.Upload(ctx, BytesItem("k2", data))
			require.ErrorIs(t, res.Err, ErrChecksumMismatch)
			_, ok := mem.ObjectData("k2")
			require.False(t, ok)
			ups, err := mem.ListMultipartUploads(ctx, "")
			require.NoError(t, err)
			require.Empty(t, ups)
		})
	}
}

// TestMinIOStoreSendsContentMD5: the MinIO client sends the digest as the
// Content-MD5 header of a PUT and of a part.
func TestMinIOStoreSendsContentMD5(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.URL.Query().Get("partNumber")] = r.Header.Get("Content-Md5")
		mu.Unlock()
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	}))
	t.Cleanup(srv.Close)
	s, err := NewMinIOStore(MinIOConfig{Endpoint: strings.TrimPrefix(srv.URL, "http://"), AccessKey: "a", SecretKey: "s", Bucket: "bkt"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	body := []byte("some bytes")
	want := base64.StdEncoding.EncodeToString(md5Sum(body))
	_, err = s.PutObject(ctx, "k", bytes.NewReader(body), int64(len(body)), PutOptions{ContentMD5: md5Sum(body)})
	require.NoError(t, err)
	_, err = s.UploadPart(ctx, "k", "upload-1", 3, bytes.NewReader(body), int64(len(body)), PartOptions{ContentMD5: md5Sum(body)})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, got[""], "PUT")
	assert.Equal(t, want, got["3"], "part 3")
}

// TestNoSuchBucketIsItsOwnCode: NoSuchBucket is not a missing key.
func TestNoSuchBucketIsItsOwnCode(t *testing.T) {
	s, _ := fakeS3(t, 404, "NoSuchBucket", "")
	_, _, err := s.GetObject(context.Background(), "k")
	require.ErrorIs(t, err, ErrNoSuchBucket)
	require.NotErrorIs(t, err, ErrNotFound)
	assert.Equal(t, CodeNoSuchBucket, CodeOf(err))
	assert.False(t, IsRetryable(err))
}
