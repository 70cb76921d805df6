package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

func TestRecorderConcurrentTimestampsAndLanes(t *testing.T) {
	rec := NewRecorder()
	const workers, perWorker = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				call := rec.Invoke(Op{Kind: KindInsert, Collection: "c",
					Vectors: []api.Vector{{ID: fmt.Sprintf("w%d-%d", w, i), Values: []float32{1}}}})
				require.NoError(t, call.Finish(Result{Outcome: OK}))
			}
		})
	}
	wg.Wait()
	ops := rec.Ops()
	require.Len(t, ops, workers*perWorker)
	require.NoError(t, Validate(ops))
	stamps := map[int64]bool{}
	byLane := map[int][]Op{}
	for _, op := range ops {
		require.False(t, stamps[op.Call], "timestamps are distinct")
		require.False(t, stamps[op.Return], "timestamps are distinct")
		stamps[op.Call], stamps[op.Return] = true, true
		byLane[op.Client] = append(byLane[op.Client], op)
	}
	assert.LessOrEqual(t, len(byLane), workers, "never more lanes than concurrent calls")
	for lane, lops := range byLane {
		for i := 1; i < len(lops); i++ {
			require.Greater(t, lops[i].Call, lops[i-1].Return, "lane %d operations overlap", lane)
		}
	}
	for i := 1; i < len(ops); i++ {
		require.Greater(t, ops[i].Call, ops[i-1].Call, "indexes follow call order")
	}
}

func TestRecorderCopiesInputsAndReportsInFlight(t *testing.T) {
	rec := NewRecorder()
	vals := []float32{1, 2}
	query := []float32{3}
	done := rec.Invoke(Op{Kind: KindInsert, Collection: "c", Vectors: []api.Vector{{ID: "a", Values: vals}}})
	rec.Invoke(Op{Kind: KindSearch, Collection: "c", Query: query, K: 1})
	vals[0], query[0] = 99, 99
	require.NoError(t, done.Finish(Result{Outcome: OK}))
	require.ErrorIs(t, done.Finish(Result{Outcome: OK}), ErrAlreadyFinished)
	require.ErrorIs(t, done.Finish(Result{Outcome: "maybe"}), ErrInvalidHistory)

	ops := rec.Ops()
	assert.Equal(t, []float32{1, 2}, ops[0].Vectors[0].Values)
	assert.Equal(t, []float32{3}, ops[1].Query)
	assert.Equal(t, Unknown, ops[1].Outcome, "an operation still in flight is unknown")
	assert.Greater(t, ops[1].Return, ops[1].Call)
	assert.Equal(t, 2, rec.Len())
}

func TestJSONRoundTrip(t *testing.T) {
	rec := NewRecorder()
	c := rec.Invoke(Op{Kind: KindSearch, Collection: "c", Query: []float32{0.1, -2.5e-8}, K: 3})
	require.NoError(t, c.Finish(Result{Outcome: OK, Results: []api.Result{{ID: "x", Score: 0.1234567890123}}}))
	c = rec.Invoke(Op{Kind: KindSetTier, Collection: "c", Target: api.TierCold})
	require.NoError(t, c.Finish(Result{Outcome: Failed, Status: 503, Code: api.CodeStorageUnavailable,
		Err: errors.New("s3 down")}))
	c = rec.Invoke(Op{Kind: KindSnapshot, Collection: "c", Snapshot: "ignored: an output"})
	require.NoError(t, c.Finish(Result{Outcome: OK, Snapshot: "s1", Count: 7}))
	c = rec.Invoke(Op{Kind: KindRestore, Collection: "c", Snapshot: "s1"})
	require.NoError(t, c.Finish(Result{Outcome: OK, Tier: api.TierHot, Count: 7}))
	ops := rec.Ops()
	assert.Equal(t, "s1", ops[2].Snapshot, "a snapshot's id is its output")
	assert.Equal(t, 7, ops[2].Count)
	assert.Equal(t, "s1", ops[3].Snapshot, "a restore's id is its input")
	assert.Contains(t, ops[2].String(), "snapshot c")
	assert.Contains(t, ops[2].String(), "id=s1 count=7")
	assert.Contains(t, ops[3].String(), "snapshot=s1 count=7")
	assert.True(t, KindRestore.IsWrite())
	assert.False(t, KindSnapshot.IsWrite())

	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, ops))
	back, err := ReadJSON(&buf)
	require.NoError(t, err)
	assert.Equal(t, ops, back)

	path := t.TempDir() + "/h.json"
	require.NoError(t, WriteFile(path, ops))
	back, err = ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, ops, back)
}

func TestReadJSONRejectsBadHistories(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"not json", "{"},
		{"wrong version", `{"version":2,"ops":[]}`},
		{"unknown field", `{"version":1,"ops":[],"extra":1}`},
		{"bad index", `{"version":1,"ops":[{"index":5,"kind":"insert","collection":"c","call":1,"return":2,"outcome":"ok"}]}`},
		{"bad kind", `{"version":1,"ops":[{"index":0,"kind":"upsert","collection":"c","call":1,"return":2,"outcome":"ok"}]}`},
		{"bad outcome", `{"version":1,"ops":[{"index":0,"kind":"insert","collection":"c","call":1,"return":2,"outcome":"meh"}]}`},
		{"no collection", `{"version":1,"ops":[{"index":0,"kind":"insert","collection":"","call":1,"return":2,"outcome":"ok"}]}`},
		{"return before call", `{"version":1,"ops":[{"index":0,"kind":"insert","collection":"c","call":3,"return":2,"outcome":"ok"}]}`},
		{"restore without snapshot id", `{"version":1,"ops":[{"index":0,"kind":"restore","collection":"c","call":1,"return":2,"outcome":"unknown"}]}`},
		{"ok snapshot without id", `{"version":1,"ops":[{"index":0,"kind":"snapshot","collection":"c","call":1,"return":2,"outcome":"ok"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(tt.doc))
			require.ErrorIs(t, err, ErrInvalidHistory)
		})
	}
}

func TestValidateAcceptsRejectedRestoreWithoutID(t *testing.T) {
	ops := []Op{
		{Index: 0, Kind: KindRestore, Collection: "c", Call: 1, Return: 2, Outcome: Failed, Status: 400,
			Code: api.CodeInvalidArgument},
		{Index: 1, Kind: KindSnapshot, Collection: "c", Call: 3, Return: 4, Outcome: Unknown},
	}
	require.NoError(t, Validate(ops), "a restore rejected for its empty id, and a snapshot whose answer was lost")
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
		err    error
		want   Outcome
	}{
		{"success", 200, "", nil, OK},
		{"invalid argument", 400, api.CodeInvalidArgument, errors.New("x"), Failed},
		{"not found", 404, api.CodeNotFound, errors.New("x"), Failed},
		{"transition in progress", 409, api.CodeTransitionInProgress, errors.New("x"), Failed},
		{"quota", 429, api.CodeQuotaExceeded, errors.New("x"), Failed},
		{"storage unavailable rolled back", 503, api.CodeStorageUnavailable, errors.New("x"), Failed},
		{"bucket missing rolled back", 503, api.CodeBucketNotFound, errors.New("x"), Failed},
		{"disk full rolled back", 507, api.CodeInsufficientStorage, errors.New("x"), Failed},
		{"internal may have applied", 500, api.CodeInternal, errors.New("x"), Unknown},
		{"proxy error without body", 502, "", errors.New("x"), Unknown},
		{"code with a foreign status", 500, api.CodeNotFound, errors.New("x"), Unknown},
		{"timeout", 0, "", context.DeadlineExceeded, Unknown},
		{"transport", 0, "", errors.New("connection reset by peer"), Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Classify(tt.status, tt.code, tt.err))
		})
	}
}
