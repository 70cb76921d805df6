// Package cold is tierd's view of the object store: key layout under
// {prefix}collections/{name}/, a deadline and bounded retries per S3
// operation (scaled with the size for transfers), uploads whose every
// request carries a Content-MD5 the store checks (single PUT or multipart
// for large snapshots) and that clean up after themselves on failure, and
// downloads bounded by the size the caller expects.
package cold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/system/snapshot"
	"github.com/tierchaos/tierchaos/uploader"
)

// ErrUnavailable marks an object store failure (unreachable, timed out,
// throttled beyond the retries, or refusing the request).
var ErrUnavailable = errors.New("object storage unavailable")

// ErrMissing marks an object that does not exist.
var ErrMissing = errors.New("object missing")

// ErrNoBucket marks a bucket that does not exist (S3 NoSuchBucket): it
// was deleted, or tierd is configured with another one. It says nothing
// about any object.
var ErrNoBucket = errors.New("object storage bucket does not exist")

// Options configures a Store.
type Options struct {
	// Prefix is prepended to every key; empty or ending in '/'.
	Prefix string
	// OpTimeout bounds one logical operation including its retries; a
	// download gets one per PartSize bytes more (see ReadBudget), an
	// upload one per round of parts (see Budget).
	OpTimeout time.Duration
	// MaxRetries is the number of retries of a retryable failure.
	MaxRetries int
	// PartSize: objects larger than this are uploaded in parts of this size.
	PartSize int64
	// Concurrency is the number of parts in flight at once.
	Concurrency int
	// VerifyReadback reads an uploaded object back and checks its checksum.
	VerifyReadback bool
	// CleanupTimeout bounds the deletion or abort after a failed upload
	// (default OpTimeout/10, at least 50ms).
	CleanupTimeout time.Duration
	// OnRetry, if set, is called once per retried attempt (for metrics).
	OnRetry func(op string)
}

// Store wraps an ObjectStore for tierd.
type Store struct {
	objs uploader.ObjectStore
	up   *uploader.ParallelUploader
	opts Options
	log  *slog.Logger
}

// New returns a Store over objs; it fails on options the uploader rejects.
func New(objs uploader.ObjectStore, opts Options, log *slog.Logger) (*Store, error) {
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 10 * time.Second
	}
	if opts.PartSize < 5<<20 {
		opts.PartSize = 8 << 20
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.CleanupTimeout <= 0 {
		opts.CleanupTimeout = max(opts.OpTimeout/10, 50*time.Millisecond)
	}
	pc := uploader.DefaultParallelConfig()
	pc.Enabled = true
	pc.Concurrency = opts.Concurrency
	pc.MaxRetries = opts.MaxRetries
	pc.BackoffBase = 50 * time.Millisecond
	pc.BackoffCap = 2 * time.Second
	pc.PartSize = opts.PartSize
	pc.MultipartThreshold = opts.PartSize
	pc.AttemptTimeout = opts.OpTimeout
	pc.AbortTimeout = opts.CleanupTimeout
	pc.ContentMD5 = true
	up, err := uploader.NewParallelUploader(objs, pc, uploader.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("cold: %w", err)
	}
	return &Store{objs: objs, up: up, opts: opts, log: log}, nil
}

// Objects returns the underlying object store.
func (s *Store) Objects() uploader.ObjectStore { return s.objs }

// CollectionPrefix returns the prefix of every object of collection name.
func (s *Store) CollectionPrefix(name string) string {
	return s.opts.Prefix + "collections/" + name + "/"
}

// DataKey returns the key of the cold-tier snapshot id of collection name.
func (s *Store) DataKey(name, id string) string {
	return s.CollectionPrefix(name) + "data/" + id + ".parquet"
}

// SnapshotKey returns the key of the user snapshot id of collection name.
func (s *Store) SnapshotKey(name, id string) string {
	return s.CollectionPrefix(name) + "snapshots/" + id + ".parquet"
}

// RootPrefix returns the prefix under which all collections live.
func (s *Store) RootPrefix() string { return s.opts.Prefix + "collections/" }

// do runs op with retries of retryable failures, all within OpTimeout.
func (s *Store) do(ctx context.Context, name, key string, op func(ctx context.Context) error) error {
	return s.doWithin(ctx, s.opts.OpTimeout, name, key, op)
}

// doWithin runs op with retries of retryable failures, all within limit.
// A wait that would end past the deadline (a server's Retry-After, or the
// backoff) is not slept: the operation fails at once.
func (s *Store) doWithin(ctx context.Context, limit time.Duration, name, key string, op func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, snapshot.ErrCorrupt) {
			return fmt.Errorf("%s %s: %w", name, key, err)
		}
		cl := uploader.Classify(err)
		switch cl.Code {
		case uploader.CodeNotFound:
			return fmt.Errorf("%s %s: %w: %w", name, key, ErrMissing, err)
		case uploader.CodeNoSuchBucket:
			return fmt.Errorf("%s %s: %w: %w", name, key, ErrNoBucket, err)
		}
		if !cl.Retryable || attempt >= s.opts.MaxRetries || ctx.Err() != nil {
			return fmt.Errorf("%s %s (attempt %d): %w: %w", name, key, attempt+1, ErrUnavailable, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if cl.RetryAfter > wait {
			wait = cl.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return fmt.Errorf("%s %s (attempt %d): %w: the next attempt (in %s) would start after the deadline: %w",
				name, key, attempt+1, ErrUnavailable, wait, err)
		}
		if s.opts.OnRetry != nil {
			s.opts.OnRetry(name)
		}
		s.log.Debug("s3 retry", "op", name, "key", key, "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s (attempt %d): %w: %w", name, key, attempt+1, ErrUnavailable, err)
		case <-t.C:
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// Upload is Put then Verify. On failure the caller cleans up (see Cleanup).
func (s *Store) Upload(ctx context.Context, key string, data []byte, info snapshot.Info) error {
	if err := s.Put(ctx, key, data, info); err != nil {
		return err
	}
	return s.Verify(ctx, key, info)
}

// Budget is the deadline to give an upload of size bytes plus its verify
// so that, with Cleanup after a failure, the whole attempt stays within
// OpTimeout per round of parts.
func (s *Store) Budget(size int64) time.Duration {
	parts := (size + s.opts.PartSize - 1) / s.opts.PartSize
	rounds := int64(1)
	if parts > 1 {
		rounds = 1 + (parts+int64(s.opts.Concurrency)-1)/int64(s.opts.Concurrency)
	}
	return max(time.Duration(rounds)*s.opts.OpTimeout-2*s.opts.CleanupTimeout, s.opts.OpTimeout/2)
}

// Put stores data (described by info, whose checksum goes into the object
// metadata) under key with the uploader's ParallelUploader: one PUT, or a
// multipart upload with parallel parts when larger than PartSize, retrying
// retryable failures with backoff within ctx (see Budget). Every request
// carries the MD5 of its body as Content-MD5, so the store refuses bytes
// changed on the way (BadDigest) rather than keep them. A failed
// multipart upload is aborted by the uploader; the caller deletes what a
// failed single PUT may have stored (Cleanup). Errors wrap ErrUnavailable
// (ErrNoBucket for a missing bucket).
func (s *Store) Put(ctx context.Context, key string, data []byte, info snapshot.Info) error {
	parts := (int64(len(data)) + s.opts.PartSize - 1) / s.opts.PartSize
	requests := int64(1)
	if parts > 1 {
		requests = parts + 2
	}
	item := uploader.BytesItem(key, data)
	item.Opts = uploader.PutOptions{Metadata: info.Metadata(), ContentType: "application/vnd.apache.parquet"}
	res := s.up.Upload(ctx, item)
	if retried := int64(res.Attempts) - requests; retried > 0 && s.opts.OnRetry != nil {
		for range retried {
			s.opts.OnRetry("put")
		}
	}
	if res.Err != nil {
		cause := ErrUnavailable
		if errors.Is(res.Err, uploader.ErrNoSuchBucket) {
			cause = ErrNoBucket
		}
		return fmt.Errorf("put %s (%d attempts): %w: %w", key, res.Attempts, cause, res.Err)
	}
	if parts > 1 && res.Attempts > int(requests) {
		s.abortStrays(ctx, key)
	}
	return nil
}

// abortStrays aborts the incomplete multipart uploads of key after its
// object was stored. A retried initiation whose first answer was lost
// leaves an upload nobody completes; every upload writes a key of its
// own, so any incomplete upload of key is such a stray. A failure is only
// logged: the orphan sweep aborts what is left.
func (s *Store) abortStrays(ctx context.Context, key string) {
	ups, err := s.ListIncomplete(ctx, key)
	if err != nil {
		s.log.Warn("stray multipart uploads not listed; left to the orphan sweep", "key", key, "err", err)
		return
	}
	for _, u := range ups {
		if u.Key != key {
			continue
		}
		if err := s.Abort(ctx, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrMissing) {
			s.log.Warn("stray multipart upload not aborted; left to the orphan sweep", "key", key, "upload", u.UploadID, "err", err)
		}
	}
}

// Verify checks the stored object: its size and metadata checksum must
// match info (and, with VerifyReadback, its content).
func (s *Store) Verify(ctx context.Context, key string, info snapshot.Info) error {
	var oi uploader.ObjectInfo
	if err := s.do(ctx, "stat", key, func(ctx context.Context) error {
		var err error
		oi, err = s.objs.StatObject(ctx, key)
		return err
	}); err != nil {
		return err
	}
	if oi.Size != info.Size {
		return fmt.Errorf("verify %s: %w: size %d, uploaded %d", key, snapshot.ErrCorrupt, oi.Size, info.Size)
	}
	if got := oi.Metadata[snapshot.MetaChecksum]; got != info.Checksum {
		return fmt.Errorf("verify %s: %w: metadata checksum %q, expected %q", key, snapshot.ErrCorrupt, got, info.Checksum)
	}
	if s.opts.VerifyReadback {
		data, err := s.Download(ctx, key, info.Size)
		if err != nil {
			return err
		}
		if err := snapshot.Verify(key, data, info.Size, info.Checksum); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup deletes key and aborts any incomplete multipart upload of it,
// with a fresh deadline of CleanupTimeout (the request's may be over). The
// caller records the key for a later retry if it fails.
func (s *Store) Cleanup(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CleanupTimeout)
	defer cancel()
	if err := s.objs.DeleteObject(ctx, key); err != nil {
		return fmt.Errorf("cleanup %s: %w: %w", key, ErrUnavailable, err)
	}
	ups, err := s.objs.ListMultipartUploads(ctx, key)
	if err != nil {
		return fmt.Errorf("cleanup %s: %w: %w", key, ErrUnavailable, err)
	}
	var errs []error
	for _, u := range ups {
		if u.Key != key {
			continue
		}
		if err := s.objs.AbortMultipart(ctx, u.Key, u.UploadID); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: abort %s: %w: %w", key, u.UploadID, ErrUnavailable, err))
		}
	}
	return errors.Join(errs...)
}

// ReadBudget is the deadline of a download of size bytes, retries
// included: one OpTimeout, and one more per PartSize bytes, so that a
// large object is not bound to the deadline of a small one (it assumes
// at least PartSize per OpTimeout, 0.8 MiB/s with the defaults).
func (s *Store) ReadBudget(size int64) time.Duration {
	return time.Duration(1+max(size, 0)/s.opts.PartSize) * s.opts.OpTimeout
}

// Download reads the object under key, which must be exactly size bytes
// (the size the manifest records), within ReadBudget(size). An object of
// another size fails with snapshot.ErrCorrupt after at most size+1 bytes
// were read (at once if the store announces its size), never retried.
func (s *Store) Download(ctx context.Context, key string, size int64) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("get %s: %w: negative size %d", key, snapshot.ErrCorrupt, size)
	}
	var data []byte
	err := s.doWithin(ctx, s.ReadBudget(size), "get", key, func(ctx context.Context) error {
		rc, info, err := s.objs.GetObject(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		if info.Size >= 0 && info.Size != size {
			return fmt.Errorf("%w: object %s is %d bytes, expected %d", snapshot.ErrCorrupt, key, info.Size, size)
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(rc, buf); err != nil {
			return err
		}
		var extra [1]byte
		if n, err := io.ReadFull(rc, extra[:]); n > 0 {
			return fmt.Errorf("%w: object %s is longer than the expected %d bytes", snapshot.ErrCorrupt, key, size)
		} else if !errors.Is(err, io.EOF) {
			return err
		}
		data = buf
		return nil
	})
	return data, err
}

// Purge deletes key and aborts every incomplete multipart upload of it,
// each operation with the usual deadline and retries.
func (s *Store) Purge(ctx context.Context, key string) error {
	if err := s.Delete(ctx, key); err != nil {
		return err
	}
	ups, err := s.ListIncomplete(ctx, key)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range ups {
		if u.Key == key {
			errs = append(errs, s.Abort(ctx, u.Key, u.UploadID))
		}
	}
	return errors.Join(errs...)
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, "delete", key, func(ctx context.Context) error {
		return s.objs.DeleteObject(ctx, key)
	})
}

// List lists the objects under prefix.
func (s *Store) List(ctx context.Context, prefix string) ([]uploader.ObjectInfo, error) {
	var out []uploader.ObjectInfo
	err := s.do(ctx, "list", prefix, func(ctx context.Context) error {
		var err error
		out, err = s.objs.ListObjects(ctx, prefix)
		return err
	})
	return out, err
}

// ListIncomplete lists incomplete multipart uploads under prefix.
func (s *Store) ListIncomplete(ctx context.Context, prefix string) ([]uploader.MultipartUpload, error) {
	var out []uploader.MultipartUpload
	err := s.do(ctx, "list_multipart", prefix, func(ctx context.Context) error {
		var err error
		out, err = s.objs.ListMultipartUploads(ctx, prefix)
		return err
	})
	return out, err
}

// DeletePrefix deletes every object and aborts every incomplete upload
// under prefix; it returns the first error after trying all.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err)
		}
	}
	ups, err := s.ListIncomplete(ctx, prefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, u := range ups {
		if !strings.HasPrefix(u.Key, prefix) {
			continue
		}
		if err := s.do(ctx, "abort_multipart", u.Key, func(ctx context.Context) error {
			return s.objs.AbortMultipart(ctx, u.Key, u.UploadID)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Abort aborts one incomplete multipart upload.
func (s *Store) Abort(ctx context.Context, key, uploadID string) error {
	return s.do(ctx, "abort_multipart", key, func(ctx context.Context) error {
		return s.objs.AbortMultipart(ctx, key, uploadID)
	})
}
