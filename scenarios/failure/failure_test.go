//go:build e2e

package failure

import (
	"context"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/stretchr/testify/require"

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
			Faults: []scenario.Fault{scenario.Described("Toxiproxy latency 200 ms downstream")},
			Guards: "S3 latency slows a demotion down but does not fail it",
			Run:    latencyDemotion,
		},
		{
			Name:   "s3-proxy-down",
			Faults: []scenario.Fault{scenario.Described("Toxiproxy proxy disabled before the demotion")},
			Guards: "a demotion that cannot reach S3 fails with storage_unavailable, keeps the collection hot and exact, and leaves nothing in the bucket",
			Run:    proxyDown,
		},
		// Scenario 10.
		{
			Name:   "s3-503-slowdown-retried",
			Faults: []scenario.Fault{scenario.Described("S3 layer: 503 SlowDown for the next 5 PutObject/UploadPart requests of the collection")},
			Guards: "retryable S3 errors are retried (up to TIERD_S3_MAX_RETRIES) with a doubling backoff ceiling, and the demotion then succeeds with a valid object",
			Run:    slowDownRetried,
		},
		// Scenario 11.
		{
			Name:   "s3-connection-timeout",
			Faults: []scenario.Fault{scenario.Described("Toxiproxy timeout (no data either way, connection held open)")},
			Guards: "a demotion against a hanging S3 fails with storage_unavailable within the S3 deadline, rolls back (hot, exact, nothing stored), and succeeds once the toxic is gone",
			Run:    connectionTimeout,
		},
		// Scenario 12, three ways to cut an upload.
		{
			Name:   "partial-upload-cut-put",
			Faults: []scenario.Fault{scenario.Described("S3 layer: the first PutObject of the collection cut after half its body")},
			Guards: "a cut single-PUT upload never shows up as a valid snapshot; the retry completes with a verified object",
			Run:    cutPut,
		},
		{
			Name:   "partial-upload-cut-part",
			Faults: []scenario.Fault{scenario.Described("S3 layer: the first UploadPart of a two-part multipart upload cut after 256 KiB")},
			Guards: "a cut part is retried, the multipart upload completes with a verified object, and no incomplete upload remains",
			Run:    cutPart,
		},
		{
			Name:   "partial-upload-limit-data",
			Faults: []scenario.Fault{scenario.Described("Toxiproxy limit_data upstream: every connection to S3 closed after 20 kB")},
			Guards: "a demotion whose every attempt is cut fails with storage_unavailable, leaves neither object nor incomplete upload, and succeeds once the toxic is gone",
			Run:    limitData,
		},
		// Scenario 13, three kinds of corruption.
		{
			Name:   "corrupt-object-at-rest",
			Faults: []scenario.Fault{scenario.Described("8 bits flipped in the cold object directly in MinIO (size and metadata kept)")},
			Guards: "promotion verifies the checksum: it refuses with data_corrupted naming the object, nothing is served from it, and restore from an older intact snapshot works",
			Run:    corruptAtRest,
		},
		{
			Name:   "corrupt-get-truncated",
			Faults: []scenario.Fault{scenario.Described("S3 layer: every GetObject of the cold object truncated at half its body")},
			Guards: "a truncated download is never served: promotion fails with an error naming the object, the collection stays cold, and promotes once the fault is gone",
			Run:    truncatedGet,
		},
		{
			Name:   "corrupt-get-bits-flipped",
			Faults: []scenario.Fault{scenario.Described("S3 layer: 8 bits flipped in every GetObject body of the cold object")},
			Guards: "a download whose bytes changed in transit fails its checksum (data_corrupted naming the object) and is never served; the intact object promotes once the fault is gone",
			Run:    flippedGet,
		},
		// Scenario 14, three points of a transition.
		{
			Name:   "kill-during-multipart-upload",
			Faults: []scenario.Fault{scenario.Described("SIGKILL while CompleteMultipartUpload is held (parts uploaded, upload incomplete)")},
			Guards: "after the restart the collection is hot with every acknowledged insert, and the incomplete upload is aborted",
			Run:    killDuringUpload,
		},
		{
			Name:   "kill-during-put-from-warm",
			Faults: []scenario.Fault{scenario.Described("SIGKILL while the single PUT of a warm collection's file is held")},
			Guards: "after the restart the collection is warm, its local file intact and verified (it promotes exactly), and nothing is in the bucket",
			Run:    killDuringPutFromWarm,
		},
		{
			Name:   "kill-after-upload-before-flip",
			Faults: []scenario.Fault{scenario.Described("SIGKILL while the verifying HEAD is held (object complete, manifest not flipped)")},
			Guards: "after the restart the collection is hot with every acknowledged insert, and the unreferenced object is swept",
			Run:    killBeforeFlip,
		},
		{
			Name:   "kill-after-flip-before-delete",
			Faults: []scenario.Fault{scenario.Described("SIGKILL while the background DeleteObject of the cold copy a promotion replaced is held (manifest flipped to hot, promotion answered)")},
			Guards: "the promotion answers before the delete; after the restart the collection is hot (the flip is durable) with every vector, and the old cold object is deleted (a pending delete the worker retries)",
			Run:    killAfterFlip,
		},
		// Scenario 15.
		{
			Name:   "s3-proxy-down-mid-upload",
			Faults: []scenario.Fault{scenario.Described("Toxiproxy proxy disabled while one part of a multipart upload is in flight")},
			Guards: "the demotion rolls back with storage_unavailable: hot, exact, writable while S3 is still down; no object ever completes; the upload is aborted once S3 is back",
			Run:    proxyDownMidUpload,
		},
		// Cases of our own: what users of a tiered store fear most.
		{
			Name:   "partition-under-mixed-load",
			Faults: []scenario.Fault{scenario.Described("Toxiproxy proxy down for a window while inserts, searches and tier changes run")},
			Guards: "an S3 outage never touches the hot path (every insert and search on hot collections succeeds and is exact), tier changes fail only with storage_unavailable, and all works again after the partition",
			Run:    partitionUnderLoad,
		},
		{
			Name:    "partition-under-mixed-load-grpc",
			Faults:  []scenario.Fault{scenario.Described("as partition-under-mixed-load, every call of the case over tierd's gRPC API")},
			Guards:  "as partition-under-mixed-load: a partition between tierd and S3 never reaches the gRPC hot path; refused transitions are gRPC Unavailable statuses whose ErrorInfo reason is storage_unavailable",
			Run:     partitionUnderLoad,
			Variant: string(tierd.APIGRPC),
		},
		{
			Name:   "bandwidth-64KiB-large-demotion",
			Faults: []scenario.Fault{scenario.Described("Toxiproxy bandwidth 64 KiB/s upstream while a 620 kB collection demotes (9.5 s of transfer, 4 s deadline)")},
			Guards: "a demotion slower than the S3 deadline fails within it and cleanly, searches of the demoting collection are served meanwhile, and a demotion that fits through the link succeeds",
			Run:    bandwidthDemotion,
		},
		{
			Name:   "restart-during-s3-outage",
			Faults: []scenario.Fault{scenario.Described("SIGKILL and restart of tierd while the proxy to S3 is down")},
			Guards: "tierd becomes ready without S3, serves and accepts writes on hot collections, refuses cold ones with storage_unavailable (never internal), and promotes them once S3 is back",
			Run:    restartDuringOutage,
		},
		{
			Name:    "restart-during-s3-outage-grpc",
			Faults:  []scenario.Fault{scenario.Described("as restart-during-s3-outage, every call of the case over tierd's gRPC API (the client reconnects to the restarted tierd)")},
			Guards:  "as restart-during-s3-outage; the refusals of the cold collection are gRPC Unavailable with an ErrorInfo reason storage_unavailable (a definite failure), not the reasonless Unavailable of a lost connection",
			Run:     restartDuringOutage,
			Variant: string(tierd.APIGRPC),
		},
		{
			Name:   "flaky-s3-30pct-500s",
			Faults: []scenario.Fault{scenario.Described("S3 layer: 500 InternalError on 30% of the collection's requests (seeded), during 12 transitions")},
			Guards: "a flaky S3 costs retries, never correctness: each transition succeeds or fails with storage_unavailable and leaves the collection whole in one tier, and nothing is left behind",
			Run:    flakyS3,
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

func latencyDemotion(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricL2)
	// Baseline: the fastest of three fault-free demotions of this collection.
	baseline := time.Duration(1<<63 - 1)
	for range 3 {
		baseline = min(baseline, demote(ctx, t, c, col.Name))
		_, err := c.SetTier(ctx, col.Name, api.TierHot)
		require.NoError(t, err)
	}
	addToxic(t, stack.S3Proxy, "latency", "downstream", toxiproxy.Attributes{"latency": 200})
	slow := demote(ctx, t, c, col.Name)
	t.Logf("demotion: fastest fault-free %s, with 200ms latency %s", baseline, slow)
	require.GreaterOrEqual(t, slow, baseline+200*time.Millisecond, "the latency toxic was in effect")
	fixture.RequireTier(ctx, t, c, col, api.TierCold)
	require.Len(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name), 1)
	removeToxics(t, stack.S3Proxy)
	_, err := c.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err)
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

func proxyDown(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricDot)
	require.NoError(t, stack.S3Proxy.Disable())
	t.Cleanup(func() { _ = stack.S3Proxy.Enable() })

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

	require.NoError(t, stack.S3Proxy.Enable())
	_, err = c.SetTier(ctx, col.Name, api.TierCold)
	require.NoError(t, err, "demotion after S3 is back")
	fixture.RequireTier(ctx, t, c, col, api.TierCold)
	require.Len(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name), 1)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

// demote moves a collection to cold and returns how long tierd took.
func demote(ctx context.Context, t *testing.T, c fixture.Tierd, name string) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := c.SetTier(ctx, name, api.TierCold)
	require.NoError(t, err, "demote %s", name)
	return time.Since(start)
}

func addToxic(t *testing.T, p *toxiproxy.Proxy, typ, stream string, attrs toxiproxy.Attributes) {
	t.Helper()
	_, err := p.AddToxic(typ+"-"+stream, typ, stream, 1, attrs)
	require.NoError(t, err, "add %s toxic", typ)
	t.Cleanup(func() { removeToxics(t, p) })
}

func removeToxics(t *testing.T, p *toxiproxy.Proxy) {
	t.Helper()
	toxics, err := p.Toxics()
	require.NoError(t, err)
	for _, tx := range toxics {
		require.NoError(t, p.RemoveToxic(tx.Name))
	}
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
