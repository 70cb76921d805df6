package uploader

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an injected Sleeper that records the waits instead of
// waiting; onSleep, if set, runs first (tests cancel contexts from it).
type recorder struct {
	mu      sync.Mutex
	waits   []time.Duration
	onSleep func()
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	f := r.onSleep
	r.mu.Unlock()
	if f != nil {
		f()
	}
	return ctx.Err()
}

func (r *recorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// fullCeiling is a Jitter that always draws the ceiling, exposing the
// exponential schedule.
func fullCeiling(c time.Duration) time.Duration { return c }

func testParallelConfig() ParallelConfig {
	c := DefaultParallelConfig()
	c.Concurrency = 4
	c.MaxRetries = 3
	c.BackoffBase = 10 * time.Millisecond
	c.BackoffCap = 80 * time.Millisecond
	c.PartSize = MinPartSize
	c.MultipartThreshold = MinPartSize
	return c
}

func newUploader(t *testing.T, s ObjectStore, cfg ParallelConfig, opts ...Option) *ParallelUploader {
	t.Helper()
	u, err := NewParallelUploader(s, cfg, opts...)
	require.NoError(t, err)
	return u
}

// payload returns size deterministic pseudo-random bytes for item i.
func payload(i, size int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i))
	binary.LittleEndian.PutUint64(seed[8:], uint64(size))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func TestUploadAllResultsInInputOrder(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultAccessDenied, KeyPattern: "*/bad-*"})
	require.NoError(t, err)
	rec := &recorder{}
	u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
	var items []Item
	for i := range 40 {
		key := fmt.Sprintf("t/good-%02d", i)
		if i%7 == 3 {
			key = fmt.Sprintf("t/bad-%02d", i)
		}
		items = append(items, BytesItem(key, payload(i, 100+i)))
	}
	items = append(items, Item{Key: "", Body: bytes.NewReader(nil)})

	res := u.UploadAll(context.Background(), items)
	require.Len(t, res, len(items))
	for i, r := range res {
		require.Equal(t, items[i].Key, r.Key, "result %d", i)
		switch {
		case items[i].Key == "":
			assert.ErrorIs(t, r.Err, ErrInvalidArgument)
			assert.Zero(t, r.Attempts)
		case i%7 == 3:
			assert.ErrorIs(t, r.Err, ErrAccessDenied)
			assert.Equal(t, 1, r.Attempts, "403 is never retried")
		default:
			require.NoError(t, r.Err)
			got, ok := s.ObjectData(r.Key)
			require.True(t, ok)
			assert.Equal(t, payload(i, 100+i), got)
			assert.Equal(t, etagOf(got), r.Info.ETag)
		}
	}
	assert.Empty(t, rec.recorded(), "nothing retryable happened")
	assert.Len(t, Errors(res), 7)
}

func TestRetriesOnlyRetryableErrors(t *testing.T) {
	tests := []struct {
		name     string
		fault    Fault
		attempts int
		wantErr  Code
		waits    int
	}{
		{"slowdown twice then ok", Fault{Kind: FaultSlowDown, Times: 2}, 3, "", 2},
		{"internal once", Fault{Kind: FaultInternal, Times: 1}, 2, "", 1},
		{"timeout once", Fault{Kind: FaultTimeout, Times: 1}, 2, "", 1},
		{"reset once", Fault{Kind: FaultConnReset, Times: 1}, 2, "", 1},
		{"partial upload once", Fault{Kind: FaultPartial, Op: OpPutObject, Times: 1, Bytes: 10}, 2, "", 1},
		{"access denied", Fault{Kind: FaultAccessDenied, Times: 1}, 1, CodeAccessDenied, 0},
		{"internal forever", Fault{Kind: FaultInternal}, 4, CodeInternal, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			_, err := s.Inject(tc.fault)
			require.NoError(t, err)
			rec := &recorder{}
			u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
			r := u.Upload(context.Background(), BytesItem("k", payload(1, 64)))
			assert.Equal(t, tc.attempts, r.Attempts)
			assert.Len(t, rec.recorded(), tc.waits)
			assert.Equal(t, int64(tc.attempts), s.Metrics().Ops[OpPutObject].Calls)
			if tc.wantErr == "" {
				require.NoError(t, r.Err)
				got, _ := s.ObjectData("k")
				assert.Equal(t, payload(1, 64), got)
				return
			}
			require.Error(t, r.Err)
			assert.Equal(t, tc.wantErr, CodeOf(r.Err))
			if tc.attempts > 1 {
				var ae *AttemptsError
				require.ErrorAs(t, r.Err, &ae)
				assert.Equal(t, tc.attempts, ae.Attempts)
				assert.False(t, ae.BudgetExhausted)
			}
		})
	}
}

func TestRetryBudgetStopsRetries(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultInternal, Op: OpPutObject})
	require.NoError(t, err)
	cfg := testParallelConfig()
	cfg.Concurrency = 1
	cfg.MaxRetries = 5
	cfg.RetryBudgetMin = 3
	cfg.RetryBudgetRatio = 0.1 // 10 requests -> one more retry
	rec := &recorder{}
	u := newUploader(t, s, cfg, WithSleeper(rec.sleep))
	items := make([]Item, 10)
	for i := range items {
		items[i] = BytesItem(fmt.Sprintf("k%d", i), []byte("x"))
	}
	res := u.UploadAll(context.Background(), items)
	budgetStopped := 0
	for _, r := range res {
		require.Error(t, r.Err)
		if assert.ErrorIs(t, r.Err, ErrRetryBudgetExhausted) {
			budgetStopped++
		}
	}
	assert.Equal(t, 10, budgetStopped, "with MaxRetries 5 only the budget can stop these")
	// The budget is min 3 + 0.1 x 10 requests = 4 retries in all; the
	// first item used them before the other nine were requested, so only
	// 3 + one per request made by then.
	retries := len(rec.recorded())
	assert.GreaterOrEqual(t, retries, 3)
	assert.LessOrEqual(t, retries, 4)
	assert.Equal(t, int64(10+retries), s.Metrics().Ops[OpPutObject].Calls)
}

func TestBackoffScheduleGrowsAndCaps(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultInternal})
	require.NoError(t, err)
	cfg := testParallelConfig()
	cfg.MaxRetries = 6
	rec := &recorder{}
	u := newUploader(t, s, cfg, WithSleeper(rec.sleep), WithJitter(fullCeiling))
	r := u.Upload(context.Background(), BytesItem("k", []byte("x")))
	require.Error(t, r.Err)
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms}, rec.recorded())
}

func TestBackoffIsJittered(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultInternal})
	require.NoError(t, err)
	cfg := testParallelConfig()
	cfg.MaxRetries = 40
	cfg.RetryBudgetMin = 100
	rec := &recorder{}
	var ceilings []time.Duration
	u := newUploader(t, s, cfg, WithSleeper(rec.sleep), WithJitter(func(c time.Duration) time.Duration {
		ceilings = append(ceilings, c)
		return time.Duration(rand.Int64N(int64(c) + 1))
	}))
	r := u.Upload(context.Background(), BytesItem("k", []byte("x")))
	require.Error(t, r.Err)
	waits := rec.recorded()
	require.Len(t, waits, 40)
	distinct := map[time.Duration]bool{}
	for i, w := range waits {
		assert.GreaterOrEqual(t, w, time.Duration(0))
		assert.LessOrEqual(t, w, ceilings[i])
		distinct[w] = true
	}
	assert.Greater(t, len(distinct), 20, "full jitter draws different waits")

	// The default jitter (no WithJitter) stays within the ceiling too.
	rec2 := &recorder{}
	u2 := newUploader(t, s, cfg, WithSleeper(rec2.sleep))
	require.Error(t, u2.Upload(context.Background(), BytesItem("k", []byte("x"))).Err)
	var below int
	for _, w := range rec2.recorded() {
		assert.LessOrEqual(t, w, cfg.BackoffCap)
		if w < cfg.BackoffCap*9/10 {
			below++
		}
	}
	assert.Positive(t, below, "waits are spread below the cap")
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		want       time.Duration
	}{
		{"longer than backoff", 3 * time.Second, 3 * time.Second},
		{"capped", time.Hour, 30 * time.Second},
		{"shorter than backoff", time.Millisecond, 10 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			_, err := s.Inject(Fault{Kind: FaultSlowDown, Times: 1, RetryAfter: tc.retryAfter})
			require.NoError(t, err)
			rec := &recorder{}
			cfg := testParallelConfig()
			cfg.MaxRetryAfter = 30 * time.Second
			u := newUploader(t, s, cfg, WithSleeper(rec.sleep), WithJitter(fullCeiling))
			r := u.Upload(context.Background(), BytesItem("k", []byte("x")))
			require.NoError(t, r.Err)
			assert.Equal(t, []time.Duration{tc.want}, rec.recorded())
		})
	}
}

func TestCancellationStopsNewWork(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultSlowDown, Times: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{onSleep: cancel}
	cfg := testParallelConfig()
	cfg.Concurrency = 1
	u := newUploader(t, s, cfg, WithSleeper(rec.sleep))
	items := make([]Item, 6)
	for i := range items {
		items[i] = BytesItem(fmt.Sprintf("k%d", i), []byte("x"))
	}
	res := u.UploadAll(ctx, items)
	for i, r := range res {
		assert.Equal(t, items[i].Key, r.Key)
		require.Error(t, r.Err, "item %d", i)
		assert.Equal(t, CodeCanceled, CodeOf(r.Err), "item %d", i)
		assert.ErrorIs(t, r.Err, context.Canceled)
	}
	assert.Equal(t, int64(1), s.Metrics().Ops[OpPutObject].Calls, "no request after the cancel")
	assert.Equal(t, 0, s.Len())
}

func TestConcurrencyIsBounded(t *testing.T) {
	tests := []struct {
		name    string
		enabled bool
		conc    int
		max     int64
	}{
		{"parallel 4", true, 4, 4},
		{"disabled is sequential", false, 8, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gs := &gaugeStore{ObjectStore: NewMemStore(WithLatency(Latency{Base: time.Millisecond}))}
			cfg := testParallelConfig()
			cfg.Enabled = tc.enabled
			cfg.Concurrency = tc.conc
			u := newUploader(t, gs, cfg)
			items := make([]Item, 40)
			for i := range items {
				items[i] = BytesItem(fmt.Sprintf("k%d", i), []byte("x"))
			}
			for _, r := range u.UploadAll(context.Background(), items) {
				require.NoError(t, r.Err)
			}
			assert.LessOrEqual(t, gs.max.Load(), tc.max)
			assert.Positive(t, gs.max.Load())
		})
	}
}

// gaugeStore tracks the maximum number of PutObject calls in flight.
type gaugeStore struct {
	ObjectStore
	cur, max atomic.Int64
}

func (g *gaugeStore) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	n := g.cur.Add(1)
	defer g.cur.Add(-1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			break
		}
	}
	return g.ObjectStore.PutObject(ctx, key, data, size, opts)
}

func TestMultipartUpload(t *testing.T) {
	s := NewMemStore()
	u := newUploader(t, s, testParallelConfig())
	data := payload(9, 2*MinPartSize+12345)
	r := u.Upload(context.Background(), BytesItem("big/obj", data))
	require.NoError(t, r.Err)
	assert.True(t, r.Multipart)
	assert.Equal(t, 1+3+1, r.Attempts)
	got, ok := s.ObjectData("big/obj")
	require.True(t, ok)
	assert.True(t, bytes.Equal(data, got))
	assert.Equal(t, int64(len(data)), r.Info.Size)
	assert.Regexp(t, `^[0-9a-f]{32}-3$`, r.Info.ETag)
	assert.Equal(t, int64(3), s.Metrics().Ops[OpUploadPart].Calls)
}

func TestFailedPartAbortsUpload(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
	}{
		{"permanent part error", Fault{Kind: FaultAccessDenied, Op: OpUploadPart, After: 1, Times: 1}},
		{"retryable part error beyond retries", Fault{Kind: FaultInternal, Op: OpUploadPart}},
		{"complete fails", Fault{Kind: FaultAccessDenied, Op: OpCompleteMultipart}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			_, err := s.Inject(tc.fault)
			require.NoError(t, err)
			rec := &recorder{}
			u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
			r := u.Upload(context.Background(), BytesItem("big", payload(3, 2*MinPartSize+1)))
			require.Error(t, r.Err)
			ups, err := s.ListMultipartUploads(context.Background(), "")
			require.NoError(t, err)
			assert.Empty(t, ups, "no incomplete upload left behind")
			assert.Equal(t, int64(1), s.Metrics().Ops[OpAbortMultipart].Calls)
			_, ok := s.ObjectData("big")
			assert.False(t, ok)
		})
	}
}

func TestAbortIsRetried(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultAccessDenied, Op: OpUploadPart, Times: 1})
	require.NoError(t, err)
	_, err = s.Inject(Fault{Kind: FaultSlowDown, Op: OpAbortMultipart, Times: 2})
	require.NoError(t, err)
	rec := &recorder{}
	u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
	r := u.Upload(context.Background(), BytesItem("big", payload(3, MinPartSize+1)))
	require.ErrorIs(t, r.Err, ErrAccessDenied)
	ups, err := s.ListMultipartUploads(context.Background(), "")
	require.NoError(t, err)
	assert.Empty(t, ups)
	assert.Equal(t, int64(3), s.Metrics().Ops[OpAbortMultipart].Calls)
}

func TestCancellationAbortsMultipart(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultSlowDown, Op: OpUploadPart, Times: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{onSleep: cancel}
	u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
	r := u.Upload(ctx, BytesItem("big", payload(4, 3*MinPartSize)))
	require.Error(t, r.Err)
	assert.Equal(t, CodeCanceled, CodeOf(r.Err))
	ups, err := s.ListMultipartUploads(context.Background(), "")
	require.NoError(t, err)
	assert.Empty(t, ups, "the in-flight upload was aborted")
	assert.Equal(t, int64(0), s.Metrics().Ops[OpCompleteMultipart].Calls)
}

// lostCompleteStore completes the first CompleteMultipart but reports a
// connection reset, like a response lost on the way back.
type lostCompleteStore struct {
	ObjectStore
	lost atomic.Bool
}

func (l *lostCompleteStore) CompleteMultipart(ctx context.Context, key, id string, parts []Part) (ObjectInfo, error) {
	info, err := l.ObjectStore.CompleteMultipart(ctx, key, id, parts)
	if err == nil && l.lost.CompareAndSwap(false, true) {
		return ObjectInfo{}, newError("CompleteMultipart", key, CodeConnection, fmt.Errorf("response lost"))
	}
	return info, err
}

func TestCompleteWithLostResponse(t *testing.T) {
	s := NewMemStore()
	ls := &lostCompleteStore{ObjectStore: s}
	rec := &recorder{}
	u := newUploader(t, ls, testParallelConfig(), WithSleeper(rec.sleep))
	data := payload(5, MinPartSize+10)
	r := u.Upload(context.Background(), BytesItem("big", data))
	require.NoError(t, r.Err)
	got, ok := s.ObjectData("big")
	require.True(t, ok)
	assert.True(t, bytes.Equal(data, got))
	assert.Equal(t, int64(0), s.Metrics().Ops[OpAbortMultipart].Calls)
}

func TestParallelConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*ParallelConfig)
		field  string
	}{
		{"concurrency", func(c *ParallelConfig) { c.Concurrency = 0 }, "parallel.concurrency"},
		{"retries", func(c *ParallelConfig) { c.MaxRetries = -1 }, "parallel.max_retries"},
		{"base", func(c *ParallelConfig) { c.BackoffBase = 0 }, "parallel.backoff_base"},
		{"cap", func(c *ParallelConfig) { c.BackoffCap = time.Millisecond }, "parallel.backoff_cap"},
		{"part size", func(c *ParallelConfig) { c.PartSize = 1 << 20 }, "parallel.part_size"},
		{"threshold", func(c *ParallelConfig) { c.MultipartThreshold = c.PartSize - 1 }, "parallel.multipart_threshold"},
		{"budget", func(c *ParallelConfig) { c.RetryBudgetRatio = -1 }, "parallel.retry_budget_ratio"},
		{"abort timeout", func(c *ParallelConfig) { c.AbortTimeout = 0 }, "parallel.abort_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultParallelConfig()
			tc.mutate(&cfg)
			_, err := NewParallelUploader(NewMemStore(), cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.field)
			assert.Equal(t, CodeInvalidConfig, CodeOf(err))
		})
	}
	require.NoError(t, DefaultConfig().Validate())
	_, err := NewParallelUploader(nil, DefaultParallelConfig())
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestConfigValidateReportsAllFields(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Batch.Size = 0
	cfg.Batch.FlushInterval = 0
	cfg.Parallel.Concurrency = -2
	cfg.Pool.MaxIdleConns = 0
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, f := range []string{"batch.batch_size", "batch.flush_interval", "parallel.concurrency", "pool.pool_size"} {
		assert.Contains(t, err.Error(), f)
	}
}

func TestRetryHookAndGenericRetry(t *testing.T) {
	s := NewMemStore()
	put(t, s, "k", []byte("x"))
	_, err := s.Inject(Fault{Kind: FaultSlowDown, Op: OpStatObject, Times: 2, RetryAfter: time.Second})
	require.NoError(t, err)
	rec := &recorder{}
	var events []RetryEvent
	u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep), WithJitter(fullCeiling),
		WithRetryHook(func(e RetryEvent) { events = append(events, e) }))
	var info ObjectInfo
	n, err := u.Retry(context.Background(), "stat", "k", func(ctx context.Context) error {
		var err error
		info, err = s.StatObject(ctx, "k")
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, int64(1), info.Size)
	require.Len(t, events, 2)
	for i, e := range events {
		assert.Equal(t, "stat", e.Op)
		assert.Equal(t, "k", e.Key)
		assert.Equal(t, i+1, e.Attempt)
		assert.Equal(t, time.Second, e.Wait, "Retry-After beats the 10-20 ms backoff")
		assert.ErrorIs(t, e.Err, ErrSlowDown)
	}

	n, err = u.Retry(context.Background(), "delete", "k", func(ctx context.Context) error {
		_, err := s.StatObject(ctx, "missing")
		return err
	})
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, 1, n)
	assert.Len(t, events, 2, "no retry of a permanent error")
}

func TestBackoffNeverOverflows(t *testing.T) {
	cfg := testParallelConfig()
	cfg.BackoffBase = 100 * time.Millisecond
	cfg.BackoffCap = time.Hour
	u := newUploader(t, NewMemStore(), cfg, WithJitter(fullCeiling))
	prev := time.Duration(0)
	for attempt := range 100 {
		w := u.backoff(attempt, 0)
		require.GreaterOrEqual(t, w, prev, "attempt %d", attempt)
		require.LessOrEqual(t, w, time.Hour, "attempt %d", attempt)
		prev = w
	}
	assert.Equal(t, time.Hour, prev)
}
