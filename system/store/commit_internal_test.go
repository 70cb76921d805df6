package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/manifest"
)

// TestCommitsQueuedDuringASaveAreSavedTogether holds the save lock while
// commits queue up (one of them failing its own check), then releases it:
// the next holder saves every valid change with one write, the failing one
// changes nothing, and every caller gets its own result.
func TestCommitsQueuedDuringASaveAreSavedTogether(t *testing.T) {
	d := config.Default()
	dir := t.TempDir()
	s, err := Open(Options{DataDir: dir, Limits: d.Limits, WAL: d.WAL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	refused := errors.New("refused")
	const n = 20
	s.saveMu.Lock() // a save in progress
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = s.commit(func(m *manifest.Manifest) error {
				if i == 7 {
					m.PendingDeletes = append(m.PendingDeletes, "never")
					return refused
				}
				m.PendingDeletes = append(m.PendingDeletes, fmt.Sprintf("k%02d", i))
				return nil
			})
		})
	}
	require.Eventually(t, func() bool {
		s.queueMu.Lock()
		defer s.queueMu.Unlock()
		return len(s.commitQueue) == n
	}, 10*time.Second, time.Millisecond)
	s.saveMu.Unlock()
	wg.Wait()
	for i, err := range results {
		if i == 7 {
			assert.ErrorIs(t, err, refused)
		} else {
			assert.NoError(t, err, "commit %d", i)
		}
	}
	var h dto.Metric
	require.NoError(t, s.metrics.manifestSave.Write(&h))
	require.Equal(t, uint64(1), h.GetHistogram().GetSampleCount(), "one save for all queued commits")
	var c dto.Metric
	require.NoError(t, s.metrics.manifestCommits.Write(&c))
	require.Equal(t, float64(n-1), c.GetCounter().GetValue(), "every valid change counted")
	m, err := manifest.Load(dir)
	require.NoError(t, err)
	require.Len(t, m.PendingDeletes, n-1)
	require.NotContains(t, m.PendingDeletes, "never")
}
