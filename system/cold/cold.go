// Package cold is tierd's view of the object store: key layout under
// {prefix}collections/{name}/, a deadline and bounded retries per S3
// operation, verified uploads (single PUT or multipart for large
// snapshots) that clean up after themselves on failure, and verified
// downloads.
package cold

import (
	"bytes"
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
	"golang.org/x/sync/errgroup"
)

// ErrUnavailable marks an object store failure (unreachable, timed out,
// throttled beyond the retries, or refusing the request).
var ErrUnavailable = errors.New("object storage unavailable")

// ErrMissing marks an object that does not exist.
var ErrMissing = errors.New("object missing")

// Options configures a Store.
type Options struct {
	// Prefix is prepended to every key; empty or ending in '/'.
	Prefix string
	// OpTimeout bounds one logical operation including its retries.
	OpTimeout time.Duration
	// MaxRetries is the number of retries of a retryable failure.
	MaxRetries int
	// PartSize: objects larger than this are uploaded in parts of this size.
	PartSize int64
	// Concurrency is the number of parts in flight at once.
	Concurrency int
	// VerifyReadback reads an uploaded object back and checks its checksum.
	VerifyReadback bool
	// OnRetry, if set, is called once per retried attempt (for metrics).
	OnRetry func(op string)
}

// Store wraps an ObjectStore for tierd.
type Store struct {
	objs uploader.ObjectStore
	opts Options
	log  *slog.Logger
}

// New returns a Store over objs.
func New(objs uploader.ObjectStore, opts Options, log *slog.Logger) *Store {
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 10 * time.Second
	}
	if opts.PartSize < 5<<20 {
		opts.PartSize = 8 << 20
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	return &Store{objs: objs, opts: opts, log: log}
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
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		cl := uploader.Classify(err)
		if cl.Code == uploader.CodeNotFound {
			return fmt.Errorf("%s %s: %w: %w", name, key, ErrMissing, err)
		}
		if !cl.Retryable || attempt >= s.opts.MaxRetries || ctx.Err() != nil {
			return fmt.Errorf("%s %s (attempt %d): %w: %w", name, key, attempt+1, ErrUnavailable, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if cl.RetryAfter > wait {
			wait = cl.RetryAfter
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

// Upload is Put then Verify; after a failed Verify it cleans up too.
func (s *Store) Upload(ctx context.Context, key string, data []byte, info snapshot.Info) error {
	if err := s.Put(ctx, key, data, info); err != nil {
		return err
	}
	if err := s.Verify(ctx, key, info); err != nil {
		s.Cleanup(key)
		return err
	}
	return nil
}

// Put stores data (described by info, whose checksum goes into the object
// metadata) under key: one PUT, or a multipart upload with parallel parts
// when larger than PartSize. On failure it deletes or aborts what it
// uploaded (best effort, logged) and returns an error wrapping
// ErrUnavailable.
func (s *Store) Put(ctx context.Context, key string, data []byte, info snapshot.Info) error {
	opts := uploader.PutOptions{Metadata: info.Metadata(), ContentType: "application/vnd.apache.parquet"}
	var err error
	if int64(len(data)) > s.opts.PartSize {
		err = s.uploadMultipart(ctx, key, data, opts)
	} else {
		err = s.do(ctx, "put", key, func(ctx context.Context) error {
			_, err := s.objs.PutObject(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
			return err
		})
	}
	if err != nil {
		s.Cleanup(key)
		return err
	}
	return nil
}

func (s *Store) uploadMultipart(ctx context.Context, key string, data []byte, opts uploader.PutOptions) error {
	var uploadID string
	if err := s.do(ctx, "initiate_multipart", key, func(ctx context.Context) error {
		id, err := s.objs.InitiateMultipart(ctx, key, opts)
		uploadID = id
		return err
	}); err != nil {
		return err
	}
	abort := func() {
		// Use a fresh context: the request's may be done already.
		actx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
		defer cancel()
		if err := s.objs.AbortMultipart(actx, key, uploadID); err != nil {
			s.log.Warn("abort multipart failed; upload left for the orphan sweep", "key", key, "upload_id", uploadID, "err", err)
		}
	}
	n := (int64(len(data)) + s.opts.PartSize - 1) / s.opts.PartSize
	parts := make([]uploader.Part, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	for i := range n {
		g.Go(func() error {
			lo := i * s.opts.PartSize
			hi := min(lo+s.opts.PartSize, int64(len(data)))
			return s.do(gctx, "upload_part", key, func(ctx context.Context) error {
				p, err := s.objs.UploadPart(ctx, key, uploadID, int(i)+1, bytes.NewReader(data[lo:hi]), hi-lo)
				parts[i] = p
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		abort()
		return err
	}
	if err := s.do(ctx, "complete_multipart", key, func(ctx context.Context) error {
		_, err := s.objs.CompleteMultipart(ctx, key, uploadID, parts)
		return err
	}); err != nil {
		abort()
		return err
	}
	return nil
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
		data, err := s.Download(ctx, key)
		if err != nil {
			return err
		}
		if err := snapshot.Verify(key, data, info.Size, info.Checksum); err != nil {
			return err
		}
	}
	return nil
}

// Cleanup deletes key best effort with a fresh deadline and aborts any
// incomplete multipart upload of it; failures are logged.
func (s *Store) Cleanup(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	if err := s.objs.DeleteObject(ctx, key); err != nil {
		s.log.Warn("cleanup: delete failed; object left for the orphan sweep", "key", key, "err", err)
	}
	ups, err := s.objs.ListMultipartUploads(ctx, key)
	if err != nil {
		s.log.Warn("cleanup: list multipart uploads failed", "key", key, "err", err)
		return
	}
	for _, u := range ups {
		if u.Key != key {
			continue
		}
		if err := s.objs.AbortMultipart(ctx, u.Key, u.UploadID); err != nil {
			s.log.Warn("cleanup: abort multipart failed", "key", key, "upload_id", u.UploadID, "err", err)
		}
	}
}

// Download reads the whole object under key.
func (s *Store) Download(ctx context.Context, key string) ([]byte, error) {
	var data []byte
	err := s.do(ctx, "get", key, func(ctx context.Context) error {
		rc, _, err := s.objs.GetObject(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(rc)
		return err
	})
	return data, err
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
