//go:build e2e

package failure

import (
	"context"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness"
	"github.com/tierchaos/tierchaos/harness/check"
	"github.com/tierchaos/tierchaos/harness/fixture"
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
func TestFailure(t *testing.T) {
	cases := []struct {
		name string
		// guards names the tierd invariant the case protects.
		guards string
		run    func(ctx context.Context, t *testing.T, c *harness.Case)
	}{
		{
			name:   "no-fault-cold-round-trip",
			guards: "a demotion to cold leaves one snapshot object in S3 and promotion restores exactly the same vectors",
			run:    noFaultRoundTrip,
		},
		{
			name:   "s3-latency-200ms",
			guards: "S3 latency slows a demotion down but does not fail it",
			run:    latencyDemotion,
		},
		{
			name:   "s3-proxy-down",
			guards: "a demotion that cannot reach S3 fails with storage_unavailable, keeps the collection hot and exact, and leaves nothing in the bucket",
			run:    proxyDown,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t.Cleanup(cancel)
			t.Logf("guards: %s", tc.guards)
			tc.run(ctx, t, stack.NewCase(t))
		})
	}
}

func noFaultRoundTrip(ctx context.Context, t *testing.T, tc *harness.Case) {
	c, rng := tc.Client, tc.Rand
	col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricCosine)
	_, err := c.SetTier(ctx, col.Name, api.TierCold)
	require.NoError(t, err)
	fixture.RequireTier(ctx, t, c, col, api.TierCold)
	objs := fixture.Objects(ctx, t, stack.S3, harness.Bucket, "", col.Name)
	require.Len(t, objs, 1, "one snapshot object in MinIO")
	require.Positive(t, objs[0].Size)

	_, err = c.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err)
	fixture.RequireTier(ctx, t, c, col, api.TierHot)
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

func latencyDemotion(ctx context.Context, t *testing.T, tc *harness.Case) {
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
	require.Len(t, fixture.Objects(ctx, t, stack.S3, harness.Bucket, "", col.Name), 1)
	removeToxics(t, stack.S3Proxy)
	_, err := c.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err)
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

func proxyDown(ctx context.Context, t *testing.T, tc *harness.Case) {
	c, rng := tc.Client, tc.Rand
	col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricDot)
	require.NoError(t, stack.S3Proxy.Disable())
	t.Cleanup(func() { _ = stack.S3Proxy.Enable() })

	_, err := c.SetTier(ctx, col.Name, api.TierCold)
	require.Error(t, err, "demotion with S3 down")
	require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "error: %v", err)
	fixture.RequireTier(ctx, t, c, col, api.TierHot)
	fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
	require.Empty(t, fixture.Objects(ctx, t, stack.S3, harness.Bucket, "", col.Name), "nothing left in MinIO")
	require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, harness.Bucket, "", col.Name), "no incomplete upload")

	require.NoError(t, stack.S3Proxy.Enable())
	_, err = c.SetTier(ctx, col.Name, api.TierCold)
	require.NoError(t, err, "demotion after S3 is back")
	fixture.RequireTier(ctx, t, c, col, api.TierCold)
	require.Len(t, fixture.Objects(ctx, t, stack.S3, harness.Bucket, "", col.Name), 1)
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
