package uploader

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFetchRetriesTruncatedBody(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		calls int64
	}{
		{"body cut once", Fault{Kind: FaultPartial, Op: OpGetObject, Times: 1, Bytes: 5}, 2},
		{"slowdown twice", Fault{Kind: FaultSlowDown, Op: OpGetObject, Times: 2}, 3},
		{"no fault", Fault{Kind: FaultInternal, Op: OpPutObject, Times: 1}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemStore()
			want := payload(1, 4096)
			put(t, s, "snap", want)
			_, err := s.Inject(tc.fault)
			require.NoError(t, err)
			rec := &recorder{}
			u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
			got, info, err := u.Fetch(context.Background(), "snap")
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Equal(t, int64(4096), info.Size)
			assert.Equal(t, tc.calls, s.Metrics().Ops[OpGetObject].Calls)
		})
	}
}

func TestFetchPermanentErrors(t *testing.T) {
	s := NewMemStore()
	rec := &recorder{}
	u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))
	_, _, err := u.Fetch(context.Background(), "missing")
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, int64(1), s.Metrics().Ops[OpGetObject].Calls)
	assert.Empty(t, rec.recorded())
}

func TestFetchMember(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	b := newBatcher(t, s, testBatchConfig())
	p := add(t, b, "fm/1", []byte("member bytes"))
	require.NoError(t, b.Flush(ctx))
	loc := waitOK(t, p)
	rec := &recorder{}
	u := newUploader(t, s, testParallelConfig(), WithSleeper(rec.sleep))

	_, err := s.Inject(Fault{Kind: FaultPartial, Op: OpGetObjectRange, Times: 1, Bytes: 2})
	require.NoError(t, err)
	got, err := u.FetchMember(ctx, loc)
	require.NoError(t, err, "a cut body is retried")
	assert.Equal(t, "member bytes", string(got))

	_, err = s.Inject(Fault{Kind: FaultCorrupt, Op: OpGetObjectRange, Times: 1})
	require.NoError(t, err)
	calls := s.Metrics().Ops[OpGetObjectRange].Calls
	_, err = u.FetchMember(ctx, loc)
	require.ErrorIs(t, err, ErrChecksumMismatch, "corruption is reported, never served")
	assert.Equal(t, calls+1, s.Metrics().Ops[OpGetObjectRange].Calls, "and not retried")
}
