package uploader

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// quiet discards the uploaders' logs in tests that fail on purpose.
func quiet() Option { return WithLogger(slog.New(slog.DiscardHandler)) }

func testBatchConfig() BatchConfig {
	return BatchConfig{Enabled: true, Size: 3, MaxBytes: 1 << 20, FlushInterval: time.Hour}
}

func newBatcher(t *testing.T, s ObjectStore, cfg BatchConfig, opts ...Option) *BatchUploader {
	t.Helper()
	rec := &recorder{}
	up := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep), quiet())
	b, err := NewBatchUploader(up, cfg, append([]Option{quiet()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func add(t *testing.T, b *BatchUploader, key string, data []byte) *Pending {
	t.Helper()
	p, err := b.Add(key, data)
	require.NoError(t, err)
	return p
}

func isDone(p *Pending) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}

func waitOK(t *testing.T, p *Pending) Location {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	loc, err := p.Wait(ctx)
	require.NoError(t, err)
	return loc
}

func TestBatchFlushesOnCount(t *testing.T) {
	s := NewMemStore()
	b := newBatcher(t, s, testBatchConfig())
	p1 := add(t, b, "t/db/c/snap-1", []byte("one"))
	p2 := add(t, b, "t/db/c/snap-2", []byte("two!"))
	assert.False(t, isDone(p1), "two of three members: not flushed")
	assert.Equal(t, 2, b.Queued())
	p3 := add(t, b, "t/db/c/snap-3", []byte{})

	locs := []Location{waitOK(t, p1), waitOK(t, p2), waitOK(t, p3)}
	assert.Equal(t, int64(1), s.Metrics().Ops[OpPutObject].Calls, "one request for three snapshots")
	for i, want := range [][]byte{[]byte("one"), []byte("two!"), {}} {
		assert.Equal(t, locs[0].PackKey, locs[i].PackKey)
		assert.Regexp(t, `^t/db/c/_batch/.*\.pack$`, locs[i].PackKey)
		got, err := ReadMember(context.Background(), s, locs[i])
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	idx, err := ReadPackIndex(context.Background(), s, locs[0].PackKey)
	require.NoError(t, err)
	require.Len(t, idx.Members, 3)
	loc, ok := idx.Lookup(locs[0].PackKey, "t/db/c/snap-2")
	require.True(t, ok)
	assert.Equal(t, locs[1], loc)
	info, err := s.StatObject(context.Background(), locs[0].PackKey)
	require.NoError(t, err)
	assert.Equal(t, "3", info.Metadata["tierchaos-members"])
}

func TestBatchFlushesOnBytes(t *testing.T) {
	s := NewMemStore()
	cfg := testBatchConfig()
	cfg.Size = 100
	cfg.MaxBytes = 100
	b := newBatcher(t, s, cfg)
	p1 := add(t, b, "p/a", make([]byte, 60))
	assert.False(t, isDone(p1))
	p2 := add(t, b, "p/b", make([]byte, 60))
	waitOK(t, p1)
	waitOK(t, p2)
	assert.Equal(t, int64(1), s.Metrics().Ops[OpPutObject].Calls)
}

func TestBatchGroupsByPrefix(t *testing.T) {
	s := NewMemStore()
	cfg := testBatchConfig()
	cfg.Size = 2
	b := newBatcher(t, s, cfg)
	pa := add(t, b, "x/1", []byte("a"))
	pb := add(t, b, "y/1", []byte("b"))
	pc := add(t, b, "nodir", []byte("c"))
	assert.Equal(t, 3, b.Queued(), "three prefixes, none full")
	pa2 := add(t, b, "x/2", []byte("a2"))
	la, la2 := waitOK(t, pa), waitOK(t, pa2)
	assert.Equal(t, la.PackKey, la2.PackKey)
	require.NoError(t, b.Flush(context.Background()))
	lb, lc := waitOK(t, pb), waitOK(t, pc)
	assert.NotEqual(t, la.PackKey, lb.PackKey)
	assert.Regexp(t, `^_batch/`, lc.PackKey)
	assert.Equal(t, int64(3), s.Metrics().Ops[OpPutObject].Calls)
}

func TestBatchFlushesOnAge(t *testing.T) {
	s := NewMemStore()
	clock := newFakeClock()
	cfg := testBatchConfig()
	cfg.Size = 100
	cfg.FlushInterval = time.Minute
	b := newBatcher(t, s, cfg, WithNow(clock.Now), withTick(time.Millisecond))

	p := add(t, b, "t/snap", []byte("old"))
	b.flushDue(clock.Now().Add(59 * time.Second))
	assert.Equal(t, 1, b.Queued(), "younger than the interval: stays queued")
	assert.False(t, isDone(p))

	clock.Advance(time.Minute)
	// The background flusher (ticking every millisecond) sees the age.
	require.Eventually(t, func() bool { return isDone(p) }, 10*time.Second, time.Millisecond)
	waitOK(t, p)
	assert.Equal(t, 0, b.Queued())
}

func TestBatchFlushesOnClose(t *testing.T) {
	s := NewMemStore()
	cfg := testBatchConfig()
	cfg.Size = 100
	rec := &recorder{}
	b, err := NewBatchUploader(newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep)), cfg)
	require.NoError(t, err)
	var ps []*Pending
	for i := range 5 {
		ps = append(ps, add(t, b, fmt.Sprintf("c/%d", i), []byte{byte(i)}))
	}
	require.NoError(t, b.Close(context.Background()))
	for i, p := range ps {
		require.True(t, isDone(p), "Close returns after every member is durable")
		got, err := ReadMember(context.Background(), s, waitOK(t, p))
		require.NoError(t, err)
		assert.Equal(t, []byte{byte(i)}, got)
	}
	_, err = b.Add("c/late", []byte("x"))
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, b.Close(context.Background()), "second Close is a no-op")
}

func TestBatchReducesRequests(t *testing.T) {
	s := NewMemStore()
	cfg := testBatchConfig()
	cfg.Size = 10
	b := newBatcher(t, s, cfg)
	var ps []*Pending
	for i := range 100 {
		ps = append(ps, add(t, b, fmt.Sprintf("t/db/c/snap-%03d", i), payload(i, 1024)))
	}
	require.NoError(t, b.Flush(context.Background()))
	for i, p := range ps {
		got, err := ReadMember(context.Background(), s, waitOK(t, p))
		require.NoError(t, err)
		require.Equal(t, payload(i, 1024), got)
	}
	assert.Equal(t, int64(10), s.Metrics().Ops[OpPutObject].Calls)
	st := b.Stats()
	assert.Equal(t, BatchStats{Batches: 10, Members: 100, Bytes: st.Bytes}, st)
	assert.Greater(t, st.Bytes, int64(100*1024))
}

func TestBatchFailureReportedPerMember(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultAccessDenied, Op: OpPutObject, Times: 1})
	require.NoError(t, err)
	b := newBatcher(t, s, testBatchConfig())
	ps := []*Pending{add(t, b, "f/1", []byte("a")), add(t, b, "f/2", []byte("b")), add(t, b, "f/3", []byte("c"))}
	for _, p := range ps {
		_, err := p.Wait(context.Background())
		require.ErrorIs(t, err, ErrAccessDenied)
		assert.Contains(t, err.Error(), "3 members")
	}
	assert.Equal(t, int64(1), b.Stats().FailedBatches)
	assert.Equal(t, 0, s.Len())
}

func TestBatchRetriesFailedFlush(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultSlowDown, Op: OpPutObject, Times: 2})
	require.NoError(t, err)
	b := newBatcher(t, s, testBatchConfig())
	ps := []*Pending{add(t, b, "r/1", []byte("a")), add(t, b, "r/2", []byte("b")), add(t, b, "r/3", []byte("c"))}
	for _, p := range ps {
		waitOK(t, p)
	}
	assert.Equal(t, int64(3), s.Metrics().Ops[OpPutObject].Calls)
}

// gateStore blocks PutObject until the gate is opened.
type gateStore struct {
	ObjectStore
	entered chan struct{}
	gate    chan struct{}
}

func (g *gateStore) PutObject(ctx context.Context, key string, data io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ObjectInfo{}, canceled("PutObject", key, ctx.Err())
	}
	return g.ObjectStore.PutObject(ctx, key, data, size, opts)
}

func TestBatchNotAcknowledgedBeforeDurable(t *testing.T) {
	s := NewMemStore()
	gs := &gateStore{ObjectStore: s, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b := newBatcher(t, gs, testBatchConfig())
	ps := []*Pending{add(t, b, "g/1", []byte("a")), add(t, b, "g/2", []byte("b")), add(t, b, "g/3", []byte("c"))}
	<-gs.entered // the pack PUT is in flight
	for _, p := range ps {
		assert.False(t, isDone(p), "not acknowledged while the PUT is in flight")
	}
	close(gs.gate)
	for _, p := range ps {
		waitOK(t, p)
	}
	assert.Equal(t, 1, s.Len())
}

func TestBatchCloseDeadlineFailsMembers(t *testing.T) {
	s := NewMemStore()
	gs := &gateStore{ObjectStore: s, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	b := newBatcher(t, gs, testBatchConfig())
	ps := []*Pending{add(t, b, "d/1", []byte("a")), add(t, b, "d/2", []byte("b")), add(t, b, "d/3", []byte("c"))}
	<-gs.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Close(ctx)
	require.Error(t, err)
	assert.Equal(t, CodeCanceled, CodeOf(err))
	for _, p := range ps {
		require.True(t, isDone(p), "Close resolves every member before it returns")
		_, err := p.Wait(context.Background())
		assert.Equal(t, CodeCanceled, CodeOf(err))
	}
	assert.Equal(t, 0, s.Len())
}

func TestBatchDisabledUploadsEachMember(t *testing.T) {
	s := NewMemStore()
	cfg := testBatchConfig()
	cfg.Enabled = false
	b := newBatcher(t, s, cfg)
	loc, err := b.Put(context.Background(), "u/one", []byte("solo"))
	require.NoError(t, err)
	assert.Equal(t, Location{Key: "u/one", PackKey: "u/one", Offset: 0, Length: 4, Checksum: loc.Checksum}, loc)
	got, ok := s.ObjectData("u/one")
	require.True(t, ok)
	assert.Equal(t, "solo", string(got))
	got, err = ReadMember(context.Background(), s, loc)
	require.NoError(t, err)
	assert.Equal(t, "solo", string(got))
}

func TestReadMemberDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	b := newBatcher(t, s, testBatchConfig())
	p := add(t, b, "k/1", []byte("precious bytes"))
	require.NoError(t, b.Flush(ctx))
	loc := waitOK(t, p)

	_, err := s.Inject(Fault{Kind: FaultCorrupt, Op: OpGetObjectRange, Times: 1})
	require.NoError(t, err)
	_, err = ReadMember(ctx, s, loc)
	require.ErrorIs(t, err, ErrChecksumMismatch)
	assert.Contains(t, err.Error(), loc.PackKey)
	assert.Contains(t, err.Error(), "k/1")

	_, err = s.Inject(Fault{Kind: FaultPartial, Op: OpGetObjectRange, Times: 1, Bytes: 3})
	require.NoError(t, err)
	_, err = ReadMember(ctx, s, loc)
	assert.Equal(t, CodeTruncated, CodeOf(err))

	got, err := ReadMember(ctx, s, loc)
	require.NoError(t, err)
	assert.Equal(t, "precious bytes", string(got))
}

func TestPackRoundTripManyMembers(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	var in []packInput
	for i := range 1500 { // offsets with many digits: the index length must converge
		in = append(in, packInput{key: fmt.Sprintf("m/%d", i), data: payload(i, i%97)})
	}
	buf, locs, err := encodePack("m/_batch/p.pack", in)
	require.NoError(t, err)
	put(t, s, "m/_batch/p.pack", buf)
	idx, err := ReadPackIndex(ctx, s, "m/_batch/p.pack")
	require.NoError(t, err)
	require.Len(t, idx.Members, len(in))
	for i, m := range in {
		l, ok := idx.Lookup("m/_batch/p.pack", m.key)
		require.True(t, ok)
		require.Equal(t, locs[i], l)
		got, err := ReadMember(ctx, s, l)
		require.NoError(t, err)
		require.Equal(t, m.data, got)
	}
}

func TestReadPackIndexRejectsNonPack(t *testing.T) {
	s := NewMemStore()
	put(t, s, "plain", []byte("just some object bytes"))
	_, err := ReadPackIndex(context.Background(), s, "plain")
	require.ErrorIs(t, err, ErrChecksumMismatch)
	_, err = ReadPackIndex(context.Background(), s, "missing")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestBatchConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*BatchConfig)
		field  string
	}{
		{"size", func(c *BatchConfig) { c.Size = 0 }, "batch.batch_size"},
		{"bytes", func(c *BatchConfig) { c.MaxBytes = 0 }, "batch.max_bytes"},
		{"interval", func(c *BatchConfig) { c.FlushInterval = -time.Second }, "batch.flush_interval"},
	}
	up := newUploader(t, NewMemStore(), testParallelConfig())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultBatchConfig()
			tc.mutate(&cfg)
			_, err := NewBatchUploader(up, cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	_, err := NewBatchUploader(nil, DefaultBatchConfig())
	require.ErrorIs(t, err, ErrInvalidArgument)
	b := newBatcher(t, NewMemStore(), testBatchConfig())
	_, err = b.Add("", []byte("x"))
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestBatchBeforePackRunsBeforeThePut(t *testing.T) {
	cases := []struct {
		name    string
		hookErr error
	}{
		{name: "hook ok: the pack goes up", hookErr: nil},
		{name: "hook fails: nothing goes up", hookErr: fmt.Errorf("manifest full")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			var mu sync.Mutex
			var seenKey string
			var seenMembers []string
			var storedAtHook int
			b := newBatcher(t, s, testBatchConfig(), WithBeforePack(func(_ context.Context, packKey string, members []string) error {
				mu.Lock()
				defer mu.Unlock()
				seenKey, seenMembers = packKey, members
				objs, err := s.ListObjects(context.Background(), "")
				require.NoError(t, err)
				storedAtHook = len(objs)
				return tc.hookErr
			}))
			ps := []*Pending{add(t, b, "p/a", []byte("aa")), add(t, b, "p/b", []byte("bbb")), add(t, b, "p/c", []byte("c"))}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, p := range ps {
				loc, err := p.Wait(ctx)
				if tc.hookErr != nil {
					require.ErrorIs(t, err, tc.hookErr)
					continue
				}
				require.NoError(t, err)
				mu.Lock()
				require.Equal(t, seenKey, loc.PackKey, "the hook saw the pack's key")
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []string{"p/a", "p/b", "p/c"}, seenMembers)
			require.Zero(t, storedAtHook, "nothing stored when the hook runs")
			objs, err := s.ListObjects(context.Background(), "")
			require.NoError(t, err)
			if tc.hookErr != nil {
				require.Empty(t, objs, "a failed hook uploads nothing")
			} else {
				require.Len(t, objs, 1)
				require.Equal(t, seenKey, objs[0].Key)
			}
		})
	}
}

// TestResultHookReportsEveryUpload: the hook sees each item of UploadAll,
// stored or refused, with its duration, and each pack a BatchUploader on
// the same uploader writes.
func TestResultHookReportsEveryUpload(t *testing.T) {
	s := NewMemStore()
	_, err := s.Inject(Fault{Kind: FaultAccessDenied, KeyPattern: "*/bad-*"})
	require.NoError(t, err)
	var mu sync.Mutex
	got := map[string]Result{}
	up := newUploader(t, s, testParallelConfig(), WithResultHook(func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		got[r.Key] = r
	}))
	res := up.UploadAll(context.Background(), []Item{
		BytesItem("t/good-1", []byte("one")), BytesItem("t/bad-2", []byte("two")), BytesItem("t/good-3", []byte("three")),
	})
	require.Len(t, res, 3)
	mu.Lock()
	require.Len(t, got, 3)
	for _, r := range res {
		assert.Equal(t, r, got[r.Key], "the hook sees the result UploadAll returns")
		assert.Positive(t, got[r.Key].Duration, r.Key)
	}
	assert.ErrorIs(t, got["t/bad-2"].Err, ErrAccessDenied)
	assert.NoError(t, got["t/good-1"].Err)
	mu.Unlock()

	cfg := testBatchConfig()
	cfg.Size = 100
	b, err := NewBatchUploader(up, cfg, quiet())
	require.NoError(t, err)
	p := add(t, b, "c/0", []byte{0})
	add(t, b, "c/1", []byte{1})
	require.NoError(t, b.Close(context.Background()))
	loc := waitOK(t, p)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 4, "one more result: the pack")
	require.Contains(t, got, loc.PackKey)
	assert.NoError(t, got[loc.PackKey].Err)
}
