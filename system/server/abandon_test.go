package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

// walBytes sums the sizes of the WAL segments in dir.
func walBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	var n int64
	for _, e := range ents {
		info, err := e.Info()
		require.NoError(t, err)
		n += info.Size()
	}
	return n
}

// TestAbandonStopsEverythingLikeSIGKILL: after Abandon an in-process instance
// sends no object store request (a demotion held in its PUT does not clean
// up after itself), writes nothing (inserts fail, the WAL does not grow,
// the manifest does not change) and runs no worker cycle; a new instance
// on the same folder and bucket recovers and cleans up the interrupted
// upload by its durable key.
func TestAbandonStopsEverythingLikeSIGKILL(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.S3.OpTimeout = config.Duration(5 * time.Second)
	cfg.Worker.Interval = config.Duration(20 * time.Millisecond)
	cfg.Worker.Paused = false
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	objs := uploader.NewMemStore()
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, log, server.WithObjectStore(objs))
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	c := client.New(hs.URL)
	_, err = c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "k", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	want := []api.Vector{{ID: "a", Values: []float32{1, 2}}, {ID: "b", Values: []float32{3, 4}}}
	_, err = c.Insert(ctx, "k", want)
	require.NoError(t, err)

	// A demotion hangs in its PUT when the "process dies".
	_, err = objs.Inject(uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpPutObject, Delay: 3 * time.Second, Times: 1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var demoteErr error
	wg.Go(func() { _, demoteErr = srv.Store().SetTier(ctx, "k", api.TierCold) })
	require.Eventually(t, func() bool { return objs.Metrics().Ops[uploader.OpPutObject].Calls >= 1 }, 5*time.Second, time.Millisecond)
	walBefore := walBytes(t, cfg.DataDir)
	manBefore, err := os.ReadFile(filepath.Join(cfg.DataDir, manifest.FileName))
	require.NoError(t, err)

	srv.Abandon()
	// Counted from the crash on: a worker cycle (20 ms interval) may list
	// the bucket up to the moment of Abandon.
	objs.ResetMetrics()
	hs.Close()
	wg.Wait()
	require.Error(t, demoteErr, "the held demotion fails")
	_, err = srv.Store().Insert(ctx, "k", []api.Vector{{ID: "late", Values: []float32{5, 6}}})
	require.Error(t, err, "no insert after the crash")
	require.Equal(t, walBefore, walBytes(t, cfg.DataDir), "the WAL did not grow")
	manAfter, err := os.ReadFile(filepath.Join(cfg.DataDir, manifest.FileName))
	require.NoError(t, err)
	require.Equal(t, manBefore, manAfter, "the manifest did not change")
	// Over the 3 s the held PUT took, a live worker (20 ms interval) would
	// have listed the bucket, and the failed demotion would have cleaned up.
	for op, m := range objs.Metrics().Ops {
		require.Zero(t, m.Calls, "object store request %s after the crash", op)
	}
	m, err := manifest.Load(cfg.DataDir)
	require.NoError(t, err)
	require.Len(t, m.Uploads, 1, "the interrupted upload is known by its key")

	// A new instance recovers and removes what the crash left.
	cfg.Worker.Paused = true
	srv2, err := server.New(ctx, cfg, log, server.WithObjectStore(objs))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv2.Close(context.Background())) })
	got, err := srv2.Store().ListVectors(ctx, "k", "", 10)
	require.NoError(t, err)
	require.Equal(t, want, got.Vectors)
	require.Eventually(t, func() bool {
		m, err := manifest.Load(cfg.DataDir)
		return err == nil && len(m.Uploads) == 0
	}, 10*time.Second, 5*time.Millisecond, "the start-up cleanup drops the interrupted upload")
	list, err := objs.ListObjects(ctx, "collections/")
	require.NoError(t, err)
	require.Empty(t, list)
	require.NoError(t, srv.Close(ctx), "closing a crashed instance releases the rest")
}
