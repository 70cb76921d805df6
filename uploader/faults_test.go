package uploader

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func inject(t *testing.T, s *MemStore, f Fault) FaultID {
	t.Helper()
	id, err := s.Inject(f)
	require.NoError(t, err)
	return id
}

func tryPut(s *MemStore, key string) error {
	_, err := s.PutObject(context.Background(), key, strings.NewReader("data"), 4, PutOptions{})
	return err
}

// putCodes runs n PutObject calls on key and returns each call's code ("" for success).
func putCodes(s *MemStore, key string, n int) []Code {
	out := make([]Code, n)
	for i := range out {
		out[i] = CodeOf(tryPut(s, key))
	}
	return out
}

func TestFaultSchedules(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  []Code
	}{
		{"one-shot", Fault{Kind: FaultInternal, Op: OpPutObject, Times: 1},
			[]Code{CodeInternal, "", "", ""}},
		{"next N", Fault{Kind: FaultSlowDown, Op: OpPutObject, Times: 3},
			[]Code{CodeSlowDown, CodeSlowDown, CodeSlowDown, "", ""}},
		{"after K then N", Fault{Kind: FaultAccessDenied, Op: OpPutObject, After: 2, Times: 2},
			[]Code{"", "", CodeAccessDenied, CodeAccessDenied, ""}},
		{"unlimited", Fault{Kind: FaultConnReset, Op: OpPutObject},
			[]Code{CodeConnection, CodeConnection, CodeConnection}},
		{"other op untouched", Fault{Kind: FaultInternal, Op: OpUploadPart, Times: 1},
			[]Code{"", ""}},
		{"pattern miss", Fault{Kind: FaultInternal, KeyPattern: "other/*", Times: 1},
			[]Code{"", ""}},
		{"pattern hit across slashes", Fault{Kind: FaultInternal, KeyPattern: "t1/*/snap-?", Times: 1},
			[]Code{CodeInternal, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			inject(t, s, tc.fault)
			assert.Equal(t, tc.want, putCodes(s, "t1/db/col/snap-1", len(tc.want)))
		})
	}
}

func TestFaultRetiresAndRemove(t *testing.T) {
	s := NewMemStore()
	inject(t, s, Fault{Kind: FaultInternal, Times: 1})
	id := inject(t, s, Fault{Kind: FaultInternal})
	assert.Equal(t, 2, s.ActiveFaults())
	require.Error(t, tryPut(s, "k"))
	assert.Equal(t, 1, s.ActiveFaults(), "the one-shot rule retired")
	s.RemoveFault(id)
	require.NoError(t, tryPut(s, "k"))
	inject(t, s, Fault{Kind: FaultInternal})
	s.ClearFaults()
	require.NoError(t, tryPut(s, "k"))
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	run := func(seed uint64) []Code {
		s := NewMemStore(WithSeed(seed))
		inject(t, s, Fault{Kind: FaultInternal, Probability: 0.3})
		return putCodes(s, "k", 400)
	}
	a, b := run(42), run(42)
	assert.Equal(t, a, b, "same seed, same faults")
	failed := 0
	for _, c := range a {
		if c != "" {
			failed++
		}
	}
	// 400 draws at p=0.3: mean 120, sd ~9.2; 60..180 is > 6 sd wide.
	assert.InDelta(t, 120, failed, 60)
	assert.NotEqual(t, a, run(7), "another seed, other faults")
}

func TestFaultSlowDownCarriesRetryAfter(t *testing.T) {
	s := NewMemStore()
	inject(t, s, Fault{Kind: FaultSlowDown, Times: 1, RetryAfter: 1500 * time.Millisecond})
	err := tryPut(s, "k")
	require.ErrorIs(t, err, ErrSlowDown)
	require.ErrorIs(t, err, ErrRetryable)
	assert.Equal(t, 1500*time.Millisecond, Classify(err).RetryAfter)
	var se *StoreError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 503, se.Status)
}

func TestFaultTimeout(t *testing.T) {
	s := NewMemStore()
	inject(t, s, Fault{Kind: FaultTimeout, Times: 1, Delay: time.Millisecond})
	err := tryPut(s, "k")
	require.ErrorIs(t, err, ErrTimeout)
	assert.True(t, IsRetryable(err))

	// A hang longer than the caller's deadline ends with the context.
	inject(t, s, Fault{Kind: FaultTimeout, Times: 1, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	_, err = s.PutObject(ctx, "k", strings.NewReader("x"), 1, PutOptions{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestFaultPartialUploadStoresNothing(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	put(t, s, "k", []byte("old"))
	inject(t, s, Fault{Kind: FaultPartial, Op: OpPutObject, Times: 1, Bytes: 2})
	_, err := s.PutObject(ctx, "k", strings.NewReader("new data"), 8, PutOptions{})
	require.Error(t, err)
	assert.Equal(t, CodeConnection, CodeOf(err))
	data, _ := s.ObjectData("k")
	assert.Equal(t, "old", string(data), "a cut upload never replaces the object")
	assert.Equal(t, int64(3+2), s.Metrics().Ops[OpPutObject].BytesIn)

	id, err := s.InitiateMultipart(ctx, "m", PutOptions{})
	require.NoError(t, err)
	inject(t, s, Fault{Kind: FaultPartial, Op: OpUploadPart, Times: 1, Bytes: 1})
	_, err = s.UploadPart(ctx, "m", id, 1, strings.NewReader("abc"), 3, PartOptions{})
	require.Error(t, err)
	p, err := s.UploadPart(ctx, "m", id, 1, strings.NewReader("abc"), 3, PartOptions{})
	require.NoError(t, err)
	_, err = s.CompleteMultipart(ctx, "m", id, []Part{p})
	require.NoError(t, err)
	data, _ = s.ObjectData("m")
	assert.Equal(t, "abc", string(data))
}

func TestFaultPartialDownload(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	put(t, s, "k", []byte("0123456789"))
	inject(t, s, Fault{Kind: FaultPartial, Op: OpGetObject, Times: 1, Bytes: 4})
	rc, info, err := s.GetObject(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, int64(10), info.Size)
	got, err := io.ReadAll(rc)
	require.Error(t, err)
	assert.Equal(t, "0123", string(got))
	assert.Equal(t, CodeTruncated, CodeOf(err))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)

	rc, _, err = s.GetObject(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "0123456789", string(readAll(t, rc)), "one-shot: the next GET is whole")
}

func TestFaultCorrupt(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	orig := []byte("0123456789")
	inject(t, s, Fault{Kind: FaultCorrupt, Op: OpPutObject, Times: 1, Bytes: 3})
	info, err := s.PutObject(ctx, "k", bytes.NewReader(orig), 10, PutOptions{})
	require.NoError(t, err, "corruption at rest is silent")
	assert.Equal(t, etagOf(orig), info.ETag, "ETag is of the bytes sent")
	stored, _ := s.ObjectData("k")
	require.Len(t, stored, 10)
	assert.NotEqual(t, orig, stored)
	assert.Equal(t, orig[:3], stored[:3])
	assert.Equal(t, orig[4:], stored[4:])

	put(t, s, "g", orig)
	inject(t, s, Fault{Kind: FaultCorrupt, Op: OpGetObjectRange, Times: 1})
	rc, err := s.GetObjectRange(ctx, "g", 2, 5)
	require.NoError(t, err)
	got := readAll(t, rc)
	assert.Len(t, got, 5)
	assert.NotEqual(t, orig[2:7], got)
	stored, _ = s.ObjectData("g")
	assert.Equal(t, orig, stored, "a corrupted GET leaves the object intact")
}

func TestFaultValidation(t *testing.T) {
	tests := []struct {
		name string
		f    Fault
	}{
		{"unknown kind", Fault{Kind: "meteor"}},
		{"unknown op", Fault{Kind: FaultInternal, Op: "Explode"}},
		{"partial on stat", Fault{Kind: FaultPartial, Op: OpStatObject}},
		{"corrupt without op", Fault{Kind: FaultCorrupt}},
		{"negative times", Fault{Kind: FaultInternal, Times: -1}},
		{"probability > 1", Fault{Kind: FaultInternal, Probability: 1.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			_, err := s.Inject(tc.f)
			require.ErrorIs(t, err, ErrInvalidArgument)
			assert.Equal(t, 0, s.ActiveFaults())
		})
	}
}

func TestMemStoreMetrics(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	put(t, s, "a", []byte("12345"))
	inject(t, s, Fault{Kind: FaultInternal, Op: OpPutObject, Times: 2})
	require.Error(t, tryPut(s, "b"))
	require.Error(t, tryPut(s, "b"))
	rc, _, err := s.GetObject(ctx, "a")
	require.NoError(t, err)
	readAll(t, rc)
	_, err = s.StatObject(ctx, "missing")
	require.Error(t, err)

	m := s.Metrics()
	assert.Equal(t, OpMetrics{Calls: 3, Errors: 2, BytesIn: 5}, m.Ops[OpPutObject])
	assert.Equal(t, OpMetrics{Calls: 1, BytesOut: 5}, m.Ops[OpGetObject])
	assert.Equal(t, OpMetrics{Calls: 1, Errors: 1}, m.Ops[OpStatObject])
	assert.Equal(t, int64(2), m.Faults[FaultInternal])
	assert.Equal(t, int64(5), m.Requests())
	assert.Contains(t, m.String(), "PutObject calls=3 errors=2 in=5 out=0")

	s.ResetMetrics()
	assert.Zero(t, s.Metrics().Requests())
}

func TestMemStoreLatency(t *testing.T) {
	s := NewMemStore(WithLatency(Latency{Base: 20 * time.Millisecond}))
	start := time.Now()
	require.NoError(t, tryPut(s, "k"))
	// A lower bound only: the call must have waited, however slow the machine.
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
}
