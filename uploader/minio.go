package uploader

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// MinIOConfig configures a MinIOStore.
type MinIOConfig struct {
	// Endpoint is host:port of the S3 endpoint, without scheme.
	Endpoint string
	// AccessKey is the static access key.
	AccessKey string
	// SecretKey is the static secret key.
	SecretKey string
	// Bucket is the bucket all keys live in.
	Bucket string
	// UseSSL selects https.
	UseSSL bool
	// Region is the bucket region; empty means "us-east-1", which also
	// stops minio-go from looking the region up with an extra request.
	Region string
	// Pool tunes the HTTP connection pool; zero fields take defaults.
	Pool PoolConfig
}

// MinIOStore is an ObjectStore on an S3-compatible endpoint through
// minio-go. minio-go's own retries are disabled (MaxRetries 1): every
// failure is returned at once, classified, and retried (or not) by the
// uploaders, so that retrying is decided in one place.
type MinIOStore struct {
	core      minio.Core
	bucket    string
	transport *http.Transport
}

var _ ObjectStore = (*MinIOStore)(nil)

// NewMinIOStore builds a MinIOStore. It does not contact the endpoint; use
// EnsureBucket to check connectivity and create the bucket.
func NewMinIOStore(cfg MinIOConfig) (*MinIOStore, error) {
	const op = "NewMinIOStore"
	if cfg.Endpoint == "" {
		return nil, &StoreError{Op: op, Code: CodeInvalidConfig, Err: errors.New("endpoint is empty")}
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, &StoreError{Op: op, Code: CodeInvalidConfig,
			Err: fmt.Errorf("endpoint %q must be host:port without a scheme (use UseSSL for https)", cfg.Endpoint)}
	}
	if cfg.Bucket == "" {
		return nil, &StoreError{Op: op, Code: CodeInvalidConfig, Err: errors.New("bucket is empty")}
	}
	if err := s3utils.CheckValidBucketName(cfg.Bucket); err != nil {
		return nil, &StoreError{Op: op, Code: CodeInvalidConfig, Err: fmt.Errorf("bucket %q: %w", cfg.Bucket, err)}
	}
	pool := cfg.Pool.withDefaults()
	if err := pool.Validate(); err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	tr := newTransport(pool, cfg.UseSSL)
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.UseSSL,
		Transport: &retryAfterTransport{next: tr},
		Region:    region,
		// Path-style requests: MinIO behind a proxy has no DNS for
		// virtual-host buckets.
		BucketLookup: minio.BucketLookupPath,
		// 1 means "one attempt": minio-go documents it as disabling retries.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, &StoreError{Op: op, Code: CodeInvalidConfig, Err: err}
	}
	return &MinIOStore{core: minio.Core{Client: client}, bucket: cfg.Bucket, transport: tr}, nil
}

// newTransport builds the tuned http.Transport for one S3 host.
func newTransport(p PoolConfig, secure bool) *http.Transport {
	tr := &http.Transport{
		Proxy: nil, // never route S3 traffic through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   p.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          p.MaxIdleConns,
		MaxIdleConnsPerHost:   p.MaxIdleConns,
		IdleConnTimeout:       p.IdleTimeout,
		ResponseHeaderTimeout: p.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   p.DialTimeout,
		ExpectContinueTimeout: time.Second,
		// Objects are opaque bytes; never let the transport gunzip them.
		DisableCompression: true,
	}
	if !secure {
		tr.TLSClientConfig = nil
	}
	return tr
}

// Bucket returns the bucket name.
func (s *MinIOStore) Bucket() string { return s.bucket }

// Client returns the underlying minio-go client (for tests and tools that
// need operations outside ObjectStore). It shares the tuned transport and
// has retries disabled.
func (s *MinIOStore) Client() *minio.Client { return s.core.Client }

// Close releases idle pooled connections.
func (s *MinIOStore) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// EnsureBucket creates the bucket if it does not exist. It is the first
// request a MinIOStore makes, so it doubles as a connectivity check.
func (s *MinIOStore) EnsureBucket(ctx context.Context) error {
	const op = "EnsureBucket"
	ctx, ra := captureRetryAfter(ctx)
	ok, err := s.core.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.wrap(op, "", err, ra)
	}
	if ok {
		return nil
	}
	err = s.core.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
	if err != nil {
		resp := minio.ToErrorResponse(err)
		if resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists" {
			return nil
		}
		return s.wrap(op, "", err, ra)
	}
	return nil
}

// PutObject implements ObjectStore with one PUT request.
func (s *MinIOStore) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	const op = "PutObject"
	if err := checkKeySize(op, key, size); err != nil {
		return ObjectInfo{}, err
	}
	ctx, ra := captureRetryAfter(ctx)
	info, err := s.core.PutObject(ctx, s.bucket, key, data, size, md5Base64(opts.ContentMD5), "", s.putOpts(opts))
	if err != nil {
		return ObjectInfo{}, s.wrap(op, key, err, ra)
	}
	return ObjectInfo{Key: key, Size: info.Size, ETag: info.ETag, LastModified: info.LastModified,
		Metadata: lowerKeys(opts.Metadata)}, nil
}

// GetObject implements ObjectStore. The request is made before it returns,
// so a missing key is reported here, not on the first Read.
func (s *MinIOStore) GetObject(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	const op = "GetObject"
	if err := checkKey(op, key); err != nil {
		return nil, ObjectInfo{}, err
	}
	ctx, ra := captureRetryAfter(ctx)
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, s.wrap(op, key, err, ra)
	}
	info := toObjectInfo(oi)
	return &sizedBody{op: op, key: key, rc: body, remaining: info.Size}, info, nil
}

// GetObjectRange implements ObjectStore with a ranged GET.
func (s *MinIOStore) GetObjectRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	const op = "GetObjectRange"
	if err := checkKey(op, key); err != nil {
		return nil, err
	}
	if offset < 0 || length <= 0 {
		return nil, invalidArg(op, key, "invalid range offset=%d length=%d", offset, length)
	}
	var gopts minio.GetObjectOptions
	if err := gopts.SetRange(offset, offset+length-1); err != nil {
		return nil, invalidArg(op, key, "invalid range offset=%d length=%d: %v", offset, length, err)
	}
	ctx, ra := captureRetryAfter(ctx)
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, key, gopts)
	if err != nil {
		return nil, s.wrap(op, key, err, ra)
	}
	want := length
	if oi.Size >= 0 && oi.Size < want {
		want = oi.Size
	}
	return &sizedBody{op: op, key: key, rc: body, remaining: want}, nil
}

// StatObject implements ObjectStore with a HEAD request.
func (s *MinIOStore) StatObject(ctx context.Context, key string) (ObjectInfo, error) {
	const op = "StatObject"
	if err := checkKey(op, key); err != nil {
		return ObjectInfo{}, err
	}
	ctx, ra := captureRetryAfter(ctx)
	oi, err := s.core.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.wrap(op, key, err, ra)
	}
	return toObjectInfo(oi), nil
}

// DeleteObject implements ObjectStore.
func (s *MinIOStore) DeleteObject(ctx context.Context, key string) error {
	const op = "DeleteObject"
	if err := checkKey(op, key); err != nil {
		return err
	}
	ctx, ra := captureRetryAfter(ctx)
	if err := s.core.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return s.wrap(op, key, err, ra)
	}
	return nil
}

// ListObjects implements ObjectStore.
func (s *MinIOStore) ListObjects(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	const op = "ListObjects"
	ctx, ra := captureRetryAfter(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []ObjectInfo
	for oi := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if oi.Err != nil {
			return nil, s.wrap(op, prefix, oi.Err, ra)
		}
		out = append(out, ObjectInfo{Key: oi.Key, Size: oi.Size, ETag: oi.ETag, LastModified: oi.LastModified})
	}
	return out, nil
}

// InitiateMultipart implements ObjectStore.
func (s *MinIOStore) InitiateMultipart(ctx context.Context, key string, opts PutOptions) (string, error) {
	const op = "InitiateMultipart"
	if err := checkKey(op, key); err != nil {
		return "", err
	}
	ctx, ra := captureRetryAfter(ctx)
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, key, s.putOpts(opts))
	if err != nil {
		return "", s.wrap(op, key, err, ra)
	}
	return id, nil
}

// UploadPart implements ObjectStore.
func (s *MinIOStore) UploadPart(ctx context.Context, key, uploadID string, number int, data io.Reader, size int64, opts PartOptions) (Part, error) {
	const op = "UploadPart"
	if err := checkPart(op, key, uploadID, number, size); err != nil {
		return Part{}, err
	}
	ctx, ra := captureRetryAfter(ctx)
	p, err := s.core.PutObjectPart(ctx, s.bucket, key, uploadID, number, data, size,
		minio.PutObjectPartOptions{Md5Base64: md5Base64(opts.ContentMD5)})
	if err != nil {
		return Part{}, s.wrap(op, key, err, ra)
	}
	return Part{Number: number, ETag: p.ETag, Size: size}, nil
}

// CompleteMultipart implements ObjectStore.
func (s *MinIOStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (ObjectInfo, error) {
	const op = "CompleteMultipart"
	if err := checkKey(op, key); err != nil {
		return ObjectInfo{}, err
	}
	if uploadID == "" || len(parts) == 0 {
		return ObjectInfo{}, invalidArg(op, key, "upload id and at least one part are required")
	}
	cps := make([]minio.CompletePart, len(parts))
	var size int64
	for i, p := range parts {
		cps[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag}
		size += p.Size
	}
	ctx, ra := captureRetryAfter(ctx)
	info, err := s.core.CompleteMultipartUpload(ctx, s.bucket, key, uploadID, cps, minio.PutObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.wrap(op, key, err, ra)
	}
	return ObjectInfo{Key: key, Size: size, ETag: info.ETag, LastModified: info.LastModified}, nil
}

// AbortMultipart implements ObjectStore. Aborting an upload that no longer
// exists returns an error matching ErrNotFound.
func (s *MinIOStore) AbortMultipart(ctx context.Context, key, uploadID string) error {
	const op = "AbortMultipart"
	if err := checkKey(op, key); err != nil {
		return err
	}
	ctx, ra := captureRetryAfter(ctx)
	if err := s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID); err != nil {
		return s.wrap(op, key, err, ra)
	}
	return nil
}

// ListMultipartUploads implements ObjectStore with S3's prefix semantics.
//
// MinIO does not implement them: given a non-empty prefix it lists only the
// uploads of the object named exactly prefix (read from its drives); given
// an empty prefix it lists every upload initiated since the server started
// (from memory). This method asks both and keeps the uploads whose key
// starts with prefix, so it is exact unless MinIO restarted while an
// upload of a key other than prefix itself was open.
func (s *MinIOStore) ListMultipartUploads(ctx context.Context, prefix string) ([]MultipartUpload, error) {
	const op = "ListMultipartUploads"
	ctx, ra := captureRetryAfter(ctx)
	seen := make(map[string]bool)
	var out []MultipartUpload
	queries := []string{""}
	if prefix != "" {
		queries = append(queries, prefix)
	}
	for _, q := range queries {
		keyMarker, idMarker := "", ""
		for {
			res, err := s.core.ListMultipartUploads(ctx, s.bucket, q, keyMarker, idMarker, "", 1000)
			if err != nil {
				return nil, s.wrap(op, prefix, err, ra)
			}
			for _, u := range res.Uploads {
				if strings.HasPrefix(u.Key, prefix) && !seen[u.UploadID] {
					seen[u.UploadID] = true
					out = append(out, MultipartUpload{Key: u.Key, UploadID: u.UploadID, Initiated: u.Initiated})
				}
			}
			if !res.IsTruncated || (res.NextKeyMarker == "" && res.NextUploadIDMarker == "") {
				break
			}
			keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		if !out[i].Initiated.Equal(out[j].Initiated) {
			return out[i].Initiated.Before(out[j].Initiated)
		}
		return out[i].UploadID < out[j].UploadID
	})
	return out, nil
}

// md5Base64 is the Content-MD5 header value of an MD5 digest ("" for none).
func md5Base64(sum []byte) string {
	if len(sum) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(sum)
}

func (s *MinIOStore) putOpts(opts PutOptions) minio.PutObjectOptions {
	return minio.PutObjectOptions{UserMetadata: opts.Metadata, ContentType: opts.ContentType}
}

// wrap converts a minio-go error into a *StoreError with a Code.
func (s *MinIOStore) wrap(op, key string, err error, ra *retryAfterBox) error {
	c := Classify(err)
	se := &StoreError{Op: op, Key: key, Code: c.Code, Err: err}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		se.Status = resp.StatusCode
	}
	if ra != nil {
		se.RetryAfter = time.Duration(ra.v.Load())
	}
	return se
}

// classifyS3Response maps minio-go's ErrorResponse to a Code.
func classifyS3Response(err error) (Code, bool) {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return "", false
	}
	if resp.Code == "" && resp.StatusCode == 0 {
		return "", false
	}
	return codeForHTTP(resp.Code, resp.StatusCode), true
}

func toObjectInfo(oi minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Key: oi.Key, Size: oi.Size, ETag: oi.ETag, LastModified: oi.LastModified,
		Metadata: lowerKeys(oi.UserMetadata)}
}

func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// sizedBody turns a body that ends before its announced length into an
// io.ErrUnexpectedEOF wrapped as CodeTruncated, so that a response cut by
// the network is never mistaken for a complete object.
type sizedBody struct {
	op, key   string
	rc        io.ReadCloser
	remaining int64
}

// Read implements io.Reader.
func (b *sizedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF && b.remaining > 0 {
		return n, &StoreError{Op: b.op, Key: b.key, Code: CodeTruncated,
			Err: fmt.Errorf("body ended %d bytes early: %w", b.remaining, io.ErrUnexpectedEOF)}
	}
	if err != nil && err != io.EOF {
		return n, &StoreError{Op: b.op, Key: b.key, Code: Classify(err).Code, Err: err}
	}
	return n, err
}

// Close implements io.Closer.
func (b *sizedBody) Close() error { return b.rc.Close() }

// retryAfterBox receives the Retry-After of the last response of a call.
type retryAfterBox struct{ v atomic.Int64 }

type retryAfterKey struct{}

// captureRetryAfter returns a context under which retryAfterTransport
// records a response's Retry-After header into the returned box.
func captureRetryAfter(ctx context.Context) (context.Context, *retryAfterBox) {
	box := &retryAfterBox{}
	return context.WithValue(ctx, retryAfterKey{}, box), box
}

// retryAfterTransport records Retry-After headers of error responses for
// the call that made them (minio-go's ErrorResponse does not carry headers).
type retryAfterTransport struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	if box, ok := req.Context().Value(retryAfterKey{}).(*retryAfterBox); ok {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			box.v.Store(int64(d))
		}
	}
	return resp, err
}

// maxRetryAfterHeader bounds a parsed Retry-After: longer waits are
// taken as this long (callers cap further, see MaxRetryAfter).
const maxRetryAfterHeader = time.Hour

// parseRetryAfter parses a Retry-After value: delay-seconds (digits,
// optionally with a decimal fraction; no sign, exponent, NaN or Inf) or
// an HTTP date. The result is within [0, maxRetryAfterHeader].
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDecimal(v) {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs >= maxRetryAfterHeader.Seconds() {
			// Only a value too large for a float64 fails to parse here.
			return maxRetryAfterHeader, true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		return min(max(d, 0), maxRetryAfterHeader), true
	}
	return 0, false
}

// isDecimal reports whether v is digits with at most one decimal point
// between digits.
func isDecimal(v string) bool {
	intPart, frac, hasFrac := strings.Cut(v, ".")
	digits := func(s string) bool {
		if s == "" {
			return false
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	return digits(intPart) && (!hasFrac || digits(frac))
}

func checkKey(op, key string) error {
	if key == "" {
		return invalidArg(op, key, "key is empty")
	}
	if len(key) > 1024 {
		return invalidArg(op, key[:32]+"...", "key is %d bytes, longer than 1024", len(key))
	}
	return nil
}

func checkKeySize(op, key string, size int64) error {
	if err := checkKey(op, key); err != nil {
		return err
	}
	if size < 0 {
		return invalidArg(op, key, "size %d is negative (the size must be known)", size)
	}
	return nil
}

func checkPart(op, key, uploadID string, number int, size int64) error {
	if err := checkKeySize(op, key, size); err != nil {
		return err
	}
	if uploadID == "" {
		return invalidArg(op, key, "upload id is empty")
	}
	if number < 1 || number > 10000 {
		return invalidArg(op, key, "part number %d outside 1..10000", number)
	}
	return nil
}
