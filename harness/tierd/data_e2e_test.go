//go:build e2e

package tierd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	dockerclient "github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// startStack starts a stack of its own (a run of its own, so that closing
// it leaves the package's shared stack alone) and closes it when t ends,
// checking that its data directory and its Docker volumes are gone.
func startStack(t *testing.T, opts tierd.Options) *tierd.Stack {
	t.Helper()
	run, err := cleanup.NewRun()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := tierd.Start(ctx, run, opts)
	require.NoError(t, err)
	dir, dirErr := s.DataDir()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, s.Close(ctx))
		if dirErr == nil {
			_, err := os.Stat(dir)
			require.ErrorIs(t, err, os.ErrNotExist, "data directory %s removed at Close", dir)
		}
		require.Empty(t, runVolumes(ctx, t, run.ID), "the run's volumes are removed at Close")
	})
	return s
}

// runVolumes returns the Docker volumes labelled with the run, by name,
// with their driver options.
func runVolumes(ctx context.Context, t *testing.T, runID string) map[string]map[string]string {
	t.Helper()
	cli, err := dockerenv.Client(ctx)
	require.NoError(t, err)
	defer cli.Close()
	vs, err := cli.VolumeList(ctx, dockerclient.VolumeListOptions{Filters: make(dockerclient.Filters).Add("label", cleanup.LabelRun+"="+runID)})
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for _, v := range vs.Items {
		out[v.Name] = v.Options
	}
	return out
}

// vectors returns n vectors of dimension dim with ids prefix-0000...
func vectors(prefix string, n, dim int) []api.Vector {
	vs := make([]api.Vector, n)
	for i := range vs {
		vals := make([]float32, dim)
		for d := range vals {
			vals[d] = float32(i*dim+d) + 0.5
		}
		vs[i] = api.Vector{ID: fmt.Sprintf("%s-%04d", prefix, i), Values: vals}
	}
	return vs
}

func createWith(ctx context.Context, t *testing.T, s *tierd.Stack, name string, vs []api.Vector) {
	t.Helper()
	_, err := s.Tierd.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: len(vs[0].Values), Metric: api.MetricL2})
	require.NoError(t, err)
	n, err := s.Tierd.Insert(ctx, name, vs)
	require.NoError(t, err)
	require.Equal(t, len(vs), n)
}

func requireVectors(ctx context.Context, t *testing.T, s *tierd.Stack, name string, want []api.Vector) {
	t.Helper()
	got, err := s.Tierd.AllVectors(ctx, name, 1000)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestDataTmpfs runs tierd, in each mode, with its data on a tmpfs and
// MinIO's on a tmpfs volume: data survives a tierd kill, the data file
// system can be filled and freed, MinIO restarts keep every object, and
// the volumes are Docker tmpfs volumes with the run's labels.
func TestDataTmpfs(t *testing.T) {
	for _, mode := range []string{tierd.SUTContainer, tierd.SUTInProcess} {
		t.Run(mode, func(t *testing.T) {
			testDataTmpfs(t, mode)
		})
	}
}

func testDataTmpfs(t *testing.T, mode string) {
	s := startStack(t, tierd.Options{
		SUT: mode, TierdDataTmpfs: "32m",
		RestartableMinIO: true, MinIODataTmpfs: "256m",
	})
	s.RequireDataTmpfs(t)
	data, err := s.TierdData()
	require.NoError(t, err)

	t.Run("volumes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Owned by the user the containers run as, not root.
		const owner = "uid=65532,gid=65532,mode=0755"
		want := map[string]map[string]string{
			"tierchaos-" + s.Run.ID + "-minio-data": {"type": "tmpfs", "device": "tmpfs", "o": "size=256m," + owner},
		}
		if mode == tierd.SUTContainer {
			want["tierchaos-"+s.Run.ID+"-tierd-data"] = map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=32m," + owner}
		}
		require.Equal(t, want, runVolumes(ctx, t, s.Run.ID), "labelled tmpfs volumes of the local driver")
		sp, err := data.Statfs(ctx)
		require.NoError(t, err)
		require.True(t, sp.Tmpfs, "tierd's data is on a tmpfs")
		require.Equal(t, int64(32<<20), sp.Total)
		minio, err := s.MinIOData()
		require.NoError(t, err)
		sp, err = minio.Statfs(ctx)
		require.NoError(t, err)
		require.True(t, sp.Tmpfs, "MinIO's data is on a tmpfs")
		require.Equal(t, int64(256<<20), sp.Total)
	})

	t.Run("data-survives-kill", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		vs := vectors("k", 50, 8)
		createWith(ctx, t, s, "survive", vs)
		b, err := data.ReadFile(ctx, "manifest.json")
		require.NoError(t, err, "tierd writes to its data tmpfs")
		require.Contains(t, string(b), `"survive"`)
		require.NoError(t, s.KillTierd(ctx))
		require.NoError(t, s.StartTierd(ctx))
		requireVectors(ctx, t, s, "survive", vs)
		require.NoError(t, s.ReconfigureTierd(ctx, map[string]string{"TIERD_WAL_SEGMENT_BYTES": "65536"}))
		requireVectors(ctx, t, s, "survive", vs)
	})

	t.Run("fill-then-free", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		createWith(ctx, t, s, "fill", vectors("a", 1, 64))
		n, err := s.FillData(ctx)
		require.NoError(t, err)
		require.Positive(t, n)
		sp, err := data.Statfs(ctx)
		require.NoError(t, err)
		require.Zero(t, sp.Free, "a full data file system")
		// More than a page: the batch cannot fit in the WAL's last page.
		batch := vectors("b", 64, 64)
		_, err = s.Tierd.Insert(ctx, "fill", batch)
		require.Equal(t, api.CodeInsufficientStorage, client.CodeOf(err), "insert on a full data volume: %v", err)

		require.NoError(t, s.FreeData(ctx))
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err = s.Tierd.Insert(ctx, "fill", batch)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		require.NoError(t, err, "insert after FreeData")
		requireVectors(ctx, t, s, "fill", append(vectors("a", 1, 64), batch...))
	})

	t.Run("minio-restart", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		body := []byte("survives a MinIO restart")
		_, err := s.S3.PutObject(ctx, tierd.Bucket, "probe/restart", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		require.NoError(t, err)
		vs := vectors("c", 40, 8)
		createWith(ctx, t, s, "cold-before", vs)
		_, err = s.Tierd.SetTier(ctx, "cold-before", api.TierCold)
		require.NoError(t, err)

		s3 := s.S3
		require.NoError(t, s.RestartMinIO(ctx))
		require.Same(t, s3, s.S3, "the client is kept")
		t.Logf("MinIO endpoint at start %s, now %s", s.S3Endpoint, s.MinIOEndpoint())

		obj, err := s.S3.GetObject(ctx, tierd.Bucket, "probe/restart", minio.GetObjectOptions{})
		require.NoError(t, err)
		// Close ends the goroutine minio-go runs for the object (the leak
		// check of an in-process run found it left running).
		defer obj.Close()
		got, err := io.ReadAll(obj)
		require.NoError(t, err)
		require.Equal(t, body, got, "the object survived, and Stack.S3 reaches MinIO")

		// tierd's cold tier: the old object reads back, a new one uploads.
		requireVectors(ctx, t, s, "cold-before", vs)
		createWith(ctx, t, s, "cold-after", vs)
		c, err := s.Tierd.SetTier(ctx, "cold-after", api.TierCold)
		require.NoError(t, err)
		_, err = s.S3.StatObject(ctx, tierd.Bucket, c.Object, minio.StatObjectOptions{})
		require.NoError(t, err, "the new cold object is in MinIO")

		// A fault that left MinIO stopped is cleared by ClearFaults.
		require.NoError(t, s.StopMinIO(ctx))
		require.NoError(t, s.ClearFaults(ctx))
		ok, err := s.S3.BucketExists(ctx, tierd.Bucket)
		require.NoError(t, err)
		require.True(t, ok)
	})

	t.Run("wipe", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, s.WipeTierdData(ctx))
		list, err := s.Tierd.ListCollections(ctx)
		require.NoError(t, err)
		require.Empty(t, list, "tierd starts on an empty data directory")
		l, err := data.List(ctx)
		require.NoError(t, err)
		for p := range l {
			require.NotContains(t, p, "local/", "no data file of a wiped collection")
		}
	})

	if mode == tierd.SUTContainer {
		t.Run("defect-unsupported", func(t *testing.T) {
			require.ErrorIs(t, s.ArmDefect(tierd.DefectDropInsert), tierd.ErrDefectUnsupported)
		})
	}
}

// TestWithoutDataTmpfs checks the errors of the controls the shared stack
// was not started for, and that its data reads in both modes.
func TestWithoutDataTmpfs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.ErrorIs(t, stack.RestartMinIO(ctx), tierd.ErrMinIONotRestartable)
	_, err := stack.DataDir()
	if stack.Mode == tierd.SUTContainer {
		require.ErrorIs(t, err, tierd.ErrNoDataDir)
	} else {
		require.NoError(t, err, "in process the data directory is on the host")
	}
	_, err = stack.FillData(ctx)
	require.ErrorIs(t, err, tierd.ErrNoDataDir, "FillData never fills a real disk")
	require.ErrorIs(t, stack.FreeData(ctx), tierd.ErrNoDataDir)
	require.ErrorIs(t, stack.DataTmpfs(), tierd.ErrNoDataDir)
	_, err = stack.MinIOData()
	require.ErrorIs(t, err, tierd.ErrMinIONotRestartable)
	data, err := stack.TierdData()
	require.NoError(t, err, "tierd's data reads in every mode")
	if stack.Mode == tierd.SUTContainer {
		// A plain Docker volume lives on the daemon's disk. (In process the
		// temporary directory may be on a tmpfs /tmp: not tried.)
		_, err = data.Fill(ctx)
		require.ErrorIs(t, err, datavol.ErrNotTmpfs, "the data volume itself refuses to be filled")
	}
	_, err = data.ReadFile(ctx, "../etc/passwd")
	require.ErrorIs(t, err, datavol.ErrBadPath)
}

// TestDefectDropInsert proves the drop_insert defect loses exactly one
// acknowledged insert in process mode, passes on inserts tierd would
// reject, and is disarmed by ClearFaults.
func TestDefectDropInsert(t *testing.T) {
	s := startStack(t, tierd.Options{SUT: tierd.SUTInProcess, TierdDataTmpfs: "32m"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := s.DataDir()
	require.NoError(t, err)
	kept := vectors("kept", 2, 4)
	createWith(ctx, t, s, "defect", kept[:1])
	require.FileExists(t, filepath.Join(dir, "manifest.json"))

	require.NoError(t, s.ArmDefect(tierd.DefectDropInsert))
	_, err = s.Tierd.Insert(ctx, "defect", []api.Vector{{ID: "bad", Values: []float32{1}}})
	require.Equal(t, api.CodeInvalidArgument, client.CodeOf(err), "an insert tierd rejects goes to tierd: %v", err)
	require.False(t, s.DefectFired())

	lost := vectors("lost", 3, 4)
	n, err := s.Tierd.Insert(ctx, "defect", lost)
	require.NoError(t, err, "the dropped insert is acknowledged")
	require.Equal(t, len(lost), n)
	require.True(t, s.DefectFired())
	n, err = s.Tierd.Insert(ctx, "defect", kept[1:])
	require.NoError(t, err)
	require.Equal(t, 1, n)
	requireVectors(ctx, t, s, "defect", kept)

	require.NoError(t, s.ArmDefect(tierd.DefectDropInsert))
	require.NoError(t, s.ClearFaults(ctx))
	_, err = s.Tierd.Insert(ctx, "defect", lost)
	require.NoError(t, err)
	require.False(t, s.DefectFired(), "ClearFaults disarmed it")
	requireVectors(ctx, t, s, "defect", append(kept, lost...))
}
