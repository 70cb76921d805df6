//go:build e2e

package packs

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/uploader"
)

const (
	dim = 8
	// smallVectors makes a snapshot of a few kB, far below the suite's
	// 256 KiB pack threshold.
	smallVectors = 40
	// packDir is where tierd writes packs (the harness starts it without
	// an S3 prefix).
	packDir = fixture.PackDir
	// hold is how long a Delay rule holds a request: far longer than any
	// case, so only the client leaving (a kill) or the rule's deletion
	// ends it.
	hold = 10 * time.Minute
	// headDelay is how long sweep-races-pack-creation holds the pack's
	// verifying HEAD: longer than the start-up sweep's next retry (at most
	// 2 s away), far below the 15 s S3 deadline.
	headDelay = 5 * time.Second
	// waitFor bounds a wait for something tierd does in the background.
	waitFor   = 20 * time.Second
	pollEvery = 20 * time.Millisecond
)

// warmSmall creates n small collections and makes each warm.
func warmSmall(ctx context.Context, t *testing.T, tc *tierd.Case, n int) []*fixture.Collection {
	t.Helper()
	cols := make([]*fixture.Collection, n)
	for i := range cols {
		cols[i] = fixture.Create(ctx, t, tc.Client, tc.Rand, smallVectors, dim, api.MetricCosine)
		_, err := tc.Client.SetTier(ctx, cols[i].Name, api.TierWarm)
		require.NoError(t, err, "make %s warm", cols[i].Name)
	}
	return cols
}

// runOnce runs one worker cycle and returns its report.
func runOnce(ctx context.Context, t *testing.T) api.WorkerCycle {
	t.Helper()
	st, err := stack.Tierd.Worker(ctx, "run_once")
	require.NoError(t, err, "worker run_once")
	require.NotNil(t, st.Last, "the cycle's report")
	return *st.Last
}

// packObjects returns the objects in MinIO that hold a member of one of
// the collections, read directly (no fault), with their indexes.
func packObjects(ctx context.Context, t *testing.T, cols []*fixture.Collection) map[string]uploader.PackIndex {
	t.Helper()
	names := map[string]bool{}
	for _, c := range cols {
		names[c.Name] = true
	}
	out := map[string]uploader.PackIndex{}
	for o := range stack.S3.ListObjects(ctx, tierd.Bucket, minio.ListObjectsOptions{Prefix: packDir, Recursive: true}) {
		require.NoError(t, o.Err, "list packs")
		idx, err := uploader.ReadPackIndex(ctx, objectStore(t), o.Key)
		require.NoError(t, err, "index of pack %s", o.Key)
		for _, m := range idx.Members {
			if names[memberCollection(m.Key)] {
				out[o.Key] = idx
				break
			}
		}
	}
	return out
}

// memberCollection returns the collection a pack member key belongs to:
// packs/{name}.{snapshot id}.parquet.
func memberCollection(key string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(key, "packs/"), ".")
	return name
}

// objectStore is an uploader view of MinIO, straight to it (no fault).
func objectStore(t *testing.T) uploader.ObjectStore {
	t.Helper()
	ak, sk := stack.S3Credentials()
	s, err := uploader.NewMinIOStore(uploader.MinIOConfig{Endpoint: stack.MinIOEndpoint(), AccessKey: ak, SecretKey: sk, Bucket: tierd.Bucket})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// requireOnePack requires every collection cold as a member of one and
// the same pack in MinIO, whose index lists exactly their snapshots, and
// returns the pack's key and index.
func requireOnePack(ctx context.Context, t *testing.T, cols []*fixture.Collection) (string, uploader.PackIndex) {
	t.Helper()
	var key string
	want := make([]string, 0, len(cols))
	for _, c := range cols {
		got, err := stack.Tierd.GetCollection(ctx, c.Name)
		require.NoError(t, err)
		require.Equal(t, api.TierCold, got.Tier, "%s is cold", c.Name)
		require.True(t, strings.HasPrefix(got.Object, packDir), "%s is a pack member: %s", c.Name, got.Object)
		if key == "" {
			key = got.Object
		}
		require.Equal(t, key, got.Object, "%s is in the same pack", c.Name)
		want = append(want, "packs/"+c.Name+"."+got.Snapshot+".parquet")
	}
	idx, err := uploader.ReadPackIndex(ctx, objectStore(t), key)
	require.NoError(t, err, "the pack is in MinIO with its index")
	got := make([]string, len(idx.Members))
	for i, m := range idx.Members {
		got[i] = m.Key
	}
	require.ElementsMatch(t, want, got, "the pack's index lists exactly the members")
	return key, idx
}

// requireNoHalfReferencedPack requires that every pack in MinIO holding a
// member of the collections is referenced by each of its members: the
// member's collection is cold, names the pack and the member's snapshot.
func requireNoHalfReferencedPack(ctx context.Context, t *testing.T, cols []*fixture.Collection) {
	t.Helper()
	for key, idx := range packObjects(ctx, t, cols) {
		for _, m := range idx.Members {
			name := memberCollection(m.Key)
			got, err := stack.Tierd.GetCollection(ctx, name)
			require.NoError(t, err, "member %s of pack %s", m.Key, key)
			require.Equal(t, api.TierCold, got.Tier, "member %s of pack %s", m.Key, key)
			require.Equal(t, key, got.Object, "member %s refers to its pack", m.Key)
			require.Equal(t, "packs/"+name+"."+got.Snapshot+".parquet", m.Key, "the member is the collection's data")
		}
	}
}

// requireExact requires the collection's every vector, exactly (ids and
// float32 bits), read back from tierd.
func requireExact(ctx context.Context, t *testing.T, col *fixture.Collection) {
	t.Helper()
	got, err := stack.Tierd.AllVectors(ctx, col.Name, 1000)
	require.NoError(t, err, "list %s", col.Name)
	want := slices.Clone(col.Vectors)
	slices.SortFunc(want, func(a, b api.Vector) int { return strings.Compare(a.ID, b.ID) })
	require.Equal(t, want, got, "content of %s", col.Name)
}

// promoteExact promotes the collection to hot and requires its exact
// content and exact searches.
func promoteExact(ctx context.Context, t *testing.T, tc *tierd.Case, col *fixture.Collection) {
	t.Helper()
	got, err := tc.Client.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err, "promote %s", col.Name)
	require.Equal(t, api.TierHot, got.Tier)
	requireExact(ctx, t, col)
	fixture.RequireExactSearch(ctx, t, tc.Client, tc.Rand, col, 2, 10)
}

// eventuallyGone waits, running cycles, until key is no longer in MinIO.
func eventuallyGone(ctx context.Context, t *testing.T, key string) {
	t.Helper()
	require.True(t, poll(ctx, waitFor, func() bool {
		if _, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{}); isNoSuchKey(err) {
			return true
		}
		runOnce(ctx, t)
		return false
	}), "%s is still in MinIO", key)
}

// requireObject requires key in MinIO.
func requireObject(ctx context.Context, t *testing.T, key string) {
	t.Helper()
	_, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
	require.NoError(t, err, "%s is in MinIO", key)
}

func isNoSuchKey(err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey"
}

// corruptRange flips one bit in [off, off+n) of the object in MinIO,
// directly, keeping its size and metadata.
func corruptRange(ctx context.Context, t *testing.T, key string, off, n int64) {
	t.Helper()
	obj, err := stack.S3.GetObject(ctx, tierd.Bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	data, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.NoError(t, obj.Close())
	st, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Less(t, off+n/2, int64(len(data)))
	data[off+n/2] ^= 0x01
	_, err = stack.S3.PutObject(ctx, tierd.Bucket, key, strings.NewReader(string(data)), int64(len(data)),
		minio.PutObjectOptions{UserMetadata: st.UserMetadata, ContentType: st.ContentType})
	require.NoError(t, err, "write the corrupted pack back")
}

// waitFired waits until the rule has fired at least once.
func waitFired(ctx context.Context, t *testing.T, id, what string) {
	t.Helper()
	require.True(t, poll(ctx, waitFor, func() bool {
		st, err := stack.S3Faults.Rule(ctx, id)
		require.NoError(t, err)
		return st.Fired > 0
	}), "waiting for rule %s: %s", id, what)
}

// goRunOnce runs a worker cycle in a goroutine; the channel gets its error.
func goRunOnce(ctx context.Context) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := stack.Tierd.Worker(ctx, "run_once")
		ch <- err
	}()
	return ch
}

// await receives from ch within waitFor.
func await[T any](ctx context.Context, t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		require.FailNow(t, "timed out waiting for "+what)
		var zero T
		return zero
	}
}

// poll calls cond every pollEvery until it is true (true), or until limit
// or ctx ends (false).
func poll(ctx context.Context, limit time.Duration, cond func() bool) bool {
	return fixture.Poll(ctx, pollEvery, limit, cond)
}

// names returns the collections' names.
func names(cols []*fixture.Collection) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

// deleteCollections deletes the case's collections (best effort), so that
// a rerun with the same seed (-count) can create them again and their
// packs go.
func deleteCollections(t *testing.T, cols *[]*fixture.Collection) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range *cols {
		if err := stack.Tierd.DeleteCollection(ctx, c.Name); err != nil && !strings.Contains(err.Error(), api.CodeNotFound) {
			t.Logf("delete %s: %v", c.Name, err)
		}
	}
}

func describe(idx uploader.PackIndex) string {
	return fmt.Sprintf("%d members", len(idx.Members))
}

// packMetrics are tierd's pack counters at one moment.
type packMetrics struct {
	written, failed, deleted float64
	// packs and members are the count and sum of tierd_pack_members.
	packs, members float64
}

// readPackMetrics reads tierd's pack metrics from its debug listener.
func readPackMetrics(ctx context.Context, t *testing.T) packMetrics {
	t.Helper()
	base, err := stack.DebugURL()
	require.NoError(t, err)
	fams := fixture.Metrics(ctx, t, base)
	var pm packMetrics
	for _, m := range fams["tierd_packs_written_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			switch {
			case l.GetName() == "result" && l.GetValue() == "ok":
				pm.written = m.GetCounter().GetValue()
			case l.GetName() == "result" && l.GetValue() == "failed":
				pm.failed = m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range fams["tierd_pack_deletes_total"].GetMetric() {
		pm.deleted = m.GetCounter().GetValue()
	}
	for _, m := range fams["tierd_pack_members"].GetMetric() {
		pm.packs, pm.members = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
	}
	return pm
}
