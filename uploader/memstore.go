package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Op names an ObjectStore operation (the method name), for metrics and
// fault targeting.
type Op string

// The ObjectStore operations.
const (
	OpPutObject            Op = "PutObject"
	OpGetObject            Op = "GetObject"
	OpGetObjectRange       Op = "GetObjectRange"
	OpStatObject           Op = "StatObject"
	OpDeleteObject         Op = "DeleteObject"
	OpListObjects          Op = "ListObjects"
	OpInitiateMultipart    Op = "InitiateMultipart"
	OpUploadPart           Op = "UploadPart"
	OpCompleteMultipart    Op = "CompleteMultipart"
	OpAbortMultipart       Op = "AbortMultipart"
	OpListMultipartUploads Op = "ListMultipartUploads"
)

// allOps lists every Op.
var allOps = []Op{OpPutObject, OpGetObject, OpGetObjectRange, OpStatObject, OpDeleteObject, OpListObjects,
	OpInitiateMultipart, OpUploadPart, OpCompleteMultipart, OpAbortMultipart, OpListMultipartUploads}

// Latency is the simulated latency of every MemStore call:
// Base + uniform[0, Jitter) + PerMiB for each MiB moved.
type Latency struct {
	// Base is added to every call.
	Base time.Duration
	// Jitter adds a uniform random [0, Jitter) from the seeded source.
	Jitter time.Duration
	// PerMiB is added per MiB of the call's body (upload or range).
	PerMiB time.Duration
}

// MemOption configures a MemStore.
type MemOption func(*MemStore)

// WithSeed seeds the random source used for fault probabilities, latency
// jitter and corruption offsets, so runs are reproducible.
func WithSeed(seed uint64) MemOption {
	return func(m *MemStore) { m.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithLatency makes every call wait as given (honouring its context).
func WithLatency(l Latency) MemOption { return func(m *MemStore) { m.latency = l } }

// WithClock sets the time source for LastModified and Initiated.
func WithClock(now func() time.Time) MemOption { return func(m *MemStore) { m.now = now } }

// WithMinPartSize changes the minimum size of every part but the last that
// CompleteMultipart accepts (S3 and MinIO: 5 MiB, the default).
func WithMinPartSize(n int64) MemOption { return func(m *MemStore) { m.minPartSize = n } }

// MemStore is an in-memory ObjectStore that behaves like S3 where it
// matters: PutObject replaces atomically, a multipart upload becomes
// visible only on CompleteMultipart (with S3's part checks), an aborted
// upload leaves nothing, and errors carry S3's status codes. It injects
// faults (see Inject), simulates latency and counts calls and bytes.
type MemStore struct {
	mu          sync.Mutex
	objects     map[string]memObject
	uploads     map[string]*memUpload
	nextUpload  uint64
	rng         *rand.Rand
	latency     Latency
	now         func() time.Time
	minPartSize int64

	faults    []*faultState
	nextFault FaultID
	metrics   map[Op]*OpMetrics
	injected  map[FaultKind]int64
}

type memObject struct {
	data []byte
	info ObjectInfo
}

type memUpload struct {
	key       string
	opts      PutOptions
	initiated time.Time
	parts     map[int]memPart
}

type memPart struct {
	data []byte
	etag string
}

var _ ObjectStore = (*MemStore)(nil)

// NewMemStore returns an empty MemStore. Without WithSeed the random
// source is seeded with 1.
func NewMemStore(opts ...MemOption) *MemStore {
	m := &MemStore{
		objects:     make(map[string]memObject),
		uploads:     make(map[string]*memUpload),
		now:         time.Now,
		minPartSize: MinPartSize,
		metrics:     make(map[Op]*OpMetrics),
		injected:    make(map[FaultKind]int64),
	}
	WithSeed(1)(m)
	for _, o := range opts {
		o(m)
	}
	for _, op := range allOps {
		m.metrics[op] = &OpMetrics{}
	}
	return m
}

// s3Error builds the error MemStore returns for an S3 error response.
func s3Error(op Op, key string, status int, s3Code string, retryAfter time.Duration) *StoreError {
	return &StoreError{Op: string(op), Key: key, Code: codeForHTTP(s3Code, status), Status: status,
		RetryAfter: retryAfter, Err: fmt.Errorf("S3 error %s", s3Code)}
}

// begin runs the common prologue of every call: count it, wait the
// simulated latency, check the context and pick an injected fault.
func (m *MemStore) begin(ctx context.Context, op Op, key string, size int64) (*Fault, error) {
	m.mu.Lock()
	m.metrics[op].Calls++
	delay := m.latency.Base
	if m.latency.Jitter > 0 {
		delay += time.Duration(m.rng.Int64N(int64(m.latency.Jitter)))
	}
	if m.latency.PerMiB > 0 && size > 0 {
		delay += time.Duration(float64(m.latency.PerMiB) * float64(size) / (1 << 20))
	}
	f := m.pickFaultLocked(op, key)
	m.mu.Unlock()

	if err := sleepCtx(ctx, delay); err != nil {
		return nil, m.fail(op, newError(string(op), key, Classify(err).Code, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, m.fail(op, &StoreError{Op: string(op), Key: key, Code: Classify(err).Code, Err: err})
	}
	if f == nil {
		return nil, nil
	}
	switch f.Kind {
	case FaultSlowDown:
		return nil, m.fail(op, s3Error(op, key, 503, "SlowDown", f.RetryAfter))
	case FaultInternal:
		return nil, m.fail(op, s3Error(op, key, 500, "InternalError", 0))
	case FaultAccessDenied:
		return nil, m.fail(op, s3Error(op, key, 403, "AccessDenied", 0))
	case FaultConnReset:
		return nil, m.fail(op, newError(string(op), key, CodeConnection, errors.New("injected connection reset by peer")))
	case FaultTimeout:
		if err := sleepCtx(ctx, f.Delay); err != nil {
			return nil, m.fail(op, newError(string(op), key, Classify(err).Code, err))
		}
		return nil, m.fail(op, newError(string(op), key, CodeTimeout, errors.New("injected timeout")))
	}
	// Partial and Corrupt change the data path; the caller applies them.
	return f, nil
}

// fail counts a failed call and returns err.
func (m *MemStore) fail(op Op, err error) error {
	m.mu.Lock()
	m.metrics[op].Errors++
	m.mu.Unlock()
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readBody reads exactly size bytes of an upload body, applying a Partial
// fault (connection cut after f.Bytes) or Corrupt fault (one bit flipped
// in what gets stored, as silent corruption at rest).
//
// It returns the bytes to store and the ETag (MD5) of the bytes received,
// which S3 computes on receipt, before any injected rot.
func (m *MemStore) readBody(op Op, key string, data io.Reader, size int64, f *Fault) ([]byte, string, error) {
	if data == nil {
		if size == 0 {
			return []byte{}, etagOf(nil), nil
		}
		return nil, "", m.fail(op, invalidArg(string(op), key, "nil body with size %d", size))
	}
	if f != nil && f.Kind == FaultPartial {
		cut := min(f.Bytes, size)
		n, _ := io.CopyN(io.Discard, data, cut)
		m.addBytesIn(op, n)
		return nil, "", m.fail(op, newError(string(op), key, CodeConnection,
			fmt.Errorf("injected connection reset after %d of %d body bytes", n, size)))
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(data, buf)
	m.addBytesIn(op, int64(n))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			// S3 answers 400 IncompleteBody when the body is shorter
			// than Content-Length.
			se := s3Error(op, key, 400, "IncompleteBody", 0)
			se.Err = fmt.Errorf("body ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
			return nil, "", m.fail(op, se)
		}
		return nil, "", m.fail(op, &StoreError{Op: string(op), Key: key, Code: Classify(err).Code, Err: err})
	}
	etag := etagOf(buf)
	if f != nil && f.Kind == FaultCorrupt && size > 0 {
		m.flipBit(buf, f)
	}
	return buf, etag, nil
}

// checkDigest does what S3 does with a Content-MD5 header: a digest that
// is not 16 bytes is 400 InvalidDigest, one that differs from the MD5 of
// the bytes received (etag) is 400 BadDigest, and nothing is stored.
func (m *MemStore) checkDigest(op Op, key string, want []byte, etag string) error {
	switch {
	case want == nil:
		return nil
	case len(want) != md5.Size:
		return m.fail(op, s3Error(op, key, 400, "InvalidDigest", 0))
	case hex.EncodeToString(want) != etag:
		return m.fail(op, s3Error(op, key, 400, "BadDigest", 0))
	}
	return nil
}

func (m *MemStore) flipBit(buf []byte, f *Fault) {
	m.mu.Lock()
	off := f.Bytes
	if off <= 0 || off >= int64(len(buf)) {
		off = m.rng.Int64N(int64(len(buf)))
	}
	bit := m.rng.IntN(8)
	m.mu.Unlock()
	buf[off] ^= 1 << bit
}

func (m *MemStore) addBytesIn(op Op, n int64) {
	m.mu.Lock()
	m.metrics[op].BytesIn += n
	m.mu.Unlock()
}

// serve returns a reader over data for a GET, applying Partial (body cut
// after f.Bytes with an unexpected EOF) and Corrupt (one bit flipped in
// the copy served) faults.
func (m *MemStore) serve(op Op, key string, data []byte, f *Fault) io.ReadCloser {
	if f != nil && f.Kind == FaultCorrupt && len(data) > 0 {
		cp := bytes.Clone(data)
		m.flipBit(cp, f)
		data = cp
	}
	m.mu.Lock()
	m.metrics[op].BytesOut += int64(len(data))
	m.mu.Unlock()
	if f != nil && f.Kind == FaultPartial {
		cut := min(max(f.Bytes, 0), int64(len(data)))
		return &truncatedBody{r: bytes.NewReader(data[:cut]), op: op, key: key, missing: int64(len(data)) - cut}
	}
	return io.NopCloser(bytes.NewReader(data))
}

// truncatedBody ends with an unexpected EOF, like a response body whose
// connection was cut.
type truncatedBody struct {
	r       *bytes.Reader
	op      Op
	key     string
	missing int64
}

// Read implements io.Reader.
func (b *truncatedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, newError(string(b.op), b.key, CodeTruncated,
			fmt.Errorf("injected cut, %d bytes missing: %w", b.missing, io.ErrUnexpectedEOF))
	}
	return n, err
}

// Close implements io.Closer.
func (b *truncatedBody) Close() error { return nil }

func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return lowerKeys(m)
}

// PutObject implements ObjectStore.
func (m *MemStore) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	if err := checkKeySize(string(OpPutObject), key, size); err != nil {
		return ObjectInfo{}, m.fail(OpPutObject, err)
	}
	f, err := m.begin(ctx, OpPutObject, key, size)
	if err != nil {
		return ObjectInfo{}, err
	}
	buf, etag, err := m.readBody(OpPutObject, key, data, size, f)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := m.checkDigest(OpPutObject, key, opts.ContentMD5, etag); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	info := ObjectInfo{Key: key, Size: size, ETag: etag, LastModified: m.now(), Metadata: cloneMeta(opts.Metadata)}
	m.objects[key] = memObject{data: buf, info: info}
	return info, nil
}

// GetObject implements ObjectStore.
func (m *MemStore) GetObject(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := checkKey(string(OpGetObject), key); err != nil {
		return nil, ObjectInfo{}, m.fail(OpGetObject, err)
	}
	m.mu.Lock()
	obj, ok := m.objects[key]
	m.mu.Unlock()
	f, err := m.begin(ctx, OpGetObject, key, obj.info.Size)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	if !ok {
		return nil, ObjectInfo{}, m.fail(OpGetObject, s3Error(OpGetObject, key, 404, "NoSuchKey", 0))
	}
	return m.serve(OpGetObject, key, obj.data, f), obj.info, nil
}

// GetObjectRange implements ObjectStore. A range running past the end is
// cut at the end; one starting at or after the end fails with HTTP 416.
func (m *MemStore) GetObjectRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := checkKey(string(OpGetObjectRange), key); err != nil {
		return nil, m.fail(OpGetObjectRange, err)
	}
	if offset < 0 || length <= 0 {
		return nil, m.fail(OpGetObjectRange, invalidArg(string(OpGetObjectRange), key, "invalid range offset=%d length=%d", offset, length))
	}
	m.mu.Lock()
	obj, ok := m.objects[key]
	m.mu.Unlock()
	f, err := m.begin(ctx, OpGetObjectRange, key, length)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, m.fail(OpGetObjectRange, s3Error(OpGetObjectRange, key, 404, "NoSuchKey", 0))
	}
	if offset >= int64(len(obj.data)) {
		return nil, m.fail(OpGetObjectRange, s3Error(OpGetObjectRange, key, 416, "InvalidRange", 0))
	}
	end := min(offset+length, int64(len(obj.data)))
	return m.serve(OpGetObjectRange, key, obj.data[offset:end], f), nil
}

// StatObject implements ObjectStore.
func (m *MemStore) StatObject(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(string(OpStatObject), key); err != nil {
		return ObjectInfo{}, m.fail(OpStatObject, err)
	}
	if _, err := m.begin(ctx, OpStatObject, key, 0); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	obj, ok := m.objects[key]
	m.mu.Unlock()
	if !ok {
		return ObjectInfo{}, m.fail(OpStatObject, s3Error(OpStatObject, key, 404, "NoSuchKey", 0))
	}
	return obj.info, nil
}

// DeleteObject implements ObjectStore.
func (m *MemStore) DeleteObject(ctx context.Context, key string) error {
	if err := checkKey(string(OpDeleteObject), key); err != nil {
		return m.fail(OpDeleteObject, err)
	}
	if _, err := m.begin(ctx, OpDeleteObject, key, 0); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// ListObjects implements ObjectStore.
func (m *MemStore) ListObjects(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if _, err := m.begin(ctx, OpListObjects, prefix, 0); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ObjectInfo
	for k, o := range m.objects {
		if strings.HasPrefix(k, prefix) {
			info := o.info
			info.Metadata = nil // S3 listings carry no user metadata
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// InitiateMultipart implements ObjectStore.
func (m *MemStore) InitiateMultipart(ctx context.Context, key string, opts PutOptions) (string, error) {
	if err := checkKey(string(OpInitiateMultipart), key); err != nil {
		return "", m.fail(OpInitiateMultipart, err)
	}
	if _, err := m.begin(ctx, OpInitiateMultipart, key, 0); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextUpload++
	id := fmt.Sprintf("mem-%08x-%016x", m.nextUpload, m.rng.Uint64())
	m.uploads[id] = &memUpload{key: key, opts: PutOptions{Metadata: cloneMeta(opts.Metadata), ContentType: opts.ContentType},
		initiated: m.now(), parts: make(map[int]memPart)}
	return id, nil
}

// UploadPart implements ObjectStore. Uploading a part number again
// replaces that part.
func (m *MemStore) UploadPart(ctx context.Context, key, uploadID string, number int, data io.Reader, size int64, opts PartOptions) (Part, error) {
	if err := checkPart(string(OpUploadPart), key, uploadID, number, size); err != nil {
		return Part{}, m.fail(OpUploadPart, err)
	}
	f, err := m.begin(ctx, OpUploadPart, key, size)
	if err != nil {
		return Part{}, err
	}
	if !m.uploadExists(key, uploadID) {
		return Part{}, m.fail(OpUploadPart, s3Error(OpUploadPart, key, 404, "NoSuchUpload", 0))
	}
	buf, etag, err := m.readBody(OpUploadPart, key, data, size, f)
	if err != nil {
		return Part{}, err
	}
	if err := m.checkDigest(OpUploadPart, key, opts.ContentMD5, etag); err != nil {
		return Part{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	up, ok := m.uploads[uploadID]
	if !ok || up.key != key { // aborted while the body was read
		return Part{}, s3ErrorCounted(m, OpUploadPart, key, 404, "NoSuchUpload")
	}
	up.parts[number] = memPart{data: buf, etag: etag}
	return Part{Number: number, ETag: etag, Size: size}, nil
}

func s3ErrorCounted(m *MemStore, op Op, key string, status int, code string) error {
	m.metrics[op].Errors++
	return s3Error(op, key, status, code, 0)
}

func (m *MemStore) uploadExists(key, uploadID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	up, ok := m.uploads[uploadID]
	return ok && up.key == key
}

// CompleteMultipart implements ObjectStore with S3's checks: parts in
// ascending order, each uploaded with the given ETag, every part but the
// last at least the minimum part size. The ETag is S3's multipart ETag
// (MD5 of the part MD5s, "-N").
func (m *MemStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (ObjectInfo, error) {
	if err := checkKey(string(OpCompleteMultipart), key); err != nil {
		return ObjectInfo{}, m.fail(OpCompleteMultipart, err)
	}
	if uploadID == "" || len(parts) == 0 {
		return ObjectInfo{}, m.fail(OpCompleteMultipart, invalidArg(string(OpCompleteMultipart), key, "upload id and at least one part are required"))
	}
	if _, err := m.begin(ctx, OpCompleteMultipart, key, 0); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	up, ok := m.uploads[uploadID]
	if !ok || up.key != key {
		return ObjectInfo{}, s3ErrorCounted(m, OpCompleteMultipart, key, 404, "NoSuchUpload")
	}
	var total int64
	md5s := make([]byte, 0, 16*len(parts))
	for i, p := range parts {
		if i > 0 && p.Number <= parts[i-1].Number {
			return ObjectInfo{}, s3ErrorCounted(m, OpCompleteMultipart, key, 400, "InvalidPartOrder")
		}
		stored, ok := up.parts[p.Number]
		if !ok || stored.etag != strings.Trim(p.ETag, `"`) {
			return ObjectInfo{}, s3ErrorCounted(m, OpCompleteMultipart, key, 400, "InvalidPart")
		}
		if i < len(parts)-1 && int64(len(stored.data)) < m.minPartSize {
			return ObjectInfo{}, s3ErrorCounted(m, OpCompleteMultipart, key, 400, "EntityTooSmall")
		}
		total += int64(len(stored.data))
		sum, _ := hex.DecodeString(stored.etag)
		md5s = append(md5s, sum...)
	}
	data := make([]byte, 0, total)
	for _, p := range parts {
		data = append(data, up.parts[p.Number].data...)
	}
	sum := md5.Sum(md5s)
	info := ObjectInfo{Key: key, Size: total, ETag: fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:]), len(parts)),
		LastModified: m.now(), Metadata: up.opts.Metadata}
	m.objects[key] = memObject{data: data, info: info}
	delete(m.uploads, uploadID)
	return info, nil
}

// AbortMultipart implements ObjectStore. Aborting an unknown upload fails
// with ErrNotFound (S3 NoSuchUpload).
func (m *MemStore) AbortMultipart(ctx context.Context, key, uploadID string) error {
	if err := checkKey(string(OpAbortMultipart), key); err != nil {
		return m.fail(OpAbortMultipart, err)
	}
	if _, err := m.begin(ctx, OpAbortMultipart, key, 0); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	up, ok := m.uploads[uploadID]
	if !ok || up.key != key {
		return s3ErrorCounted(m, OpAbortMultipart, key, 404, "NoSuchUpload")
	}
	delete(m.uploads, uploadID)
	return nil
}

// ListMultipartUploads implements ObjectStore, ordered by key, then
// initiation time.
func (m *MemStore) ListMultipartUploads(ctx context.Context, prefix string) ([]MultipartUpload, error) {
	if _, err := m.begin(ctx, OpListMultipartUploads, prefix, 0); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MultipartUpload
	for id, up := range m.uploads {
		if strings.HasPrefix(up.key, prefix) {
			out = append(out, MultipartUpload{Key: up.key, UploadID: id, Initiated: up.initiated})
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

// ObjectData returns a copy of a stored object's bytes, bypassing faults,
// latency and metrics (for tests that inspect what was stored).
func (m *MemStore) ObjectData(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(o.data), true
}

// Len returns the number of stored objects.
func (m *MemStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects)
}
