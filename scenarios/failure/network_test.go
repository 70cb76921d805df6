//go:build e2e

package failure

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// connectionTimeout is scenario 11: timeouts (nothing passes in either
// direction, connections stay open).
func connectionTimeout(timeouts ...fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricCosine)
		var applied []fault.Active
		for _, f := range timeouts {
			applied = append(applied, stack.Inject(ctx, t, f))
		}

		start := time.Now()
		_, err := c.SetTier(ctx, col.Name, api.TierCold)
		took := time.Since(start)
		t.Logf("demotion against a hanging S3 failed after %s: %v", took, err)
		require.Error(t, err, "demotion against a hanging S3")
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "error: %v", err)
		require.Less(t, took, opTimeout+grace, "the demotion ended within the S3 deadline (TIERD_S3_OP_TIMEOUT=%s)", opTimeout)
		// Rolled back: hot and exact while S3 still hangs, nothing stored.
		fixture.RequireTier(ctx, t, c, col, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		keys := keysIn(err, col.Name)
		require.NotEmpty(t, keys, "the error names the object: %v", err)
		requireNothingInBucket(ctx, t, col.Name, keys...)

		for _, f := range applied {
			require.NoError(t, f.Remove(ctx))
		}
		eventuallyBucket(ctx, t, col.Name, 0, keys...)
		demote(ctx, t, c, col.Name)
		requireColdObject(ctx, t, col.Name)
		_, err = c.SetTier(ctx, col.Name, api.TierHot)
		require.NoError(t, err)
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// proxyDownMidUpload is scenario 15: holdPart holds one part of the
// multipart upload (reveal makes tierd name its key), so that down takes
// the proxy down while the upload is under way (the held part's attempt
// times out).
func proxyDownMidUpload(holdPart, reveal fault.S3, down fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := createBig(ctx, t, c, rng)
		held := stack.InjectS3(ctx, t, holdPart)
		uploadKey := revealUploadKey(ctx, t, reveal, col.Name)
		res := goSetTier(ctx, c, col.Name, api.TierCold)
		waitRule(ctx, t, held.ID, "a part is held", func(s s3fault.RuleStatus) bool { return s.Fired > 0 })
		key := uploadKey()
		require.Len(t, uploadsOf(ctx, t, col.Name, key), 1, "the multipart upload of %s is under way", key)
		d := stack.Inject(ctx, t, down)

		r := await(ctx, t, res, "the demotion")
		t.Logf("demotion with the proxy down mid-upload failed after %s: %v", r.took, r.err)
		require.Error(t, r.err)
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(r.err), "error: %v", r.err)
		// Fully usable in its old tier while S3 is still down.
		fixture.RequireTier(ctx, t, c, col, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c, rng, col, 5, topK)
		// A write while S3 is down (replacing a vector keeps the count below
		// api.MaxK for the final read).
		repl := fixture.RandomVectors(rng, 1, bigDim)[0]
		repl.ID = col.Vectors[0].ID
		_, err := c.Insert(ctx, col.Name, []api.Vector{repl})
		require.NoError(t, err, "insert while S3 is down")
		col.Vectors[0] = repl
		fixture.RequireExactSearch(ctx, t, c, rng, col, 5, topK)
		require.Empty(t, objects(ctx, t, col.Name), "no object ever completed")

		require.Contains(t, keysIn(r.err, col.Name), key, "the error names the object")

		require.NoError(t, d.Remove(ctx))
		eventuallyBucket(ctx, t, col.Name, 0, key)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// partitionUnderLoad: four workers insert and search two hot collections,
// a fifth moves a third collection between hot and cold, and S3 is cut off
// (partition) for a window in the middle.
func partitionUnderLoad(partition fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c := tc.Client
		serving := []*fixture.Collection{
			fixture.Create(ctx, t, c, tc.Rand, 300, dim, api.MetricCosine),
			fixture.Create(ctx, t, c, tc.Rand, 300, dim, api.MetricL2),
		}
		tiering := fixture.Create(ctx, t, c, tc.Rand, 300, dim, api.MetricDot)

		loadCtx, stopLoad := context.WithCancel(ctx)
		defer stopLoad()
		var (
			mu                      sync.Mutex
			hotErrs, tierErrs       []string
			inserts, searches       atomic.Int64
			tierOK, tierUnavailable atomic.Int64
			wg                      sync.WaitGroup
			failedKeys              []string // keys named by refused transitions
		)
		report := func(list *[]string, format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			*list = append(*list, fmt.Sprintf(format, args...))
		}
		// Each worker cycles through batches*batch ids of its own, replacing
		// them after the first round: the load never stops, and a collection
		// never holds more than 300 + 2*150*2 = 900 vectors (the final read
		// lists below api.MaxK).
		const workers, batches, batch = 4, 150, 2
		for w := range workers {
			rng := tc.Seed.Stream(fmt.Sprintf("serving-%d", w))
			col := serving[w%len(serving)]
			wg.Go(func() {
				pace := time.NewTicker(10 * time.Millisecond)
				defer pace.Stop()
				for i := 0; ; i++ {
					select {
					case <-loadCtx.Done():
						return
					case <-pace.C:
					}
					vs := fixture.RandomVectors(rng, batch, dim)
					for j := range vs {
						vs[j].ID = fmt.Sprintf("w%d-%04d-%d", w, i%batches, j)
					}
					if _, err := c.Insert(loadCtx, col.Name, vs); err != nil {
						if loadCtx.Err() == nil {
							report(&hotErrs, "insert into %s: %v", col.Name, err)
						}
						continue
					}
					inserts.Add(1)
					if _, err := c.Search(loadCtx, col.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK); err != nil {
						if loadCtx.Err() == nil {
							report(&hotErrs, "search %s: %v", col.Name, err)
						}
						continue
					}
					searches.Add(1)
				}
			})
		}
		wg.Go(func() {
			rng := tc.Seed.Stream("tiering")
			target := api.TierCold
			for loadCtx.Err() == nil {
				_, err := c.SetTier(loadCtx, tiering.Name, target)
				switch {
				case loadCtx.Err() != nil:
					return
				case err == nil:
					tierOK.Add(1)
					if target == api.TierCold {
						target = api.TierHot
					} else {
						target = api.TierCold
					}
				case client.CodeOf(err) == api.CodeStorageUnavailable:
					tierUnavailable.Add(1)
					mu.Lock()
					failedKeys = append(failedKeys, keysIn(err, tiering.Name)...)
					mu.Unlock()
				default:
					report(&tierErrs, "set tier %s of %s: %v", target, tiering.Name, err)
				}
				_, err = c.Search(loadCtx, tiering.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK)
				if err != nil && loadCtx.Err() == nil && client.CodeOf(err) != api.CodeStorageUnavailable {
					report(&tierErrs, "search %s: %v", tiering.Name, err)
				}
			}
		})
		waitCount := func(what string, cond func() bool) {
			t.Helper()
			require.True(t, poll(ctx, waitFor, cond), "waiting for %s", what)
		}

		waitCount("two transitions and some searches before the partition", func() bool { return tierOK.Load() >= 2 && searches.Load() >= 20 })
		down := stack.Inject(ctx, t, partition)
		insertsAtDown, okAtDown := inserts.Load(), tierOK.Load()
		waitCount("two refused transitions and ten inserts during the partition", func() bool {
			return tierUnavailable.Load() >= 2 && inserts.Load() >= insertsAtDown+10
		})
		require.NoError(t, down.Remove(ctx))
		healedAt := tierOK.Load()
		waitCount("two transitions after the partition", func() bool { return tierOK.Load() >= healedAt+2 })
		stopLoad()
		wg.Wait()
		t.Logf("inserts %d, searches %d, transitions ok %d (%d before the partition), refused %d",
			inserts.Load(), searches.Load(), tierOK.Load(), okAtDown, tierUnavailable.Load())
		require.Empty(t, hotErrs, "every insert and search on a hot collection succeeded, partition or not")
		require.Empty(t, tierErrs, "tier changes and searches of the moving collection failed only with storage_unavailable")
		// Over either API a refused transition reached the history as tierd's
		// definite storage_unavailable (HTTP 503, or its gRPC equivalent).
		refused := 0
		for _, op := range tc.Rec.Ops() {
			if op.Kind == history.KindSetTier && op.Code == api.CodeStorageUnavailable {
				refused++
				require.Equal(t, []any{history.Failed, 503}, []any{op.Outcome, op.Status}, "recorded refusal %s", op)
			}
		}
		require.Positive(t, refused, "refused transitions in the history")

		// Requests the load abandoned may still run inside tierd: bring the
		// moving collection home with a recorded promotion, which also waits
		// them out (an explicit transition answers transition_in_progress at
		// once while another runs).
		var err error
		require.True(t, poll(ctx, waitFor, func() bool {
			_, err = c.SetTier(ctx, tiering.Name, api.TierHot)
			return client.CodeOf(err) != api.CodeTransitionInProgress
		}), "the moving collection's transitions never ended")
		require.NoError(t, err, "promotion after the load")
		fixture.RequireTier(ctx, t, c, tiering, api.TierHot)
		eventuallyBucket(ctx, t, tiering.Name, 0, failedKeys...)
		for _, col := range serving {
			requireNothingInBucket(ctx, t, col.Name)
		}
		tc.Check(ctx, t, check.Config{}, serving[0].Name, serving[1].Name, tiering.Name)
	}
}

// bandwidthDemotion: the upload path is throttled (bandwidth, 64 KiB/s);
// down flushes the throttled pipeline before the throttle goes.
func bandwidthDemotion(bandwidth, down fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		large := fixture.Create(ctx, t, c, rng, 600, 256, api.MetricCosine) // about 620 kB of Parquet: 9.5 s at 64 KiB/s
		small := fixture.Create(ctx, t, c, rng, 100, dim, api.MetricL2)     // about 15 kB
		f := stack.Inject(ctx, t, bandwidth)

		res := goSetTier(ctx, c, large.Name, api.TierCold)
		// Searches of the demoting collection are served from memory while
		// the upload crawls; count those that returned before it ended.
		srng := tc.Seed.Stream("searches")
		var r tierResult
		served := 0
	wait:
		for {
			_, err := c.Search(ctx, large.Name, fixture.RandomVectors(srng, 1, 256)[0].Values, topK)
			require.NoError(t, err, "search during the throttled demotion")
			select {
			case r = <-res:
				break wait
			default:
				served++
			}
		}
		t.Logf("throttled demotion of ~620 kB ended after %s with %v; %d searches served meanwhile", r.took, r.err, served)
		require.Positive(t, served, "searches were served while the demotion ran")
		require.Error(t, r.err, "620 kB at 64 KiB/s does not fit in the S3 deadline")
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(r.err), "error: %v", r.err)
		require.Less(t, r.took, opTimeout+grace, "the demotion ended within the S3 deadline")
		fixture.RequireTier(ctx, t, c, large, api.TierHot)
		keys := keysIn(r.err, large.Name)
		require.NotEmpty(t, keys, "the error names the object: %v", r.err)
		eventuallyBucket(ctx, t, large.Name, 0, keys...)

		took := demote(ctx, t, c, small.Name)
		t.Logf("throttled demotion of ~15 kB took %s", took)
		requireColdObject(ctx, t, small.Name)

		// The failed upload's body may still sit in Toxiproxy's throttled
		// pipeline: removing the toxic would let it land in MinIO at full
		// speed, after tierd deleted its key (S3 keeps an object its client
		// gave up on). Taking the proxy down first closes those connections
		// and drops what they still hold; a body that landed before is an
		// orphan, which the next worker cycle's orphan sweep removes.
		d := stack.Inject(ctx, t, down)
		require.NoError(t, f.Remove(ctx))
		require.NoError(t, d.Remove(ctx))
		_, err := stack.Tierd.Worker(ctx, api.WorkerRunOnce)
		require.NoError(t, err, "a worker cycle (orphan sweep)")
		eventuallyBucket(ctx, t, large.Name, 0, keys...)
		demote(ctx, t, c, large.Name)
		requireColdObject(ctx, t, large.Name)
		for _, col := range []*fixture.Collection{large, small} {
			_, err := c.SetTier(ctx, col.Name, api.TierHot)
			require.NoError(t, err)
			fixture.RequireExactSearch(ctx, t, c, rng, col, 5, topK)
			eventuallyBucket(ctx, t, col.Name, 0)
		}
		tc.Check(ctx, t, check.Config{}, large.Name, small.Name)
	}
}
