package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/store"
)

// TestInsertsIntoOneCollectionShareFsyncs checks that concurrent inserts
// into one collection are made durable together, not one fsync each, and
// that the order they are applied in is the order the log replays.
func TestInsertsIntoOneCollectionShareFsyncs(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	f := newFixture(t, nil)
	s := f.open(t, func(o *store.Options) {
		o.Registerer = reg
		// Every batch waits this long for more records before its write.
		o.WAL.GroupCommitWindow = config.Duration(50 * time.Millisecond)
	})
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "c", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	before := fsyncs(t, reg)

	const writers = 16
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Every writer replaces the same id: the value that wins in
			// memory must be the one the log replays last.
			v := []api.Vector{{ID: "same", Values: []float32{float32(i), 1, 2, 3}}}
			_, err := s.Insert(ctx, "c", append(v, batch(fmt.Sprintf("w%d-", i), 2, dim, i)...))
			require.NoError(t, err)
		}()
	}
	close(start)
	wg.Wait()

	synced := fsyncs(t, reg) - before
	require.LessOrEqual(t, synced, uint64(writers/2), "%d inserts of one collection took %d fsyncs", writers, synced)

	first, err := s.Search(ctx, "c", []float32{0, 1, 2, 3}, api.MaxK)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	s = f.open(t, nil)
	again, err := s.Search(ctx, "c", []float32{0, 1, 2, 3}, api.MaxK)
	require.NoError(t, err)
	require.Equal(t, first, again, "memory and WAL replay disagree on the order of inserts")
}

// fsyncs reads how many WAL fsyncs the store made.
func fsyncs(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "tierd_wal_fsync_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no tierd_wal_fsync_duration_seconds metric")
	return 0
}

// backgroundDeletes reads tierd_background_deletes_total{result}.
func backgroundDeletes(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "tierd_background_deletes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
