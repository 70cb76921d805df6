//go:build e2e

package failure

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/snapshot"
)

// slowDownRetried is scenario 10: slowDown answers the demotion's next
// uploads 503.
func slowDownRetried(slowDown fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		injected := slowDown.Count
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricL2)
		retriesBefore := metric(ctx, t, `tierd_s3_retries_total{op="put"}`)
		rule := stack.InjectS3(ctx, t, slowDown)

		took := demote(ctx, t, c, col.Name)
		key := requireColdObject(ctx, t, col.Name)

		// The fault layer saw exactly the injected 503s and one request that
		// went through; tierd counted the same retries.
		st, err := stack.S3Faults.Stats(ctx)
		require.NoError(t, err)
		put := st.Op(s3fault.OpPutObject)
		require.Equal(t, int64(injected), put.Injected[s3fault.ActionSlowDown], "503s injected on PutObject")
		require.Equal(t, int64(injected), st.Injected(s3fault.ActionSlowDown), "503s injected in all")
		require.Equal(t, int64(injected+1), put.Seen, "PutObject requests: the 503s, then the one that succeeded")
		require.Equal(t, int64(1), put.Forwarded, "one PutObject reached MinIO")
		rs, ok := st.Rule(rule.ID)
		require.True(t, ok)
		require.Equal(t, int64(injected), rs.Injected, "rule %s injected", rule.ID)
		require.Equal(t, float64(injected), metric(ctx, t, `tierd_s3_retries_total{op="put"}`)-retriesBefore,
			"tierd_s3_retries_total{op=put} grew by the injected 503s")

		// tierd's own account of the schedule: attempts 1..5 on this key, each
		// wait within its ceiling, which doubles per attempt; the waits were
		// really slept (the demotion took at least their sum).
		recs := retryRecords(ctx, t, key)
		require.Len(t, recs, injected, "retries logged for %s: %+v", key, recs)
		var sum time.Duration
		for i, r := range recs {
			ceiling := min(backoffBase<<i, backoffCap)
			t.Logf("retry %d: %s %s, waited %s (ceiling %s)", r.Attempt, r.Op, r.Code, r.Wait, ceiling)
			require.Equal(t, i+1, r.Attempt, "attempt number of retry %d", i+1)
			require.Equal(t, "slow_down", r.Code, "classified as SlowDown")
			require.GreaterOrEqual(t, r.Wait, time.Duration(0))
			require.LessOrEqual(t, r.Wait, ceiling, "retry %d waited within its backoff ceiling", i+1)
			sum += r.Wait
		}
		// Five full-jitter draws under ceilings 50..800 ms sum to less than
		// 50 ms with probability below 1e-5: a retry loop without backoff fails.
		require.GreaterOrEqual(t, sum, backoffBase, "tierd backed off between the retries")
		require.GreaterOrEqual(t, took, sum, "the demotion lasted at least the waits it logged")

		promoteAndReadBack(ctx, t, tc, col, queries, "promotion of the object the retries uploaded")
	}
}

// objectWatch lists a collection's objects directly in MinIO over and over
// while a demotion runs and records every object that is not a complete,
// valid snapshot (size and xxh3 matching the object's own metadata).
type objectWatch struct {
	stop func()
	done chan struct{}

	mu      sync.Mutex
	looks   int
	seen    map[string]bool
	invalid []string
	errs    []error
}

func watchObjects(ctx context.Context, name string) *objectWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &objectWatch{stop: cancel, done: make(chan struct{}), seen: map[string]bool{}}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			w.look(ctx, name)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *objectWatch) look(ctx context.Context, name string) {
	var bad []string
	var errs []error
	var keys []string
	for o := range stack.S3.ListObjects(ctx, tierd.Bucket, minio.ListObjectsOptions{Prefix: fixture.ObjectPrefix("", name), Recursive: true}) {
		if o.Err != nil {
			if ctx.Err() == nil {
				errs = append(errs, o.Err)
			}
			break
		}
		keys = append(keys, o.Key)
		if why := invalidObject(ctx, o.Key); why != "" {
			bad = append(bad, o.Key+": "+why)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.looks++
	for _, k := range keys {
		w.seen[k] = true
	}
	w.invalid = append(w.invalid, bad...)
	w.errs = append(w.errs, errs...)
}

// invalidObject returns why the object is not a valid snapshot, or "" (also
// when it is gone or the watch is over).
func invalidObject(ctx context.Context, key string) string {
	st, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ""
	}
	obj, err := stack.S3.GetObject(ctx, tierd.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return ""
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return "" // deleted while reading, or the watch ended
	}
	sum := metaChecksum(st)
	if sum == "" {
		return "no checksum metadata"
	}
	if err := snapshot.Verify(key, data, st.Size, sum); err != nil {
		return err.Error()
	}
	return ""
}

// finish stops the watch and requires that it looked at least once and saw
// no invalid object.
func (w *objectWatch) finish(t *testing.T) {
	t.Helper()
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("watched MinIO %d times, saw objects %v", w.looks, keys(w.seen))
	require.Empty(t, w.errs, "listing errors while watching")
	require.Positive(t, w.looks, "the watch looked at MinIO")
	require.Empty(t, w.invalid, "an object that is not a complete, valid snapshot was visible in MinIO")
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// cutPut is scenario 12 with a single PUT cut by the fault layer (cut).
func cutPut(cut fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col := fixture.Create(ctx, t, tc.Client, tc.Rand, vectors, dim, api.MetricCosine)
		demoteThroughCut(ctx, t, tc, col, cut, queries,
			opSeen{s3fault.OpPutObject, 2, "the cut PUT and its retry"})
	}
}

// cutPart is scenario 12 with one part of a multipart upload cut (cut).
func cutPart(cut fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col := createBig(ctx, t, tc.Client, tc.Rand)
		demoteThroughCut(ctx, t, tc, col, cut, 5,
			opSeen{s3fault.OpCreateMultipartUpload, 1, "one multipart upload"},
			opSeen{s3fault.OpUploadPart, 3, "two parts and the retry of the cut one"},
			opSeen{s3fault.OpCompleteMultipartUpload, 1, "completed once"})
	}
}

// opSeen is how many requests of one S3 operation the fault layer must
// have seen, and why.
type opSeen struct {
	op  s3fault.Op
	n   int64
	why string
}

// demoteThroughCut demotes col while cut drops one upload request, and
// reads back what must follow: MinIO never showed an object that is not a
// complete, valid snapshot; col is cold with a verified object; cut fired
// exactly once; the fault layer saw each operation of seen as often as
// given. Then promoteAndReadBack, with that many searches: col is hot and
// exact again, nothing of it is left in the bucket, and the case's history
// passes the checkers.
func demoteThroughCut(ctx context.Context, t *testing.T, tc *tierd.Case, col *fixture.Collection, cut fault.S3, searches int, seen ...opSeen) {
	t.Helper()
	rule := stack.InjectS3(ctx, t, cut)
	w := watchObjects(ctx, col.Name)
	demote(ctx, t, tc.Client, col.Name)
	w.finish(t)
	requireColdObject(ctx, t, col.Name)
	st, err := stack.S3Faults.Stats(ctx)
	require.NoError(t, err)
	rs, _ := st.Rule(rule.ID)
	require.Equal(t, int64(1), rs.Injected, "%s cut one request: rule %+v, ops %+v", cut.Action, rs, st.Ops)
	for _, s := range seen {
		require.Equal(t, s.n, st.Op(s.op).Seen, "%s requests: %s", s.op, s.why)
	}
	promoteAndReadBack(ctx, t, tc, col, searches, "promotion of the object uploaded through the cut")
}

// limitDataRow is scenario 12 with Toxiproxy's limit_data on every
// connection (limit).
func limitDataRow(limit fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricDot)
		f := stack.Inject(ctx, t, limit)

		w := watchObjects(ctx, col.Name)
		_, err := c.SetTier(ctx, col.Name, api.TierCold)
		require.Error(t, err, "every upload attempt is cut")
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "error: %v", err)
		fixture.RequireTier(ctx, t, c, col, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		keys := keysIn(err, col.Name)
		require.NotEmpty(t, keys, "the error names the object: %v", err)
		require.NoError(t, f.Remove(ctx))
		eventuallyBucket(ctx, t, col.Name, 0, keys...)

		demote(ctx, t, c, col.Name)
		w.finish(t)
		requireColdObject(ctx, t, col.Name)
		_, err = c.SetTier(ctx, col.Name, api.TierHot)
		require.NoError(t, err)
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// corruptAtRest is scenario 13 with the object damaged in MinIO itself.
func corruptAtRest(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	const older = 600
	col := fixture.Create(ctx, t, c, rng, older, dim, api.MetricCosine)
	// The older, intact snapshot holds the first 600 vectors.
	snap, err := stack.Tierd.CreateSnapshot(ctx, col.Name)
	require.NoError(t, err)
	require.Equal(t, older, snap.Vectors)
	// 200 more vectors, inserted outside the recorded history: the restore
	// below supersedes them on purpose (tierd documents it), and the
	// checkers judge the 600 the history knows.
	later := fixture.RandomVectors(rng, 200, dim)
	for i := range later {
		later[i].ID = fmt.Sprintf("later%03d", i)
	}
	_, err = stack.Tierd.Insert(ctx, col.Name, later)
	require.NoError(t, err)
	_, err = c.SetTier(ctx, col.Name, api.TierCold)
	require.NoError(t, err)
	coll, err := stack.Tierd.GetCollection(ctx, col.Name)
	require.NoError(t, err)
	require.Equal(t, older+len(later), coll.Vectors)
	key := coll.Object

	flipInMinIO(ctx, t, key, rng.Uint64())

	_, err = c.SetTier(ctx, col.Name, api.TierHot)
	require.Error(t, err, "promotion of a corrupt object")
	require.Equal(t, api.CodeDataCorrupted, client.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), key, "the error names the object")
	_, err = c.Search(ctx, col.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK)
	require.Error(t, err, "a search must not be served from the corrupt object")
	require.Equal(t, api.CodeDataCorrupted, client.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), key)
	got, err := c.GetCollection(ctx, col.Name)
	require.NoError(t, err)
	require.Equal(t, api.TierCold, got.Tier, "the collection stays cold")

	restored, err := stack.Tierd.Restore(ctx, col.Name, snap.ID)
	require.NoError(t, err, "restore from the older intact snapshot")
	require.Equal(t, api.TierHot, restored.Tier)
	require.Equal(t, older, restored.Vectors)
	// A recorded promotion to hot (a no-op now) tells the tier checker
	// the collection is hot again.
	_, err = c.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err)
	fixture.RequireTier(ctx, t, c, col, api.TierHot)
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	// The corrupt cold copy goes; the user snapshot stays.
	eventuallyBucket(ctx, t, col.Name, 1)
	objs := objects(ctx, t, col.Name)
	require.Equal(t, snap.Object, objs[0].Key, "only the user snapshot is left")
	requireValidObject(ctx, t, snap.Object, snap.Checksum)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

// flipInMinIO rewrites the object with 8 bits flipped, keeping its size and
// metadata, directly in MinIO.
func flipInMinIO(ctx context.Context, t *testing.T, key string, seed uint64) {
	t.Helper()
	data, st := download(ctx, t, key)
	orig := append([]byte(nil), data...)
	for i := range 8 {
		pos := (seed>>(i*8)%251 + uint64(i)*uint64(len(data))/8) % uint64(len(data))
		data[pos] ^= 1 << (i % 8)
	}
	require.NotEqual(t, orig, data)
	_, err := stack.S3.PutObject(ctx, tierd.Bucket, key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{UserMetadata: map[string]string{snapshot.MetaChecksum: metaChecksum(st)}, ContentType: st.ContentType})
	require.NoError(t, err, "rewrite %s", key)
	again, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, st.Size, again.Size, "same size")
	require.Equal(t, metaChecksum(st), metaChecksum(again), "same checksum metadata")
}

// coldCollection creates a collection and demotes it to cold.
func coldCollection(ctx context.Context, t *testing.T, tc *tierd.Case) (*fixture.Collection, string) {
	t.Helper()
	col := fixture.Create(ctx, t, tc.Client, tc.Rand, vectors, dim, api.MetricL2)
	demote(ctx, t, tc.Client, col.Name)
	return col, requireColdObject(ctx, t, col.Name)
}

// truncatedGet is scenario 13 with truncated downloads (truncate).
func truncatedGet(truncate fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col, key := coldCollection(ctx, t, tc)
		oi, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
		require.NoError(t, err)
		require.Less(t, truncate.Bytes, oi.Size, "the truncation cuts the object's body short")
		rule := stack.InjectS3(ctx, t, truncate)
		requireRefused(ctx, t, tc, col, key, api.CodeStorageUnavailable)
		st, err := stack.S3Faults.Stats(ctx)
		require.NoError(t, err)
		rs, _ := st.Rule(rule.ID)
		require.Positive(t, rs.Injected, "GETs were truncated")
		t.Logf("%d GETs of %s (%d B) truncated", rs.Injected, key, oi.Size)

		require.NoError(t, rule.Remove(ctx))
		promoteAndReadBack(ctx, t, tc, col, queries, "promotion once the GETs are whole")
	}
}

// flippedGet is scenario 13 with bits flipped in transit (flip, seeded
// with the layer's seed, which the row draws from its case).
func flippedGet(flip fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col, key := coldCollection(ctx, t, tc)
		seedLayer(ctx, t, tc.Rand.Uint64())
		rule := stack.InjectS3(ctx, t, flip)
		requireRefused(ctx, t, tc, col, key, api.CodeDataCorrupted)
		st, err := stack.S3Faults.Stats(ctx)
		require.NoError(t, err)
		rs, _ := st.Rule(rule.ID)
		require.Positive(t, rs.Injected, "GET bodies were flipped")

		require.NoError(t, rule.Remove(ctx))
		requireValidObject(ctx, t, key, requireColdChecksum(ctx, t, col.Name))
		promoteAndReadBack(ctx, t, tc, col, queries, "promotion of the intact object")
	}
}

func requireColdChecksum(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	coll, err := stack.Tierd.GetCollection(ctx, name)
	require.NoError(t, err)
	require.Equal(t, api.TierCold, coll.Tier)
	return coll.Checksum
}

// requireRefused requires that neither a promotion nor a search of the cold
// collection is served while its download is damaged: both fail with code
// and name the object, and the collection stays cold with its object.
func requireRefused(ctx context.Context, t *testing.T, tc *tierd.Case, col *fixture.Collection, key, code string) {
	t.Helper()
	_, err := tc.Client.SetTier(ctx, col.Name, api.TierHot)
	require.Error(t, err, "promotion from a damaged download")
	require.Equal(t, code, client.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), key, "the error names the object")
	_, err = tc.Client.Search(ctx, col.Name, fixture.RandomVectors(tc.Rand, 1, dim)[0].Values, topK)
	require.Error(t, err, "a search must not be served from a damaged download")
	require.Equal(t, code, client.CodeOf(err), "error: %v", err)
	got, err := tc.Client.GetCollection(ctx, col.Name)
	require.NoError(t, err)
	require.Equal(t, api.TierCold, got.Tier, "the collection stays cold")
	require.Equal(t, key, got.Object)
	require.Len(t, objects(ctx, t, col.Name), 1, "the cold object is still there")
}

// flakyS3: flaky (every S3 request on the collection's keys fails with
// 500 InternalError with probability 0.3, drawn with the layer's seed,
// which the row draws from its case), while the collection goes through
// round trips to cold and back.
func flakyS3(flaky fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricCosine)
		retriesBefore := metricSum(ctx, t, "tierd_s3_retries_total")
		putRetriesBefore := metric(ctx, t, `tierd_s3_retries_total{op="put"}`)
		seedLayer(ctx, t, rng.Uint64())
		rule := stack.InjectS3(ctx, t, flaky)
		const transitions = 12
		var ok int
		var failedKeys []string
		tier := api.TierHot
		for i := range transitions {
			target := api.TierCold
			if i%2 == 1 {
				target = api.TierHot
			}
			_, err := c.SetTier(ctx, col.Name, target)
			if err == nil {
				ok++
				tier = target
			} else {
				require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "transition %d to %s: %v", i, target, err)
				failedKeys = append(failedKeys, keysIn(err, col.Name)...)
			}
			fixture.RequireTier(ctx, t, c, col, tier)
			if tier == api.TierHot {
				fixture.RequireExactSearch(ctx, t, c, rng, col, 3, topK)
			}
		}
		require.NoError(t, rule.Remove(ctx))
		st, err := stack.S3Faults.Stats(ctx)
		require.NoError(t, err)
		injected := st.Injected(s3fault.ActionInternalError)
		putInjected := st.Op(s3fault.OpPutObject).Injected[s3fault.ActionInternalError]
		retried := metricSum(ctx, t, "tierd_s3_retries_total") - retriesBefore
		putRetried := metric(ctx, t, `tierd_s3_retries_total{op="put"}`) - putRetriesBefore
		t.Logf("%d of %d transitions succeeded; %d requests answered 500 (%d PUTs), tierd retried %v (%v PUTs)",
			ok, transitions, injected, putInjected, retried, putRetried)
		require.Positive(t, injected, "the fault layer failed requests")
		require.GreaterOrEqual(t, ok, transitions/2, "with %d retries per request, a %.0f%% failure rate rarely fails a transition", 5, 100*flaky.Probability)
		require.Positive(t, retried, "tierd retried the failed requests")
		// Uploads are this row's alone (background sweeps and deletes of
		// earlier rows may retry too, so the other ops are not compared): a
		// PUT is retried once per 500, or not at all after the last attempt.
		require.LessOrEqual(t, putRetried, float64(putInjected), "tierd retried only failed PUTs")
		require.GreaterOrEqual(t, putRetried, float64(putInjected-int64(transitions)), "every failed PUT but a transition's last was retried")

		promoteAndReadBack(ctx, t, tc, col, queries, "promotion once S3 is reliable", failedKeys...)
	}
}
