//go:build e2e

package failure

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

const (
	dim     = 32
	vectors = 800 // below api.MaxK, so the checkers can read every id back
	topK    = 10
	queries = 20
)

// TestFailure is the failure suite: each row names its fault, what it does
// under the fault, and what it expects, read back from tierd and MinIO.
// Every row ends with the harness checkers (no acknowledged write lost,
// searches equal the oracle, tier history linearizable).
func TestFailure(t *testing.T) {
	// The faults the rows inject, each declared once: the row lists it
	// and its Run injects exactly it. An S3 fault narrows itself to the
	// objects of its own row's collections (fixture.RowKeys).
	keys := func(row, sub string) string { return fixture.RowKeys(t.Name(), row, sub) }
	var (
		down = fault.Net{Toxic: "down"}
		kill = fault.Process{Action: "kill"}
		// A held request is delayed far longer than any row: only its
		// client leaving (the kill) ends it.
		hold = fault.Duration(10 * time.Minute)

		latency200ms = fault.Net{Toxic: "latency", Latency: fault.Duration(200 * time.Millisecond)}
		// Retry-After 0: the waits are tierd's own backoff.
		slowDown5 = fault.S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpPutObject, s3fault.OpUploadPart},
			Key: keys("s3-503-slowdown-retried", "data/*"), Count: 5}
		// Nothing passes in either direction; connections stay open.
		timeoutDown = fault.Net{Toxic: "timeout"}
		timeoutUp   = fault.Net{Toxic: "timeout", Upstream: true}
		cutPutOnce  = fault.S3{Action: "cut_put", Key: keys("partial-upload-cut-put", "data/*"), Count: 1, Bytes: 50_000}
		// Both parts are larger than 256 KiB.
		cutPartOnce = fault.S3{Action: "cut_part", Key: keys("partial-upload-cut-part", "data/*"), Count: 1, Bytes: 256 << 10}
		limitData   = fault.Net{Toxic: "limit_data", Bytes: 20_000, Upstream: true}
		// The cold object is about 100 kB: the first 50 kB pass.
		truncateGets = fault.S3{Action: "truncate_get", Key: keys("corrupt-get-truncated", "data/*"), Bytes: 50_000}
		// Seeded with the layer's seed, which the row draws from its case.
		flipGets = fault.S3{Action: "flip_get", Key: keys("corrupt-get-bits-flipped", "data/*"), Flips: 8}
		// Drawn with the layer's seed, which the row draws from its case.
		flaky500s = fault.S3{Action: "internal_error", Key: keys("flaky-s3-30pct-500s", "*"), Probability: 0.3}
		// Toxiproxy counts kilobytes of 1000 bytes: 65 KB/s is 64 KiB/s.
		bandwidth64KiB = fault.Net{Toxic: "bandwidth", RateKBps: 65, Upstream: true}
	)
	// holdOf holds every request of ops on the row's data objects.
	holdOf := func(row string, op s3fault.Op) fault.S3 {
		return fault.S3{Action: "delay", Ops: []s3fault.Op{op}, Key: keys(row, "data/*"), Latency: hold}
	}
	// revealOf answers the row's first CreateMultipartUpload with a 503,
	// which tierd retries and logs with the upload's key
	// (revealUploadKey).
	revealOf := func(row string) fault.S3 {
		return fault.S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpCreateMultipartUpload}, Key: keys(row, "data/*"), Count: 1}
	}
	var (
		revealKillUpload = revealOf("kill-during-multipart-upload")
		holdComplete     = holdOf("kill-during-multipart-upload", s3fault.OpCompleteMultipartUpload)
		holdWarmPut      = holdOf("kill-during-put-from-warm", s3fault.OpPutObject)
		holdHead         = holdOf("kill-after-upload-before-flip", s3fault.OpHeadObject)
		holdDelete       = holdOf("kill-after-flip-before-delete", s3fault.OpDeleteObject)
		revealMidUpload  = revealOf("s3-proxy-down-mid-upload")
		// One of the two parts, held until the proxy is down (its
		// attempt then times out).
		holdOnePart = fault.S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpUploadPart},
			Key: keys("s3-proxy-down-mid-upload", "data/*"), Count: 1, Latency: fault.Duration(time.Minute)}
	)
	cases := []scenario.Scenario[*tierd.Case]{
		{
			Name:   "no-fault-cold-round-trip",
			Faults: []scenario.Fault{scenario.Described("none")},
			Guards: "a demotion to cold leaves one snapshot object in S3 and promotion restores exactly the same vectors",
			Run:    noFaultRoundTrip,
		},
		{
			Name:   "no-fault-warm-cold-round-trip",
			Faults: []scenario.Fault{scenario.Described("none")},
			Guards: "every step hot -> warm -> cold -> warm -> hot keeps exactly the same vectors; warm lives on local disk only, cold is one object in S3, and promotion to warm removes it again",
			Run:    noFaultWarmRoundTrip,
		},
		{
			Name:   "s3-latency-200ms",
			Faults: []scenario.Fault{latency200ms},
			Guards: "S3 latency slows a demotion down but does not fail it",
			Run:    latencyDemotion(latency200ms),
		},
		{
			Name:   "s3-proxy-down",
			Faults: []scenario.Fault{down},
			Guards: "a demotion that cannot reach S3 fails with storage_unavailable, keeps the collection hot and exact, and leaves nothing in the bucket",
			Run:    proxyDown(down),
		},
		// Scenario 10.
		{
			Name:   "s3-503-slowdown-retried",
			Faults: []scenario.Fault{slowDown5},
			Guards: "retryable S3 errors are retried (up to TIERD_S3_MAX_RETRIES) with a doubling backoff ceiling, and the demotion then succeeds with a valid object",
			Run:    slowDownRetried(slowDown5),
		},
		// Scenario 11.
		{
			Name:   "s3-connection-timeout",
			Faults: []scenario.Fault{timeoutDown, timeoutUp},
			Guards: "a demotion against a hanging S3 fails with storage_unavailable within the S3 deadline, rolls back (hot, exact, nothing stored), and succeeds once the toxic is gone",
			Run:    connectionTimeout(timeoutDown, timeoutUp),
		},
		// Scenario 12, three ways to cut an upload.
		{
			Name:   "partial-upload-cut-put",
			Faults: []scenario.Fault{cutPutOnce},
			Guards: "a cut single-PUT upload never shows up as a valid snapshot; the retry completes with a verified object",
			Run:    cutPut(cutPutOnce),
		},
		{
			Name:   "partial-upload-cut-part",
			Faults: []scenario.Fault{cutPartOnce},
			Guards: "a cut part is retried, the multipart upload completes with a verified object, and no incomplete upload remains",
			Run:    cutPart(cutPartOnce),
		},
		{
			Name:   "partial-upload-limit-data",
			Faults: []scenario.Fault{limitData},
			Guards: "a demotion whose every attempt is cut fails with storage_unavailable, leaves neither object nor incomplete upload, and succeeds once the toxic is gone",
			Run:    limitDataRow(limitData),
		},
		// Scenario 13, three kinds of corruption.
		{
			Name: "corrupt-object-at-rest",
			// No fault value rewrites an object in MinIO itself.
			Faults: []scenario.Fault{scenario.Described("8 bits flipped in the cold object directly in MinIO (size and metadata kept)")},
			Guards: "promotion verifies the checksum: it refuses with data_corrupted naming the object, nothing is served from it, and restore from an older intact snapshot works",
			Run:    corruptAtRest,
		},
		{
			Name:   "corrupt-get-truncated",
			Faults: []scenario.Fault{truncateGets},
			Guards: "a truncated download is never served: promotion fails with an error naming the object, the collection stays cold, and promotes once the fault is gone",
			Run:    truncatedGet(truncateGets),
		},
		{
			Name:   "corrupt-get-bits-flipped",
			Faults: []scenario.Fault{flipGets},
			Guards: "a download whose bytes changed in transit fails its checksum (data_corrupted naming the object) and is never served; the intact object promotes once the fault is gone",
			Run:    flippedGet(flipGets),
		},
		// Scenario 14, three points of a transition.
		{
			Name:   "kill-during-multipart-upload",
			Faults: []scenario.Fault{revealKillUpload, holdComplete, kill},
			Guards: "after the restart the collection is hot with every acknowledged insert, and the incomplete upload is aborted",
			Run:    killDuringUpload(revealKillUpload, holdComplete, kill),
		},
		{
			Name:   "kill-during-put-from-warm",
			Faults: []scenario.Fault{holdWarmPut, kill},
			Guards: "after the restart the collection is warm, its local file intact and verified (it promotes exactly), and nothing is in the bucket",
			Run:    killDuringPutFromWarm(holdWarmPut, kill),
		},
		{
			Name:   "kill-after-upload-before-flip",
			Faults: []scenario.Fault{holdHead, kill},
			Guards: "after the restart the collection is hot with every acknowledged insert, and the unreferenced object is swept",
			Run:    killBeforeFlip(holdHead, kill),
		},
		{
			Name:   "kill-after-flip-before-delete",
			Faults: []scenario.Fault{holdDelete, kill},
			Guards: "the promotion answers before the delete; after the restart the collection is hot (the flip is durable) with every vector, and the old cold object is deleted (a pending delete the worker retries)",
			Run:    killAfterFlip(holdDelete, kill),
		},
		// Scenario 15.
		{
			Name:   "s3-proxy-down-mid-upload",
			Faults: []scenario.Fault{holdOnePart, revealMidUpload, down},
			Guards: "the demotion rolls back with storage_unavailable: hot, exact, writable while S3 is still down; no object ever completes; the upload is aborted once S3 is back",
			Run:    proxyDownMidUpload(holdOnePart, revealMidUpload, down),
		},
		// Cases of our own: what users of a tiered store fear most.
		{
			Name:   "partition-under-mixed-load",
			Faults: []scenario.Fault{down},
			Guards: "an S3 outage never touches the hot path (every insert and search on hot collections succeeds and is exact), tier changes fail only with storage_unavailable, and all works again after the partition",
			Run:    partitionUnderLoad(down),
		},
		{
			Name:    "partition-under-mixed-load-grpc",
			Faults:  []scenario.Fault{down},
			Guards:  "as partition-under-mixed-load: a partition between tierd and S3 never reaches the gRPC hot path; refused transitions are gRPC Unavailable statuses whose ErrorInfo reason is storage_unavailable",
			Run:     partitionUnderLoad(down),
			Variant: string(tierd.APIGRPC),
		},
		{
			Name: "bandwidth-64KiB-large-demotion",
			// The proxy goes down before the throttle is removed, so that
			// a failed upload's body still in Toxiproxy's pipeline cannot
			// land in MinIO after tierd deleted its key.
			Faults: []scenario.Fault{bandwidth64KiB, down},
			Guards: "a demotion slower than the S3 deadline fails within it and cleanly, searches of the demoting collection are served meanwhile, and a demotion that fits through the link succeeds",
			Run:    bandwidthDemotion(bandwidth64KiB, down),
		},
		{
			Name:   "restart-during-s3-outage",
			Faults: []scenario.Fault{down, kill},
			Guards: "tierd becomes ready without S3, serves and accepts writes on hot collections, refuses cold ones with storage_unavailable (never internal), and promotes them once S3 is back",
			Run:    restartDuringOutage(down, kill),
		},
		{
			Name:    "restart-during-s3-outage-grpc",
			Faults:  []scenario.Fault{down, kill},
			Guards:  "as restart-during-s3-outage; the refusals of the cold collection are gRPC Unavailable with an ErrorInfo reason storage_unavailable (a definite failure), not the reasonless Unavailable of a lost connection",
			Run:     restartDuringOutage(down, kill),
			Variant: string(tierd.APIGRPC),
		},
		{
			Name:   "flaky-s3-30pct-500s",
			Faults: []scenario.Fault{flaky500s},
			Guards: "a flaky S3 costs retries, never correctness: each transition succeeds or fails with storage_unavailable and leaves the collection whole in one tier, and nothing is left behind",
			Run:    flakyS3(flaky500s),
		},
	}
	scenario.Run(t, cases, func(t *testing.T, s scenario.Scenario[*tierd.Case]) *tierd.Case {
		// Registered before NewCase, so it runs after NewCase has
		// cleared the faults: the case's collections go, so that a
		// rerun with the same seed (-count) can create them again.
		t.Cleanup(func() { deleteCollections(t) })
		return stack.CaseFor(t, s)
	})
}

func noFaultRoundTrip(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricCosine)
	_, err := c.SetTier(ctx, col.Name, api.TierCold)
	require.NoError(t, err)
	fixture.RequireTier(ctx, t, c, col, api.TierCold)
	objs := fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name)
	require.Len(t, objs, 1, "one snapshot object in MinIO")
	require.Positive(t, objs[0].Size)

	_, err = c.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err)
	fixture.RequireTier(ctx, t, c, col, api.TierHot)
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

func noFaultWarmRoundTrip(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricCosine)
	steps := []struct {
		tier    api.Tier
		objects int
	}{
		{api.TierWarm, 0}, // local Parquet file, nothing in S3
		{api.TierCold, 1}, // one snapshot object
		{api.TierWarm, 0}, // promoted back to local disk; the cold copy is deleted
		{api.TierHot, 0},
	}
	for _, st := range steps {
		_, err := c.SetTier(ctx, col.Name, st.tier)
		require.NoError(t, err, "to %s", st.tier)
		fixture.RequireTier(ctx, t, c, col, st.tier)
		require.Eventually(t, func() bool {
			return len(fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name)) == st.objects
		}, 10*time.Second, 20*time.Millisecond, "%d objects in MinIO once %s", st.objects, st.tier)
	}
	// Searching a non-hot collection would promote it transparently, so the
	// content is checked once, back at hot.
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

// latencyDemotion demotes a collection with lat on tierd's S3 path.
func latencyDemotion(lat fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricL2)
		// Baseline: the fastest of three fault-free demotions of this collection.
		baseline := time.Duration(1<<63 - 1)
		for range 3 {
			baseline = min(baseline, demote(ctx, t, c, col.Name))
			_, err := c.SetTier(ctx, col.Name, api.TierHot)
			require.NoError(t, err)
		}
		f := stack.Inject(ctx, t, lat)
		slow := demote(ctx, t, c, col.Name)
		t.Logf("demotion: fastest fault-free %s, with %s %s", baseline, lat, slow)
		require.GreaterOrEqual(t, slow, baseline+lat.Latency.D(), "the latency toxic was in effect")
		fixture.RequireTier(ctx, t, c, col, api.TierCold)
		require.Len(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name), 1)
		require.NoError(t, f.Remove(ctx))
		_, err := c.SetTier(ctx, col.Name, api.TierHot)
		require.NoError(t, err)
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// proxyDown demotes a collection while S3 is unreachable (down), then
// once it is back.
func proxyDown(down fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricDot)
		f := stack.Inject(ctx, t, down)

		_, err := c.SetTier(ctx, col.Name, api.TierCold)
		require.Error(t, err, "demotion with S3 down")
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "error: %v", err)
		fixture.RequireTier(ctx, t, c, col, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		require.Empty(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name), "nothing left in MinIO")
		require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", col.Name), "no incomplete upload")
		// MinIO lists uploads only by exact key: check the key tierd names too.
		keys := keysIn(err, col.Name)
		require.NotEmpty(t, keys, "the error names the object: %v", err)
		require.Empty(t, uploadsOf(ctx, t, col.Name, keys...), "no incomplete upload of %v", keys)

		require.NoError(t, f.Remove(ctx))
		_, err = c.SetTier(ctx, col.Name, api.TierCold)
		require.NoError(t, err, "demotion after S3 is back")
		fixture.RequireTier(ctx, t, c, col, api.TierCold)
		require.Len(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name), 1)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// demote moves a collection to cold and returns how long tierd took.
func demote(ctx context.Context, t *testing.T, c fixture.Tierd, name string) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := c.SetTier(ctx, name, api.TierCold)
	require.NoError(t, err, "demote %s", name)
	return time.Since(start)
}

// deleteCollections deletes every collection on the shared tierd (the
// cases run one at a time, so all of them are the case's own).
func deleteCollections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	colls, err := stack.Tierd.ListCollections(ctx)
	if err != nil {
		t.Errorf("list collections after the case: %v", err)
		return
	}
	for _, coll := range colls {
		if err := stack.Tierd.DeleteCollection(ctx, coll.Name); err != nil {
			t.Errorf("delete collection %s after the case: %v", coll.Name, err)
		}
	}
	// With the worker paused, only a cycle drops the WAL segments of the
	// deleted collections, which a restart would otherwise replay.
	if _, err := stack.Tierd.Worker(ctx, "run_once"); err != nil {
		t.Errorf("worker run_once after the case: %v", err)
	}
}
