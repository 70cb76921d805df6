package s3fault

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/dockerenv"
)

// minioBinary finds a MinIO server binary: $S3FAULT_MINIO_BIN, else the
// project's build cache (~/.cache/tierchaos/bin/minio-*/minio).
func minioBinary() string {
	if p := os.Getenv("S3FAULT_MINIO_BIN"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	matches, _ := filepath.Glob(filepath.Join(home, ".cache", "tierchaos", "bin", "minio-*", "minio"))
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}

// freeLoopbackAddr returns a loopback address nothing listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln, err = net.Listen("tcp6", "[::1]:0")
	}
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// minioFromImage copies the MinIO binary out of the harness's source-built
// MinIO image (tierchaos/minio:src-*, whose binary is /minio) into a
// temporary folder, through the Docker engine, so that any user of the
// engine can run it; "" when there is no engine or no such image.
func minioFromImage(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	cli, err := dockerenv.Client(ctx)
	if err != nil {
		t.Logf("no Docker engine to take MinIO from: %v", err)
		return ""
	}
	defer func() { _ = cli.Close() }()
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", "tierchaos/minio:src-*")})
	if err != nil || len(imgs.Items) == 0 || len(imgs.Items[0].RepoTags) == 0 {
		t.Logf("no source-built MinIO image (make images builds it): %v", err)
		return ""
	}
	ref := imgs.Items[0].RepoTags[0]
	c, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: ref}})
	require.NoError(t, err, "create a container of %s", ref)
	defer func() {
		_, _ = cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true})
	}()
	res, err := cli.CopyFromContainer(ctx, c.ID, client.CopyFromContainerOptions{SourcePath: "/minio"})
	require.NoError(t, err, "copy /minio out of %s", ref)
	defer func() { _ = res.Content.Close() }()
	tr := tar.NewReader(res.Content)
	hdr, err := tr.Next()
	require.NoError(t, err, "read the archive of /minio")
	require.Equal(t, byte(tar.TypeReg), hdr.Typeflag, "/minio in %s is a regular file", ref)
	bin := filepath.Join(t.TempDir(), "minio")
	f, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(f, tr)
	require.NoError(t, errors.Join(err, f.Close()), "write %s", bin)
	t.Logf("MinIO binary taken from image %s", ref)
	return bin
}

// startMinIO runs a real MinIO server on loopback for the test and returns
// its host:port.
func startMinIO(t *testing.T) string {
	t.Helper()
	bin := minioBinary()
	if bin == "" {
		bin = minioFromImage(t)
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no MinIO binary: no S3FAULT_MINIO_BIN, none in the build cache, no tierchaos/minio:src-* image (run make images)")
		}
		t.Skip("no MinIO binary: set S3FAULT_MINIO_BIN, or run make images to build the MinIO image")
	}
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, t.TempDir())
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+testAccessKey, "MINIO_ROOT_PASSWORD="+testSecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "MinIO did not come up")
	// The health endpoint answers before the object layer is ready.
	probe := newMinio(t, addr, 1)
	require.Eventually(t, func() bool {
		_, err := probe.ListBuckets(t.Context())
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "MinIO did not become ready")
	return addr
}

// TestRealMinIO checks SigV4 compatibility, the upload faults and misdirected
// GETs against a real MinIO server: it verifies every signature, so a changed
// Host header or request line would fail every request, and so would a bad
// signature on the layer's own requests.
func TestRealMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MinIO server")
	}
	minioAddr := startMinIO(t)
	s3 := newMinio(t, minioAddr, 1) // direct, bypassing the faults
	_, u, ctl := startProxy(t, "http://"+minioAddr,
		WithCredentials(Credentials{AccessKey: testAccessKey, SecretKey: testSecretKey}))
	mc := newMinio(t, u.Host, 1)
	ctx := t.Context()

	require.NoError(t, mc.MakeBucket(ctx, "tier", minio.MakeBucketOptions{}))
	small := randomBytes(11, 300<<10)
	_, err := mc.PutObject(ctx, "tier", "dir/a b+c.bin", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
	require.NoError(t, err, "MinIO accepts the signature made for the proxy's address")
	assert.Equal(t, small, readObject(t, mc, "tier", "dir/a b+c.bin"))

	// 503 SlowDown as minio-go reports it.
	_, err = ctl.AddRule(ctx, Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: SlowDown(time.Second)})
	require.NoError(t, err)
	_, err = readObjectErr(ctx, mc, "tier", "dir/a b+c.bin")
	assert.Equal(t, "SlowDown", minioCode(err))
	assert.Equal(t, small, readObject(t, mc, "tier", "dir/a b+c.bin"))

	// A misdirected GET: the layer lists dir/ and reads the other object
	// with its own signature, whole and then a range of it.
	other := randomBytes(13, 200<<10)
	_, err = mc.PutObject(ctx, "tier", "dir/x y+z.bin", bytes.NewReader(other), int64(len(other)), minio.PutObjectOptions{})
	require.NoError(t, err)
	_, err = ctl.AddRule(ctx, Rule{Ops: []Op{OpGetObject}, Key: "dir/*", Trigger: Next(2), Action: Misdirect()})
	require.NoError(t, err)
	assert.Equal(t, other, readObject(t, mc, "tier", "dir/a b+c.bin"), "the other object of dir/")
	ranged := minio.GetObjectOptions{}
	require.NoError(t, ranged.SetRange(100, 1099))
	obj, err := mc.GetObject(ctx, "tier", "dir/x y+z.bin", ranged)
	require.NoError(t, err)
	part, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.NoError(t, obj.Close())
	assert.Equal(t, small[100:1100], part, "the same range of the other object")
	assert.Equal(t, small, readObject(t, mc, "tier", "dir/a b+c.bin"), "the rule is used up")

	// A cut PUT leaves nothing in MinIO.
	_, err = ctl.AddRule(ctx, Rule{Ops: []Op{OpPutObject}, Trigger: Next(1), Action: CutRequestBody(100 << 10)})
	require.NoError(t, err)
	_, err = mc.PutObject(ctx, "tier", "cut", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
	require.Error(t, err)
	_, err = s3.StatObject(ctx, "tier", "cut", minio.StatObjectOptions{})
	assert.Equal(t, "NoSuchKey", minioCode(err), "MinIO has no object from the cut upload")

	// A cut part fails the multipart upload; minio-go aborts it.
	big := randomBytes(12, 6<<20)
	_, err = ctl.AddRule(ctx, Rule{Ops: []Op{OpUploadPart}, Trigger: Next(1), Action: CutRequestBody(1 << 20)})
	require.NoError(t, err)
	_, err = mc.PutObject(ctx, "tier", "big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20, NumThreads: 1})
	require.Error(t, err)
	_, err = s3.StatObject(ctx, "tier", "big", minio.StatObjectOptions{})
	assert.Equal(t, "NoSuchKey", minioCode(err))
	for up := range s3.ListIncompleteUploads(ctx, "tier", "big", true) {
		require.NoError(t, up.Err)
		t.Errorf("incomplete upload left behind: %+v", up)
	}
	_, err = mc.PutObject(ctx, "tier", "big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20, NumThreads: 1})
	require.NoError(t, err)
	assert.Equal(t, big, readObject(t, s3, "tier", "big"))

	st, err := ctl.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.Injected(ActionSlowDown))
	assert.Equal(t, int64(2), st.Injected(ActionMisdirect))
	assert.Equal(t, int64(2), st.Injected(ActionCutRequestBody))
	assert.Zero(t, st.Op(OpPutObject).UpstreamErrors)

	// MinIO's own error documents are small XML: the journal has their code.
	require.NoError(t, ctl.ResetStats(ctx))
	_, err = readObjectErr(ctx, mc, "tier", "missing")
	assert.Equal(t, "NoSuchKey", minioCode(err))
	j, err := ctl.Journal(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, j)
	assert.Equal(t, Entry{Op: OpGetObject, Key: "missing", Status: 404, Code: "NoSuchKey"},
		Entry{Op: j[0].Op, Key: j[0].Key, Status: j[0].Status, Code: j[0].Code})
}
