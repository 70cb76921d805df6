package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
)

// TestCancelledSearchStopsScoring: a search whose context is already
// cancelled, or is cancelled while it scores, returns context.Canceled
// without scoring the whole collection.
func TestCancelledSearchStopsScoring(t *testing.T) {
	d := config.Default()
	s, err := Open(Options{DataDir: t.TempDir(), Limits: d.Limits, WAL: d.WAL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	_, err = s.Create(ctx, api.CreateCollectionRequest{Name: "big", Dimension: 4, Metric: api.MetricL2})
	require.NoError(t, err)
	const batches, perBatch = 10, 4 * searchCheckEvery
	const n = batches * perBatch
	for b := range batches {
		batch := make([]api.Vector, 0, perBatch)
		for i := range perBatch {
			j := b*perBatch + i
			batch = append(batch, api.Vector{ID: fmt.Sprintf("v%06d", j), Values: []float32{float32(j), 1, 2, 3}})
		}
		_, err := s.Insert(ctx, "big", batch)
		require.NoError(t, err)
	}
	query := []float32{1, 1, 1, 1}

	// A full search scores every vector.
	before := s.scored.Load()
	res, err := s.Search(ctx, "big", query, 3)
	require.NoError(t, err)
	require.Len(t, res, 3)
	require.Equal(t, int64(n), s.scored.Load()-before)

	cases := []struct {
		name string
		ctx  func() context.Context
	}{
		{"already cancelled", func() context.Context {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c
		}},
		{"cancelled while scoring", func() context.Context {
			// The context reports cancellation from its second check on.
			return &cancelAfter{Context: ctx, checks: 1}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.scored.Load()
			_, err := s.Search(tc.ctx(), "big", query, 3)
			require.ErrorIs(t, err, context.Canceled)
			scored := s.scored.Load() - before
			require.Less(t, scored, int64(n), "a cancelled search scored the whole collection")
			require.LessOrEqual(t, scored, int64(searchCheckEvery))
		})
	}
}

// cancelAfter is a context whose Err is nil for its first checks calls,
// then context.Canceled.
type cancelAfter struct {
	context.Context
	checks int
}

func (c *cancelAfter) Err() error {
	if c.checks > 0 {
		c.checks--
		return nil
	}
	return context.Canceled
}
