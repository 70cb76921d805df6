package s3fault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testAccessKey = "tierchaos"
	testSecretKey = "tierchaos-secret"
)

// newMinio returns a minio-go client for endpoint (host:port) that tries each
// request at most maxRetries times.
func newMinio(t *testing.T, endpoint string, maxRetries int) *minio.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := minio.New(endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(testAccessKey, testSecretKey, ""),
		Secure:     false,
		Region:     "us-east-1",
		Transport:  tr,
		MaxRetries: maxRetries,
	})
	require.NoError(t, err)
	return c
}

func minioCode(err error) string { return minio.ToErrorResponse(err).Code }

// TestMinioClientThroughProxy runs the operations tierd uses through the
// proxy with no rules: everything works and is classified.
func TestMinioClientThroughProxy(t *testing.T) {
	s := newTestStack(t)
	mc := newMinio(t, s.proxyURL.Host, 1)
	ctx := t.Context()
	data := randomBytes(6, 1<<20)

	require.NoError(t, mc.MakeBucket(ctx, "tier", minio.MakeBucketOptions{}))
	ok, err := mc.BucketExists(ctx, "tier")
	require.NoError(t, err)
	assert.True(t, ok)
	_, err = mc.PutObject(ctx, "tier", "collections/c1/snap-1.parquet", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	require.NoError(t, err)
	info, err := mc.StatObject(ctx, "tier", "collections/c1/snap-1.parquet", minio.StatObjectOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(len(data)), info.Size)
	assert.Equal(t, data, readObject(t, mc, "tier", "collections/c1/snap-1.parquet"))
	var keys []string
	for o := range mc.ListObjects(ctx, "tier", minio.ListObjectsOptions{Prefix: "collections/", Recursive: true}) {
		require.NoError(t, o.Err)
		keys = append(keys, o.Key)
	}
	assert.Equal(t, []string{"collections/c1/snap-1.parquet"}, keys)
	require.NoError(t, mc.RemoveObject(ctx, "tier", "collections/c1/snap-1.parquet", minio.RemoveObjectOptions{}))

	for _, r := range s.s3.seen() {
		assert.Equal(t, s.proxyURL.Host, r.Host, "%s %s: the signed Host reaches the upstream", r.Method, r.Path)
		assert.Contains(t, signedHeaders(r.Header.Get("Authorization")), "host", "minio-go signs the Host header")
	}
	st := s.stats(t)
	for _, op := range []Op{OpMakeBucket, OpHeadBucket, OpPutObject, OpHeadObject, OpGetObject, OpListObjectsV2, OpDeleteObject} {
		assert.Equal(t, OpStats{Seen: 1, Forwarded: 1}, st.Op(op), op)
	}
	assert.Len(t, st.Ops, 7, "nothing classified as anything else: %v", st.Ops)
}

// signedHeaders extracts the SignedHeaders list of a SigV4 Authorization
// header.
func signedHeaders(auth string) []string {
	for _, part := range strings.Split(auth, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "SignedHeaders="); ok {
			return strings.Split(v, ";")
		}
	}
	return nil
}

func readObject(t *testing.T, mc *minio.Client, bucket, key string) []byte {
	t.Helper()
	b, err := readObjectErr(t.Context(), mc, bucket, key)
	require.NoError(t, err)
	return b
}

func readObjectErr(ctx context.Context, mc *minio.Client, bucket, key string) ([]byte, error) {
	obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

func TestMinioSlowDown(t *testing.T) {
	s := newTestStack(t)
	s.s3.putObject("tier", "x", nil)
	ctx := t.Context()
	data := []byte("snapshot bytes")
	id := s.addRule(t, Rule{Ops: []Op{OpPutObject}, Key: "collections/*", Trigger: Next(3), Action: SlowDown(time.Second)})

	// A client that does not retry sees S3's SlowDown error.
	once := newMinio(t, s.proxyURL.Host, 1)
	_, err := once.PutObject(ctx, "tier", "collections/a", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	require.Error(t, err)
	resp := minio.ToErrorResponse(err)
	assert.Equal(t, "SlowDown", resp.Code)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "Please reduce your request rate.", resp.Message)

	// A retrying client gets through after the remaining two 503s.
	retrying := newMinio(t, s.proxyURL.Host, 5)
	_, err = retrying.PutObject(ctx, "tier", "collections/a", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	require.NoError(t, err)
	got, ok := s.s3.object("tier", "collections/a")
	require.True(t, ok)
	assert.Equal(t, data, got)

	st := s.stats(t)
	assert.Equal(t, OpStats{Seen: 4, Forwarded: 1, Injected: map[ActionKind]int64{ActionSlowDown: 3}}, st.Op(OpPutObject),
		"1 failed call + 1 call that needed 2 retries")
	rs, _ := st.Rule(id)
	assert.Equal(t, int64(3), rs.Injected)

	// Used up: the next put goes straight through.
	_, err = once.PutObject(ctx, "tier", "collections/b", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	require.NoError(t, err)
}

func TestMinioErrors(t *testing.T) {
	tests := []struct {
		name     string
		action   Action
		wantCode string
	}{
		{"internal error", InternalError(), "InternalError"},
		{"access denied", S3Error(http.StatusForbidden, "AccessDenied", "Access Denied."), "AccessDenied"},
		{"no such key", S3Error(http.StatusNotFound, "NoSuchKey", ""), "NoSuchKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStack(t)
			s.s3.putObject("tier", "k", []byte("v"))
			mc := newMinio(t, s.proxyURL.Host, 1)
			id := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Bucket: "tier", Trigger: Always(), Action: tt.action})
			_, err := readObjectErr(t.Context(), mc, "tier", "k")
			require.Error(t, err)
			assert.Equal(t, tt.wantCode, minioCode(err))

			require.NoError(t, s.ctl.DeleteRule(t.Context(), id))
			assert.Equal(t, []byte("v"), readObject(t, mc, "tier", "k"), "gone after the rule is deleted")
			assert.Equal(t, int64(1), s.stats(t).Op(OpGetObject).Injected[tt.action.Kind])
		})
	}
}

func TestMinioTruncatedGet(t *testing.T) {
	s := newTestStack(t)
	data := randomBytes(7, 256<<10)
	s.s3.putObject("tier", "snap", data)
	mc := newMinio(t, s.proxyURL.Host, 1)
	s.addRule(t, Rule{Ops: []Op{OpGetObject}, Key: "snap", Trigger: Next(1), Action: TruncateBody(100 << 10)})

	got, err := readObjectErr(t.Context(), mc, "tier", "snap")
	require.Error(t, err, "the client notices the short body")
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Less(t, len(got), len(data))
	assert.Equal(t, data[:len(got)], got, "what arrived is an unaltered prefix")

	assert.Equal(t, data, readObject(t, mc, "tier", "snap"), "gone once the rule is used up")
	st := s.stats(t)
	assert.Equal(t, int64(1), st.Injected(ActionTruncateBody))
	assert.Equal(t, int64(2), st.Op(OpGetObject).Seen)
}

func TestMinioBitFlippedGet(t *testing.T) {
	s := newTestStack(t)
	data := randomBytes(8, 512<<10)
	want := sha256.Sum256(data)
	s.s3.putObject("tier", "snap", data)
	mc := newMinio(t, s.proxyURL.Host, 1)
	id := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Seed: SeedOf(3), Action: FlipBits(1)})

	got := readObject(t, mc, "tier", "snap")
	require.Len(t, got, len(data), "same length: only a checksum can tell")
	assert.NotEqual(t, want, sha256.Sum256(got), "the checksum detects the flipped bit")
	assert.Equal(t, 1, bitDiff(data, got))

	require.NoError(t, s.ctl.DeleteRule(t.Context(), id))
	assert.Equal(t, want, sha256.Sum256(readObject(t, mc, "tier", "snap")), "clean after the rule is deleted")
}

func TestMinioCutPut(t *testing.T) {
	s := newTestStack(t)
	s.s3.putObject("tier", "x", nil)
	mc := newMinio(t, s.proxyURL.Host, 1)
	ctx := t.Context()
	data := randomBytes(9, 2<<20)
	s.addRule(t, Rule{Ops: []Op{OpPutObject}, Trigger: Next(1), Action: CutRequestBody(256 << 10)})

	_, err := mc.PutObject(ctx, "tier", "snap", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	require.Error(t, err)
	require.Eventually(t, func() bool { return len(s.s3.seen()) == 1 }, 5*time.Second, 5*time.Millisecond)
	_, ok := s.s3.object("tier", "snap")
	assert.False(t, ok, "the cut upload left nothing upstream")
	assert.Equal(t, int64(256<<10), s.s3.seen()[0].BodyBytes)

	_, err = mc.PutObject(ctx, "tier", "snap", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	require.NoError(t, err, "gone once the rule is used up")
	got, ok := s.s3.object("tier", "snap")
	require.True(t, ok)
	assert.Equal(t, data, got)
	assert.Equal(t, OpStats{Seen: 2, Forwarded: 2, Injected: map[ActionKind]int64{ActionCutRequestBody: 1}}, s.stats(t).Op(OpPutObject))
}

func TestMinioCutUploadPart(t *testing.T) {
	s := newTestStack(t)
	s.s3.putObject("tier", "x", nil)
	mc := newMinio(t, s.proxyURL.Host, 1)
	ctx := t.Context()
	data := randomBytes(10, 6<<20)
	s.addRule(t, Rule{Ops: []Op{OpUploadPart}, After: 1, Trigger: Next(1), Action: CutRequestBody(1 << 20)})

	_, err := mc.PutObject(ctx, "tier", "big", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{PartSize: 5 << 20, NumThreads: 1})
	require.Error(t, err)
	_, ok := s.s3.object("tier", "big")
	assert.False(t, ok, "no object from a multipart upload with a cut part")
	assert.Zero(t, s.s3.openUploads(), "the client aborted the upload")
	st := s.stats(t)
	assert.Equal(t, int64(1), st.Op(OpCreateMultipartUpload).Seen)
	assert.Equal(t, int64(2), st.Op(OpUploadPart).Seen)
	assert.Equal(t, int64(1), st.Op(OpUploadPart).Injected[ActionCutRequestBody])
	assert.Equal(t, int64(1), st.Op(OpAbortMultipartUpload).Seen)
	assert.Zero(t, st.Op(OpCompleteMultipartUpload).Seen)

	_, err = mc.PutObject(ctx, "tier", "big", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{PartSize: 5 << 20, NumThreads: 1})
	require.NoError(t, err)
	got, ok := s.s3.object("tier", "big")
	require.True(t, ok)
	assert.Equal(t, data, got)
	assert.Equal(t, int64(1), s.stats(t).Op(OpCompleteMultipartUpload).Seen)
	assert.True(t, strings.HasPrefix(s.s3.seen()[1].Header.Get("X-Amz-Content-Sha256"), "STREAMING-"),
		"parts went as aws-chunked bodies, forwarded untouched")
}
