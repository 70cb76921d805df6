package uploader

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Item is one object to upload. Body is read with ReadAt, so a failed
// attempt can be repeated and parts can be read in parallel; an *os.File
// or a *bytes.Reader will do.
type Item struct {
	// Key is the object key to write.
	Key string
	// Body holds the object's bytes at offsets [0, Size).
	Body io.ReaderAt
	// Size is the object's length in bytes.
	Size int64
	// Opts are passed to PutObject or InitiateMultipart.
	Opts PutOptions
}

// BytesItem returns an Item over data.
func BytesItem(key string, data []byte) Item {
	return Item{Key: key, Body: bytes.NewReader(data), Size: int64(len(data))}
}

// Result is the outcome of one Item.
type Result struct {
	// Key is the item's key.
	Key string
	// Info describes the stored object when Err is nil.
	Info ObjectInfo
	// Attempts counts the requests made for the item, retries included
	// (a multipart upload counts initiate, every part attempt and complete).
	Attempts int
	// Multipart reports whether the item went up as a multipart upload.
	Multipart bool
	// Err is why the item was not stored; nil on success.
	Err error
	// Duration is how long the item's upload took, retries and backoff
	// included (zero for an item cancelled before it started).
	Duration time.Duration
}

// Sleeper waits d or until ctx is done, returning ctx's error in that case.
type Sleeper func(ctx context.Context, d time.Duration) error

// Jitter draws a wait from [0, ceiling].
type Jitter func(ceiling time.Duration) time.Duration

// Option configures a ParallelUploader or BatchUploader.
type Option func(*options)

type options struct {
	onRetry func(RetryEvent)
	sleep   Sleeper
	jitter  Jitter
	logger  *slog.Logger
	now     func() time.Time
	tick    time.Duration
	// beforePack runs before a BatchUploader's pack PUT (WithBeforePack).
	beforePack func(ctx context.Context, packKey string, members []string) error
	// onResult runs when an item's upload ends (WithResultHook).
	onResult func(Result)
}

// WithSleeper replaces the backoff wait (tests use it to record the
// schedule instead of waiting).
func WithSleeper(s Sleeper) Option { return func(o *options) { o.sleep = s } }

// WithJitter replaces the full-jitter draw.
func WithJitter(j Jitter) Option { return func(o *options) { o.jitter = j } }

// WithLogger sets the logger for retries and aborts (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// RetryEvent describes one retry decided by a ParallelUploader.
type RetryEvent struct {
	// Op is the operation retried, e.g. "PutObject" or "UploadPart".
	Op string
	// Key is the object key of the request.
	Key string
	// Attempt is the number of the attempt that failed (1 = the first).
	Attempt int
	// Wait is the backoff before the next attempt.
	Wait time.Duration
	// Err is the failed attempt's error.
	Err error
}

// WithRetryHook calls hook before every retry wait (for metrics such as a
// retries counter). The hook must not block.
func WithRetryHook(hook func(RetryEvent)) Option { return func(o *options) { o.onRetry = hook } }

// WithResultHook makes a ParallelUploader call hook with each item's
// Result when its upload ends, stored or not, whether it came through
// Upload, UploadAll or a BatchUploader on this uploader (for metrics such
// as upload durations). An item cancelled before it started is not
// reported. The hook must not block.
func WithResultHook(hook func(Result)) Option { return func(o *options) { o.onResult = hook } }

// WithNow sets the BatchUploader's clock, used to age batches.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithBeforePack makes a BatchUploader call hook with a pack's key and
// its members' keys before the pack's first request, so that the caller
// can record the key durably (and keep a sweep away from it) before
// anything is stored under it. An error from hook fails the pack: nothing
// is uploaded and every member gets the error. It runs on the pack's
// upload goroutine.
func WithBeforePack(hook func(ctx context.Context, packKey string, members []string) error) Option {
	return func(o *options) { o.beforePack = hook }
}

// withTick sets how often the BatchUploader's background flusher checks ages.
func withTick(d time.Duration) Option { return func(o *options) { o.tick = d } }

func buildOptions(opts []Option) options {
	o := options{
		sleep:  sleepCtx,
		jitter: func(c time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(c) + 1)) },
		logger: slog.Default(),
		now:    time.Now,
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ErrRetryBudgetExhausted matches an AttemptsError that stopped because the
// call's retry budget was used up (not the per-request retry limit).
var ErrRetryBudgetExhausted = errors.New("uploader: retry budget exhausted")

// AttemptsError is returned when a request still failed after retrying.
// It unwraps to the last attempt's error, so Classify and errors.Is see it.
type AttemptsError struct {
	// Op is the operation that failed.
	Op string
	// Key is the object key of the request.
	Key string
	// Attempts is the number of attempts made.
	Attempts int
	// BudgetExhausted is true when the call's retry budget, rather than
	// MaxRetries, stopped the retries.
	BudgetExhausted bool
	// Err is the last attempt's error.
	Err error
}

// Error implements error.
func (e *AttemptsError) Error() string {
	why := "retries exhausted"
	if e.BudgetExhausted {
		why = "retry budget exhausted"
	}
	return fmt.Sprintf("%s %q failed after %d attempts (%s): %v", e.Op, e.Key, e.Attempts, why, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *AttemptsError) Unwrap() error { return e.Err }

// Is matches ErrRetryBudgetExhausted when the budget stopped the retries.
func (e *AttemptsError) Is(target error) bool {
	return target == ErrRetryBudgetExhausted && e.BudgetExhausted
}

// ParallelUploader uploads items with bounded concurrency, retrying only
// retryable errors with capped exponential backoff and full jitter,
// honouring Retry-After, within a per-call retry budget. Objects larger
// than MultipartThreshold go up as multipart uploads with parallel parts; a failed or
// cancelled multipart upload is aborted so that no incomplete upload stays
// behind. It is safe for concurrent use.
type ParallelUploader struct {
	store ObjectStore
	cfg   ParallelConfig
	opts  options
	// slots bounds the requests in flight over all calls.
	slots *semaphore.Weighted
}

// NewParallelUploader validates cfg and returns an uploader on store.
func NewParallelUploader(store ObjectStore, cfg ParallelConfig, opts ...Option) (*ParallelUploader, error) {
	if store == nil {
		return nil, invalidArg("NewParallelUploader", "", "store is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled {
		cfg.Concurrency = 1
	}
	return &ParallelUploader{store: store, cfg: cfg, opts: buildOptions(opts), slots: semaphore.NewWeighted(int64(cfg.Concurrency))}, nil
}

// Config returns the effective configuration (Concurrency is 1 when
// parallel uploads are disabled).
func (u *ParallelUploader) Config() ParallelConfig { return u.cfg }

// Store returns the store the uploader writes to.
func (u *ParallelUploader) Store() ObjectStore { return u.store }

// Upload uploads one item (its parts in parallel if it is large).
func (u *ParallelUploader) Upload(ctx context.Context, item Item) Result {
	return u.UploadAll(ctx, []Item{item})[0]
}

// UploadAll uploads items and returns one Result per item, in input
// order. It returns when every item finished. When ctx is cancelled, no new
// item or request starts, in-flight multipart uploads are aborted, and the
// unfinished items' results carry a CodeCanceled error.
func (u *ParallelUploader) UploadAll(ctx context.Context, items []Item) []Result {
	results := make([]Result, len(items))
	budget := &retryBudget{ratio: u.cfg.RetryBudgetRatio, min: int64(u.cfg.RetryBudgetMin)}
	// A fixed pool of workers takes items in input order; each writes
	// only its own items' results.
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(items) {
				return
			}
			if err := ctx.Err(); err != nil {
				results[i] = Result{Key: items[i].Key, Err: canceled("Upload", items[i].Key, err)}
				continue
			}
			start := time.Now()
			results[i] = u.uploadItem(ctx, budget, items[i])
			results[i].Duration = time.Since(start)
			if u.opts.onResult != nil {
				u.opts.onResult(results[i])
			}
		}
	}
	workers := min(u.cfg.Concurrency, len(items))
	if workers <= 1 {
		work()
		return results
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(work)
	}
	wg.Wait()
	return results
}

func (u *ParallelUploader) uploadItem(ctx context.Context, budget *retryBudget, it Item) Result {
	res := Result{Key: it.Key}
	if err := checkItem(it); err != nil {
		res.Err = err
		return res
	}
	if it.Size > u.cfg.MultipartThreshold {
		res.Multipart = true
		res.Info, res.Attempts, res.Err = u.uploadMultipart(ctx, budget, it)
		return res
	}
	opts := it.Opts
	if u.cfg.ContentMD5 && opts.ContentMD5 == nil {
		sum, err := md5Of(it.Body, 0, it.Size)
		if err != nil {
			res.Err = newError(string(OpPutObject), it.Key, CodeInvalidArgument, fmt.Errorf("read body: %w", err))
			return res
		}
		opts.ContentMD5 = sum
	}
	budget.request()
	res.Attempts, res.Err = u.retry(ctx, budget, string(OpPutObject), it.Key, func(ctx context.Context) error {
		info, err := u.store.PutObject(ctx, it.Key, io.NewSectionReader(it.Body, 0, it.Size), it.Size, opts)
		res.Info = info
		return err
	})
	return res
}

// md5Of returns the MD5 digest of size bytes of r from off.
func md5Of(r io.ReaderAt, off, size int64) ([]byte, error) {
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, off, size)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func checkItem(it Item) error {
	if err := checkKeySize("Upload", it.Key, it.Size); err != nil {
		return err
	}
	if it.Body == nil && it.Size > 0 {
		return invalidArg("Upload", it.Key, "body is nil but size is %d", it.Size)
	}
	return nil
}

func canceled(op, key string, err error) error {
	return &StoreError{Op: op, Key: key, Code: CodeCanceled, Err: err}
}

// Retry runs fn with the uploader's retry policy, for store operations
// the uploader has no method for (StatObject, DeleteObject, ListObjects):
// one request slot per attempt, retries of retryable errors only, at most
// MaxRetries, backoff with full jitter and Retry-After, and a retry budget
// of its own. It returns the number of attempts made and fn's last error
// (an *AttemptsError when retries ran out).
func (u *ParallelUploader) Retry(ctx context.Context, op, key string, fn func(ctx context.Context) error) (int, error) {
	budget := &retryBudget{ratio: u.cfg.RetryBudgetRatio, min: int64(u.cfg.RetryBudgetMin)}
	budget.request()
	return u.retry(ctx, budget, op, key, fn)
}

// retry runs fn, one request slot per attempt, until it succeeds, fails
// permanently, MaxRetries or the budget is used up, or ctx ends. It returns
// the number of attempts made.
func (u *ParallelUploader) retry(ctx context.Context, budget *retryBudget, op, key string, fn func(context.Context) error) (int, error) {
	for attempt := 0; ; attempt++ {
		if err := u.slots.Acquire(ctx, 1); err != nil {
			return attempt, canceled(op, key, err)
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if u.cfg.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, u.cfg.AttemptTimeout)
		}
		err := fn(actx)
		cancel()
		u.slots.Release(1)
		if err == nil {
			return attempt + 1, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			if CodeOf(err) == CodeCanceled {
				return attempt + 1, err
			}
			return attempt + 1, canceled(op, key, errors.Join(cerr, err))
		}
		c := Classify(err)
		if !c.Retryable {
			return attempt + 1, err
		}
		if attempt >= u.cfg.MaxRetries {
			return attempt + 1, &AttemptsError{Op: op, Key: key, Attempts: attempt + 1, Err: err}
		}
		if !budget.allow() {
			return attempt + 1, &AttemptsError{Op: op, Key: key, Attempts: attempt + 1, BudgetExhausted: true, Err: err}
		}
		wait := u.backoff(attempt, c.RetryAfter)
		if u.opts.onRetry != nil {
			u.opts.onRetry(RetryEvent{Op: op, Key: key, Attempt: attempt + 1, Wait: wait, Err: err})
		}
		u.opts.logger.DebugContext(ctx, "uploader: retrying", "op", op, "key", key, "attempt", attempt+1,
			"code", string(c.Code), "wait", wait, "err", err)
		if serr := u.opts.sleep(ctx, wait); serr != nil {
			return attempt + 1, canceled(op, key, errors.Join(serr, err))
		}
	}
}

// backoff returns the wait before retry number attempt+1: full jitter over
// min(cap, base*2^attempt), but at least the server's Retry-After (capped
// at MaxRetryAfter).
func (u *ParallelUploader) backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := u.cfg.BackoffCap
	// base<<attempt, unless that reaches the cap (compared without
	// overflowing).
	if attempt < 63 && u.cfg.BackoffBase <= u.cfg.BackoffCap>>attempt {
		ceiling = u.cfg.BackoffBase << attempt
	}
	wait := u.opts.jitter(ceiling)
	if ra := min(retryAfter, u.cfg.MaxRetryAfter); ra > wait {
		wait = ra
	}
	return wait
}

// retryBudget allows min + ratio x requests retries per call.
type retryBudget struct {
	ratio    float64
	min      int64
	requests atomic.Int64
	retries  atomic.Int64
}

func (b *retryBudget) request() { b.requests.Add(1) }

func (b *retryBudget) allow() bool {
	for {
		r := b.retries.Load()
		limit := b.min + int64(b.ratio*float64(b.requests.Load()))
		if r >= limit {
			return false
		}
		if b.retries.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// uploadMultipart uploads a large item as parallel parts. On any failure
// or cancellation the upload is aborted (with a fresh, bounded context).
func (u *ParallelUploader) uploadMultipart(ctx context.Context, budget *retryBudget, it Item) (ObjectInfo, int, error) {
	var attempts atomic.Int64
	count := func(n int) { attempts.Add(int64(n)) }

	var uploadID string
	budget.request()
	n, err := u.retry(ctx, budget, string(OpInitiateMultipart), it.Key, func(ctx context.Context) error {
		id, err := u.store.InitiateMultipart(ctx, it.Key, it.Opts)
		uploadID = id
		return err
	})
	count(n)
	if err != nil {
		return ObjectInfo{}, int(attempts.Load()), err
	}

	nparts := int((it.Size + u.cfg.PartSize - 1) / u.cfg.PartSize)
	parts := make([]Part, nparts)
	g, gctx := errgroup.WithContext(ctx)
	for i := range nparts {
		off := int64(i) * u.cfg.PartSize
		size := min(u.cfg.PartSize, it.Size-off)
		g.Go(func() error {
			var popts PartOptions
			if u.cfg.ContentMD5 {
				sum, err := md5Of(it.Body, off, size)
				if err != nil {
					return newError(string(OpUploadPart), it.Key, CodeInvalidArgument, fmt.Errorf("read part %d: %w", i+1, err))
				}
				popts.ContentMD5 = sum
			}
			budget.request()
			n, err := u.retry(gctx, budget, string(OpUploadPart), it.Key, func(ctx context.Context) error {
				p, err := u.store.UploadPart(ctx, it.Key, uploadID, i+1, io.NewSectionReader(it.Body, off, size), size, popts)
				parts[i] = p
				return err
			})
			count(n)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			err = canceled(string(OpUploadPart), it.Key, errors.Join(ctx.Err(), err))
		}
		return ObjectInfo{}, int(attempts.Load()), u.abort(ctx, it.Key, uploadID, err)
	}

	var info ObjectInfo
	budget.request()
	tries := 0
	n, err = u.retry(ctx, budget, string(OpCompleteMultipart), it.Key, func(ctx context.Context) error {
		tries++
		var err error
		info, err = u.store.CompleteMultipart(ctx, it.Key, uploadID, parts)
		if err != nil && tries > 1 && errors.Is(err, ErrNotFound) {
			// An earlier attempt may have completed the upload and lost
			// only its response: then the object has the multipart ETag.
			if st, serr := u.store.StatObject(ctx, it.Key); serr == nil && st.ETag == multipartETag(parts) {
				info = st
				return nil
			}
		}
		return err
	})
	count(n)
	if err != nil {
		return ObjectInfo{}, int(attempts.Load()), u.abort(ctx, it.Key, uploadID, err)
	}
	return info, int(attempts.Load()), nil
}

// multipartETag is S3's ETag of a completed multipart object: the MD5 of
// the concatenated binary part MD5s, a dash, the part count.
func multipartETag(parts []Part) string {
	var buf []byte
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return ""
		}
		buf = append(buf, sum...)
	}
	sum := md5.Sum(buf)
	return fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:]), len(parts))
}

// abort aborts an upload after cause made it fail, retrying retryable
// errors a few times under AbortTimeout even if ctx is done. A NotFound
// answer means there is nothing left to abort. It returns cause, joined
// with the abort's error if the abort failed.
func (u *ParallelUploader) abort(ctx context.Context, key, uploadID string, cause error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.cfg.AbortTimeout)
	defer cancel()
	var err error
	for attempt := 0; attempt <= u.cfg.MaxRetries+2; attempt++ {
		err = u.store.AbortMultipart(actx, key, uploadID)
		if err == nil || errors.Is(err, ErrNotFound) {
			return cause
		}
		if !IsRetryable(err) || actx.Err() != nil {
			break
		}
		if u.opts.sleep(actx, u.backoff(attempt, Classify(err).RetryAfter)) != nil {
			break
		}
	}
	u.opts.logger.WarnContext(ctx, "uploader: abort of multipart upload failed; it stays incomplete",
		"key", key, "upload_id", uploadID, "err", err)
	return errors.Join(cause, fmt.Errorf("abort of upload %s also failed: %w", uploadID, err))
}

// Errors returns the non-nil errors of results, in order.
func Errors(results []Result) []error {
	var out []error
	for _, r := range results {
		if r.Err != nil {
			out = append(out, r.Err)
		}
	}
	return out
}
