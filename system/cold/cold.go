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
	"strconv"
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
	// BackoffBase and BackoffCap shape the full-jitter backoff between
	// attempts (defaults 50ms and 2s).
	BackoffBase, BackoffCap time.Duration
	// Batch configures the packs NewBatch uploads (uploader.BatchConfig;
	// the zero value is uploader.DefaultBatchConfig).
	Batch uploader.BatchConfig
	// OnRetry, if set, is called once per retried attempt (for metrics).
	OnRetry func(op string)
	// OnDone, if set, is called when a get, stat, put, delete, list,
	// list_multipart or abort_multipart ends, with its duration (retries
	// and backoff included) and its error (for metrics); op is that name,
	// as OnRetry gets it. A put is a snapshot's upload (Put) or a pack's
	// (NewBatch).
	OnDone func(op string, d time.Duration, err error)
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
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 50 * time.Millisecond
	}
	if opts.BackoffCap < opts.BackoffBase {
		opts.BackoffCap = max(2*time.Second, opts.BackoffBase)
	}
	if opts.Batch == (uploader.BatchConfig{}) {
		opts.Batch = uploader.DefaultBatchConfig()
	}
	pc := uploader.DefaultParallelConfig()
	pc.Enabled = true
	pc.Concurrency = opts.Concurrency
	pc.MaxRetries = opts.MaxRetries
	pc.BackoffBase = opts.BackoffBase
	pc.BackoffCap = opts.BackoffCap
	pc.PartSize = opts.PartSize
	pc.MultipartThreshold = opts.PartSize
	pc.AttemptTimeout = opts.OpTimeout
	pc.AbortTimeout = opts.CleanupTimeout
	pc.ContentMD5 = true
	uopts := []uploader.Option{uploader.WithLogger(log)}
	if opts.OnDone != nil {
		uopts = append(uopts, uploader.WithResultHook(func(r uploader.Result) { opts.OnDone("put", r.Duration, r.Err) }))
	}
	up, err := uploader.NewParallelUploader(objs, pc, uopts...)
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

// PackPrefix returns the prefix of every pack object and pack member key:
// packs hold members of several collections, so they live beside the
// collections, at {prefix}packs/_batch/{time}-{seq}.pack.
func (s *Store) PackPrefix() string { return s.opts.Prefix + "packs/" }

// PackMemberKey returns the key under which the data snapshot id of
// collection name is a member of a pack (in the pack's index; no object
// has this key). Names and ids have no '.', so the key says whose it is.
func (s *Store) PackMemberKey(name, id string) string {
	return s.PackPrefix() + name + "." + id + ".parquet"
}

// IsPackKey reports whether key is a pack object's key.
func (s *Store) IsPackKey(key string) bool {
	return strings.HasPrefix(key, s.PackPrefix()+uploader.PackDir+"/") && strings.HasSuffix(key, ".pack")
}

// NewBatch returns a BatchUploader that packs members into objects under
// PackPrefix with the options' batch configuration, through the same
// parallel uploader (retries, Content-MD5) as single uploads. before runs
// before each pack's first request (uploader.WithBeforePack). Close it.
func (s *Store) NewBatch(before func(ctx context.Context, packKey string, members []string) error) (*uploader.BatchUploader, error) {
	b, err := uploader.NewBatchUploader(s.up, s.opts.Batch, uploader.WithBeforePack(before), uploader.WithLogger(s.log))
	if err != nil {
		return nil, fmt.Errorf("cold: %w", err)
	}
	return b, nil
}

// BatchConfig returns the configuration of the packs NewBatch uploads.
func (s *Store) BatchConfig() uploader.BatchConfig { return s.opts.Batch }

// VerifyPack checks a stored pack with a HEAD: its size must be size and
// its metadata must name members members.
func (s *Store) VerifyPack(ctx context.Context, key string, size int64, members int) error {
	var oi uploader.ObjectInfo
	if err := s.do(ctx, "stat", key, func(ctx context.Context) error {
		var err error
		oi, err = s.objs.StatObject(ctx, key)
		return err
	}); err != nil {
		return err
	}
	if oi.Size != size {
		return fmt.Errorf("verify pack %s: %w: size %d, uploaded %d", key, snapshot.ErrCorrupt, oi.Size, size)
	}
	if got, want := oi.Metadata[packMembersMeta], strconv.Itoa(members); got != want {
		return fmt.Errorf("verify pack %s: %w: metadata members %q, expected %q", key, snapshot.ErrCorrupt, got, want)
	}
	return nil
}

// packMembersMeta is the pack object metadata with its member count (see
// uploader's pack format).
const packMembersMeta = "tierchaos-members"

// ReadMember reads one member of a pack with a ranged GET of its bytes
// only (never the whole pack), within ReadBudget(size), and checks its
// length and checksum (the snapshot checksum, xxh3 as 16 hex digits). A
// member whose bytes do not match fails with snapshot.ErrCorrupt naming
// the pack and the member, never retried; the other members of the pack
// are unaffected.
func (s *Store) ReadMember(ctx context.Context, packKey, memberKey string, offset, size int64, checksum string) ([]byte, error) {
	sum, err := strconv.ParseUint(checksum, 16, 64)
	if err != nil || size < 0 || offset < 0 {
		return nil, fmt.Errorf("read member %s of %s: %w: checksum %q, offset %d, size %d", memberKey, packKey, snapshot.ErrCorrupt, checksum, offset, size)
	}
	loc := uploader.Location{Key: memberKey, PackKey: packKey, Offset: offset, Length: size, Checksum: sum}
	var data []byte
	err = s.doWithin(ctx, s.ReadBudget(size), "get", packKey, func(ctx context.Context) error {
		b, err := uploader.ReadMember(ctx, s.objs, loc)
		if err != nil {
			if uploader.CodeOf(err) == uploader.CodeChecksumMismatch {
				return fmt.Errorf("%w: member %s of pack %s at %d+%d: %w", snapshot.ErrCorrupt, memberKey, packKey, offset, size, err)
			}
			return err
		}
		data = b
		return nil
	})
	return data, err
}

// do runs op with retries of retryable failures, all within OpTimeout.
func (s *Store) do(ctx context.Context, name, key string, op func(ctx context.Context) error) error {
	return s.doWithin(ctx, s.opts.OpTimeout, name, key, op)
}

// doWithin runs op with retries of retryable failures, all within limit.
// A wait that would end past the deadline (a server's Retry-After, or the
// backoff) is not slept: the operation fails at once.
func (s *Store) doWithin(ctx context.Context, limit time.Duration, name, key string, op func(ctx context.Context) error) (err error) {
	if s.opts.OnDone != nil {
		start := time.Now()
		defer func() { s.opts.OnDone(name, time.Since(start), err) }()
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	backoff := s.opts.BackoffBase
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
		backoff = min(backoff*2, s.opts.BackoffCap)
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
