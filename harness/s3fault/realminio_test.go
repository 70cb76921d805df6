package s3fault

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// startMinIO runs a real MinIO server on loopback for the test and returns
// its host:port.
func startMinIO(t *testing.T) string {
	t.Helper()
	bin := minioBinary()
	if bin == "" {
		t.Skip("no MinIO binary: set S3FAULT_MINIO_BIN to run the real-MinIO test")
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
