// Package badobjects holds object stores for tests that misbehave in ways
// uploader.MemStore does not model: bytes changed on the way to the
// store, reads counted byte by byte, and a real S3 client talking to an
// endpoint whose bucket does not exist.
package badobjects

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tierchaos/tierchaos/uploader"
)

// Transit wraps an ObjectStore and, while armed, flips one bit of every
// upload body (single PUT or part) on its way to the store, as a faulty
// link or proxy would: the store receives other bytes than were sent.
type Transit struct {
	uploader.ObjectStore
	armed atomic.Bool
}

// NewTransit returns a disarmed Transit over objs.
func NewTransit(objs uploader.ObjectStore) *Transit { return &Transit{ObjectStore: objs} }

// Arm makes every later upload body arrive with one bit flipped; Disarm stops it.
func (t *Transit) Arm() { t.armed.Store(true) }

// Disarm lets upload bodies through unchanged.
func (t *Transit) Disarm() { t.armed.Store(false) }

func (t *Transit) body(r io.Reader) io.Reader {
	if !t.armed.Load() || r == nil {
		return r
	}
	return &flipper{r: r}
}

// PutObject implements uploader.ObjectStore.
func (t *Transit) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts uploader.PutOptions) (uploader.ObjectInfo, error) {
	return t.ObjectStore.PutObject(ctx, key, t.body(data), size, opts)
}

// UploadPart implements uploader.ObjectStore.
func (t *Transit) UploadPart(ctx context.Context, key, uploadID string, number int, data io.Reader, size int64, opts uploader.PartOptions) (uploader.Part, error) {
	return t.ObjectStore.UploadPart(ctx, key, uploadID, number, t.body(data), size, opts)
}

// flipper flips the lowest bit of the first byte it passes on.
type flipper struct {
	r       io.Reader
	flipped bool
}

func (f *flipper) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.flipped {
		p[0] ^= 1
		f.flipped = true
	}
	return n, err
}

// Counting wraps an ObjectStore and counts the body bytes read from
// GetObject answers.
type Counting struct {
	uploader.ObjectStore
	read atomic.Int64
}

// NewCounting returns a Counting over objs.
func NewCounting(objs uploader.ObjectStore) *Counting { return &Counting{ObjectStore: objs} }

// BytesRead returns the body bytes read from GetObject answers so far.
func (c *Counting) BytesRead() int64 { return c.read.Load() }

// GetObject implements uploader.ObjectStore.
func (c *Counting) GetObject(ctx context.Context, key string) (io.ReadCloser, uploader.ObjectInfo, error) {
	rc, info, err := c.ObjectStore.GetObject(ctx, key)
	if err != nil {
		return nil, info, err
	}
	return &countingBody{ReadCloser: rc, n: &c.read}, info, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// NoBucket starts an S3 endpoint that answers every request with 404
// NoSuchBucket and returns a MinIOStore (minio-go, as tierd uses it)
// pointed at it, and a function that stops both.
func NoBucket() (*uploader.MinIOStore, func(), error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code>`+
				`<Message>The specified bucket does not exist</Message><BucketName>tierd</BucketName>`+
				`<Resource>/tierd</Resource><RequestId>1</RequestId></Error>`)
		}
	}))
	s, err := uploader.NewMinIOStore(uploader.MinIOConfig{
		Endpoint: strings.TrimPrefix(srv.URL, "http://"), AccessKey: "a", SecretKey: "s", Bucket: "tierd",
		Pool: uploader.PoolConfig{DialTimeout: time.Second, ResponseHeaderTimeout: 5 * time.Second},
	})
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return s, func() { _ = s.Close(); srv.Close() }, nil
}
