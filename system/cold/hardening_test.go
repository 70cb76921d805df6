package cold

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/internal/badobjects"
	"github.com/tierchaos/tierchaos/system/snapshot"
	"github.com/tierchaos/tierchaos/uploader"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestDownloadDeadlineScalesWithSize: a download of an object several
// parts large gets more than one operation timeout. The store serves 30 ms
// per MiB, so 15 MiB take 450 ms, more than the 250 ms operation timeout
// but well within the budget of one timeout per part size (5 MiB) and one
// more. Regression: every download, whatever its size and retries
// included, had to finish within one operation timeout, so a large cold
// collection could never be promoted again.
func TestDownloadDeadlineScalesWithSize(t *testing.T) {
	ctx := context.Background()
	m := uploader.NewMemStore(uploader.WithLatency(uploader.Latency{PerMiB: 30 * time.Millisecond}))
	s, err := New(m, Options{OpTimeout: 250 * time.Millisecond, MaxRetries: 1, PartSize: 5 << 20, Concurrency: 2}, quiet())
	require.NoError(t, err)
	data := randomBytes(15<<20, 1)
	_, err = m.PutObject(ctx, "big", bytes.NewReader(data), int64(len(data)), uploader.PutOptions{})
	require.NoError(t, err)
	start := time.Now()
	got, err := s.Download(ctx, "big", int64(len(data)))
	require.NoError(t, err, "after %s", time.Since(start))
	require.Equal(t, data, got)
}

// TestUploadRefusesBytesChangedInTransit: an upload whose body arrives
// with one bit flipped (single PUT and multipart) fails instead of
// passing the size and metadata check, and nothing stays stored under the
// key after the cleanup. Regression: the store kept the changed bytes,
// the verification (size + metadata) passed, and the caller deleted its
// local copy of the only good data.
func TestUploadRefusesBytesChangedInTransit(t *testing.T) {
	for _, size := range []int{4 << 10, 12 << 20} {
		t.Run(byteSize(size), func(t *testing.T) {
			ctx := context.Background()
			m := uploader.NewMemStore()
			tr := badobjects.NewTransit(m)
			s, err := New(tr, Options{OpTimeout: 5 * time.Second, MaxRetries: 1, PartSize: 5 << 20, Concurrency: 2}, quiet())
			require.NoError(t, err)
			data := randomBytes(size, 2)
			info := snapshot.Info{Size: int64(size), Checksum: snapshot.Checksum(data)}
			tr.Arm()
			err = s.Upload(ctx, "k", data, info)
			require.Error(t, err, "bytes changed on the way must not be accepted")
			require.NoError(t, s.Cleanup("k"))
			_, ok := m.ObjectData("k")
			require.False(t, ok)
			tr.Disarm()
			require.NoError(t, s.Upload(ctx, "k", data, info))
			stored, ok := m.ObjectData("k")
			require.True(t, ok)
			require.Equal(t, data, stored)
		})
	}
}

// TestRetryAfterBeyondTheDeadlineFailsAtOnce: a server that asks for a
// retry later than the operation's deadline makes the operation fail at
// once, not sleep until the deadline; a Retry-After within the deadline is
// honoured. Regression: any Retry-After was waited for, up to the whole
// deadline.
func TestRetryAfterBeyondTheDeadlineFailsAtOnce(t *testing.T) {
	ctx := context.Background()
	m := uploader.NewMemStore()
	s, err := New(m, Options{OpTimeout: 3 * time.Second, MaxRetries: 3, PartSize: 5 << 20, Concurrency: 1}, quiet())
	require.NoError(t, err)
	_, err = m.PutObject(ctx, "k", bytes.NewReader([]byte("data")), 4, uploader.PutOptions{})
	require.NoError(t, err)
	_, err = m.Inject(uploader.Fault{Kind: uploader.FaultSlowDown, Op: uploader.OpGetObject, RetryAfter: 1000 * time.Hour, Times: 1})
	require.NoError(t, err)
	start := time.Now()
	_, err = s.Download(ctx, "k", 4)
	took := time.Since(start)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "after the deadline")
	require.Less(t, took, time.Second, "failed after %s", took)

	_, err = m.Inject(uploader.Fault{Kind: uploader.FaultSlowDown, Op: uploader.OpGetObject, RetryAfter: 300 * time.Millisecond, Times: 1})
	require.NoError(t, err)
	start = time.Now()
	got, err := s.Download(ctx, "k", 4)
	require.NoError(t, err)
	require.Equal(t, "data", string(got))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "the Retry-After is waited for")
}

// TestDownloadIsBoundedByTheExpectedSize: an object of another size than
// expected fails as corrupt (never retried) after reading at most one
// byte more than expected; one of the expected size is read whole.
func TestDownloadIsBoundedByTheExpectedSize(t *testing.T) {
	ctx := context.Background()
	m := uploader.NewMemStore()
	counting := badobjects.NewCounting(m)
	s, err := New(counting, Options{OpTimeout: 2 * time.Second, MaxRetries: 3, PartSize: 5 << 20, Concurrency: 1}, quiet())
	require.NoError(t, err)
	data := randomBytes(1<<20, 5)
	_, err = m.PutObject(ctx, "k", bytes.NewReader(data), int64(len(data)), uploader.PutOptions{})
	require.NoError(t, err)
	for _, want := range []int64{1000, 1<<20 + 1, 0} {
		before := counting.BytesRead()
		_, err := s.Download(ctx, "k", want)
		require.ErrorIs(t, err, snapshot.ErrCorrupt, "expected %d bytes", want)
		require.NotErrorIs(t, err, ErrUnavailable)
		require.LessOrEqual(t, counting.BytesRead()-before, want+1)
	}
	got, err := s.Download(ctx, "k", int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// TestReadBudget: one operation timeout, and one more per part size.
func TestReadBudget(t *testing.T) {
	s, _ := newStore(t) // 1 s, parts of 5 MiB
	for size, want := range map[int64]time.Duration{0: time.Second, 5<<20 - 1: time.Second, 5 << 20: 2 * time.Second, 100 << 20: 21 * time.Second} {
		require.Equal(t, want, s.ReadBudget(size), "size %d", size)
	}
}

// TestNoSuchBucketIsNotAMissingObject: a bucket that does not exist is
// not reported as a missing (lost) object. Regression: NoSuchBucket was
// classified like NoSuchKey, so tierd answered data_corrupted.
func TestNoSuchBucketIsNotAMissingObject(t *testing.T) {
	objs, stop, err := badobjects.NoBucket()
	require.NoError(t, err)
	t.Cleanup(stop)
	s, err := New(objs, Options{OpTimeout: 2 * time.Second, MaxRetries: 1, PartSize: 5 << 20, Concurrency: 1}, quiet())
	require.NoError(t, err)
	_, err = s.Download(context.Background(), "collections/c/data/x.parquet", 10)
	require.ErrorIs(t, err, ErrNoBucket)
	require.NotErrorIs(t, err, ErrMissing)
	data := []byte("x")
	err = s.Put(context.Background(), "collections/c/data/y.parquet", data, snapshot.Info{Size: 1, Checksum: snapshot.Checksum(data)})
	require.ErrorIs(t, err, ErrNoBucket)
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return "multipart"
	}
	return "single PUT"
}

// lostInitiate answers the first multipart initiation with a connection
// error after the store has created the upload, as when the answer is
// lost on the way back.
type lostInitiate struct {
	uploader.ObjectStore
	lost atomic.Bool
}

func (l *lostInitiate) InitiateMultipart(ctx context.Context, key string, opts uploader.PutOptions) (string, error) {
	id, err := l.ObjectStore.InitiateMultipart(ctx, key, opts)
	if err == nil && l.lost.CompareAndSwap(false, true) {
		return "", &uploader.StoreError{Op: "InitiateMultipart", Key: key, Code: uploader.CodeConnection, Err: errors.New("connection reset before the answer")}
	}
	return id, err
}

// TestRetriedInitiationLeavesNoUpload: when the answer to a multipart
// initiation is lost, the retry starts a second upload under the same
// key; the first is never completed. Put aborts it once the object is
// stored. Regression: it stayed until an orphan sweep.
func TestRetriedInitiationLeavesNoUpload(t *testing.T) {
	ctx := context.Background()
	m := uploader.NewMemStore()
	objs := &lostInitiate{ObjectStore: m}
	s, err := New(objs, Options{OpTimeout: 5 * time.Second, MaxRetries: 3, PartSize: 5 << 20, Concurrency: 2}, quiet())
	require.NoError(t, err)
	data := randomBytes(12<<20, 3)
	info := snapshot.Info{Size: int64(len(data)), Checksum: "c", Count: 1, Dimension: 1}
	require.NoError(t, s.Put(ctx, "k", data, info))
	require.True(t, objs.lost.Load(), "the first initiation's answer was lost")
	ups, err := m.ListMultipartUploads(ctx, "k")
	require.NoError(t, err)
	require.Empty(t, ups, "incomplete uploads left under the key")
	got, err := s.Download(ctx, "k", int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, data, got)
}
