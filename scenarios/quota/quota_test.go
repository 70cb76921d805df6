//go:build e2e

package quota

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/scenarios/quota/internal/datadir"
	"github.com/tierchaos/tierchaos/system/api"
)

const (
	dim     = 32
	topK    = 10
	queries = 10
	// idLen is the length of fixture.RandomVectors' ids (v00000).
	idLen = 6
	// perVector is what one vector counts against the hot quota: values,
	// id and 64 bytes (system/README.md, "Quotas and limits").
	perVector = idLen + 4*dim + 64
)

// TestQuota is the quota suite: each row names the quota it sets (the
// fault: a resource running out), what it does against it, and what it
// expects, read back from tierd, its data directory and MinIO.
func TestQuota(t *testing.T) {
	// The process faults the rows inject, each declared once: the row
	// lists it and its Run injects exactly it. A quota is a setting of
	// tierd's, given as prose.
	var (
		kill    = fault.Process{Action: "kill"}
		restart = fault.Process{Action: "restart"}
	)
	cases := []scenario.Scenario[*tierd.Case]{
		{
			// Scenario 6.
			Name:   "memory-quota-evicts-lru",
			Faults: []scenario.Fault{scenario.Described("TIERD_QUOTA_HOT_BYTES: 4.5 collections' worth; one collection grows until it alone fills it")},
			Guards: "an insert beyond the memory quota first demotes the least recently used hot collections to warm, one at a time and only when needed, then answers quota_exceeded (hot_bytes); the collection at the limit keeps serving exact searches and hot usage never exceeds the quota",
			Run:    memoryQuotaLRU,
		},
		{
			// Scenario 7.
			Name:   "warm-quota-refuses-demotions",
			Faults: []scenario.Fault{scenario.Described("TIERD_QUOTA_WARM_BYTES: room for 2.5 Parquet files; three demotions race for the last slot; the quota lifted again (a restart)")},
			Guards: "a demotion beyond the warm quota answers quota_exceeded (warm_bytes) and leaves the collection hot with no partial file; warm usage always equals the Parquet files on disk (also after a restart); a cold promotion that needs local room is refused the same way and keeps the object",
			Run:    warmQuota,
		},
		{
			// Scenario 8.
			Name:   "collection-limit-50-creates-vs-20",
			Faults: []scenario.Fault{scenario.Described("TIERD_QUOTA_COLLECTIONS=20; 50 concurrent creates"), kill},
			Guards: "concurrent creates never overshoot the collection quota: exactly 20 exist (in the API and the manifest), 30 get quota_exceeded (collections); a delete frees exactly one slot; the count survives SIGKILL",
			Run:    collectionLimit(kill),
		},
		{
			Name:    "collection-limit-50-creates-vs-20-grpc",
			Faults:  []scenario.Fault{scenario.Described("TIERD_QUOTA_COLLECTIONS=20; 50 concurrent creates"), kill},
			Guards:  "as collection-limit-50-creates-vs-20; each refused create gets gRPC status ResourceExhausted with an ErrorInfo whose reason is quota_exceeded and a message naming the collections quota",
			Run:     collectionLimit(kill),
			Variant: string(tierd.APIGRPC),
		},
		{
			// Own case: what a user fears most about memory quotas.
			Name: "memory-quota-race-and-crash",
			Faults: []scenario.Fault{
				scenario.Described("TIERD_QUOTA_HOT_BYTES below two full collections; 6 workers insert and search 4 collections; SIGKILL mid-churn, tierd started again once the workers stopped"),
				restart,
			},
			Guards: "inserts racing the memory quota (with LRU evictions and promotions churning) never push hot usage past the quota; after SIGKILL the recomputed hot and warm usage equal the collections' real contents and files; no acknowledged insert is lost; the quota is still enforced after restart",
			Run:    memoryRaceCrash(restart),
		},
	}
	scenario.Run(t, cases, stack.CaseFor)
}

// memoryQuotaLRU is scenario 6.
func memoryQuotaLRU(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	own := newOwned(t)
	requireEmptyStore(ctx, t)
	const (
		per   = 200 // vectors of each bystander collection
		batch = 50  // vectors per insert into the growing collection
	)
	colBytes := int64(per * perVector)
	quota := 4*colBytes + colBytes/2
	setQuotas(ctx, t, map[string]string{envHotBytes: itoa(quota)})

	bystanders := make([]*fixture.Collection, 3)
	names := []string{}
	for i := range bystanders {
		bystanders[i] = fixture.Create(ctx, t, c, rng, per, dim, api.MetricCosine)
		own.add(bystanders[i].Name)
		names = append(names, bystanders[i].Name)
	}
	// Touch them in a seeded order other than their creation order:
	// lru[0] is the least recently used.
	order := rng.Perm(len(bystanders))
	if order[0] == 0 && order[1] == 1 {
		order[0], order[1] = order[1], order[0]
	}
	lru := make([]*fixture.Collection, len(order))
	for k, i := range order {
		lru[k] = bystanders[i]
		fixture.RequireExactSearch(ctx, t, c, rng, lru[k], 1, topK)
	}
	grow := &fixture.Collection{Name: fixture.UniqueName(t, rng), Dim: dim, Metric: api.MetricL2}
	_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: grow.Name, Dimension: dim, Metric: grow.Metric})
	require.NoError(t, err)
	own.add(grow.Name)
	names = append(names, grow.Name)
	require.Equal(t, 3*colBytes, usage(ctx, t).HotBytes, "hot usage = values + ids + 64 B per vector")

	// Grow one collection batch by batch. Expected: a batch that does not
	// fit demotes exactly as many least recently used bystanders as it
	// needs, and once none is left the first batch that does not fit is
	// refused.
	pool := fixture.RandomVectors(rng, api.MaxK-batch, dim)
	hotLeft := len(lru)
	refusedAt := -1
	for i := 0; i+batch <= len(pool); i += batch {
		b := pool[i : i+batch]
		need := int64(hotLeft)*colBytes + int64(len(grow.Vectors)+batch)*perVector - quota
		for need > 0 && hotLeft > 0 {
			hotLeft--
			need -= colBytes
		}
		_, err := c.Insert(ctx, grow.Name, b)
		if need > 0 {
			requireRejected(t, tc, err, "hot_bytes", fmt.Sprintf("insert of vectors %d..%d", i, i+batch))
			refusedAt = i
			break
		}
		require.NoError(t, err, "insert of vectors %d..%d fits after demoting %d collections", i, i+batch, len(lru)-hotLeft)
		grow.Vectors = append(grow.Vectors, b...)
		u := usage(ctx, t)
		require.LessOrEqual(t, u.HotBytes, quota, "hot usage within the quota")
		require.Equal(t, int64(hotLeft)*colBytes+int64(len(grow.Vectors))*perVector, u.HotBytes, "hot usage after vectors 0..%d", i+batch)
		for k, col := range lru {
			want := api.TierHot
			if k < len(lru)-hotLeft {
				want = api.TierWarm
			}
			got, err := c.GetCollection(ctx, col.Name)
			require.NoError(t, err)
			require.Equal(t, want, got.Tier, "after vectors 0..%d: the %d least recently used of %d bystanders are demoted (LRU order %v); %s is #%d",
				i+batch, len(lru)-hotLeft, len(lru), order, col.Name, k)
			require.Equal(t, per, got.Vectors)
		}
	}
	require.Positive(t, refusedAt, "the memory quota refused an insert")
	require.Zero(t, hotLeft, "every bystander was demoted before the refusal")
	t.Logf("demoted in LRU order %v; refused the insert at vector %d (quota %d B)", order, refusedAt, quota)

	// The collection at the limit keeps serving, with exactly its
	// acknowledged vectors.
	fixture.RequireTier(ctx, t, c, grow, api.TierHot)
	fixture.RequireExactSearch(ctx, t, c, rng, grow, queries, topK)
	require.Equal(t, int64(len(grow.Vectors))*perVector, usage(ctx, t).HotBytes)
	for _, col := range lru {
		fixture.RequireTier(ctx, t, c, col, api.TierWarm)
	}
	requireNoObjects(ctx, t, names...)
	l := requireDiskMatchesUsage(ctx, t)
	require.Len(t, l.Parquet(), len(lru), "one warm file per demoted collection")

	// A demoted bystander comes back on access, demoting the now least
	// recently used collection: the one at the limit.
	fixture.RequireExactSearch(ctx, t, c, rng, lru[0], queries, topK)
	fixture.RequireTier(ctx, t, c, lru[0], api.TierHot)
	fixture.RequireTier(ctx, t, c, grow, api.TierWarm)
	require.Equal(t, colBytes, usage(ctx, t).HotBytes)
	requireDiskMatchesUsage(ctx, t)
	tc.Check(ctx, t, check.Config{AutoDemote: true}, names...)
}

// warmQuota is scenario 7.
func warmQuota(ctx context.Context, t *testing.T, tc *tierd.Case) {
	c, rng := tc.Client, tc.Rand
	own := newOwned(t)
	requireEmptyStore(ctx, t)
	const per = 200
	// The size of one collection's Parquet file, measured without a quota.
	probe := fixture.Create(ctx, t, c, rng, per, dim, api.MetricDot)
	own.add(probe.Name)
	_, err := c.SetTier(ctx, probe.Name, api.TierWarm)
	require.NoError(t, err)
	size := requireDiskMatchesUsage(ctx, t).ParquetBytes()
	require.Positive(t, size)
	require.NoError(t, c.DeleteCollection(ctx, probe.Name))
	require.Zero(t, usage(ctx, t).WarmBytes, "deleting a warm collection frees its bytes")

	cols := make([]*fixture.Collection, 4)
	names := []string{probe.Name}
	for i := range cols {
		cols[i] = fixture.Create(ctx, t, c, rng, per, dim, api.MetricDot)
		own.add(cols[i].Name)
		names = append(names, cols[i].Name)
	}
	quota := 2*size + size/2 // two files fit, three do not
	setQuotas(ctx, t, map[string]string{envWarmBytes: itoa(quota)})
	a := cols[0]
	_, err = c.SetTier(ctx, a.Name, api.TierWarm)
	require.NoError(t, err, "the first demotion fits")
	aFile := fileOf(ctx, t, a.Name)
	aSize, ok := requireDiskMatchesUsage(ctx, t).Parquet()[aFile]
	require.True(t, ok, "A's warm file %s is on disk", aFile)

	// Three demotions race for room for one.
	racers := cols[1:]
	errs := make([]error, len(racers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, col := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = c.SetTier(ctx, col.Name, api.TierWarm)
		}()
	}
	close(start)
	wg.Wait()
	var winner *fixture.Collection
	var losers []*fixture.Collection
	for i, err := range errs {
		if err == nil {
			require.Nil(t, winner, "two demotions succeeded where the warm quota has room for one")
			winner = racers[i]
			continue
		}
		requireRejected(t, tc, err, "warm_bytes", "demotion of "+racers[i].Name)
		losers = append(losers, racers[i])
	}
	require.NotNil(t, winner, "one of the racing demotions fits under the warm quota")
	fixture.RequireTier(ctx, t, c, winner, api.TierWarm)
	for _, l := range losers {
		fixture.RequireTier(ctx, t, c, l, api.TierHot)
		require.Empty(t, fileOf(ctx, t, l.Name), "a refused demotion leaves no data file")
		fixture.RequireExactSearch(ctx, t, c, rng, l, queries, topK)
	}
	l := requireDiskMatchesUsage(ctx, t)
	require.Len(t, l.Parquet(), 2, "one file per warm collection, nothing of the refused demotions")
	require.LessOrEqual(t, usage(ctx, t).WarmBytes, quota)
	requireNoObjects(ctx, t, names...)

	// Demoting A to cold frees its local bytes; its file becomes the object.
	coldBefore := usage(ctx, t).ColdBytes
	_, err = c.SetTier(ctx, a.Name, api.TierCold)
	require.NoError(t, err)
	objs := fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", a.Name)
	require.Len(t, objs, 1, "A's cold copy")
	require.Equal(t, aSize, objs[0].Size, "the object is A's warm file")
	require.NotContains(t, requireDiskMatchesUsage(ctx, t).Parquet(), aFile, "A's local file is gone")
	require.Equal(t, coldBefore+aSize, usage(ctx, t).ColdBytes, "cold usage = the object's size")

	// The refused demotion fits now.
	_, err = c.SetTier(ctx, losers[0].Name, api.TierWarm)
	require.NoError(t, err, "demotion after A freed its local bytes")
	requireDiskMatchesUsage(ctx, t)

	// Promoting A needs room for its local copy under the warm quota:
	// refused, and A stays cold with its object.
	_, err = c.Search(ctx, a.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK)
	requireRejected(t, tc, err, "warm_bytes", "promotion of a cold collection with the warm quota full")
	fixture.RequireTier(ctx, t, c, a, api.TierCold)
	require.Len(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", a.Name), 1, "A's object is kept")
	require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", a.Name))
	before := usage(ctx, t)
	beforeFiles := requireDiskMatchesUsage(ctx, t).Parquet()

	// The accounting survives a restart (here: lifting the quota).
	require.NoError(t, stack.ReconfigureTierd(ctx, map[string]string{envWarmBytes: ""}))
	after := usage(ctx, t)
	require.Equal(t, before.WarmBytes, after.WarmBytes, "warm usage after restart")
	require.Equal(t, before.ColdBytes, after.ColdBytes, "cold usage after restart")
	require.Equal(t, before.HotBytes, after.HotBytes, "hot usage after restart")
	require.Equal(t, beforeFiles, requireDiskMatchesUsage(ctx, t).Parquet(), "the same files after restart")
	fixture.RequireExactSearch(ctx, t, c, rng, a, queries, topK)
	fixture.RequireTier(ctx, t, c, a, api.TierHot)
	tc.Check(ctx, t, check.Config{}, names...)
}

// collectionLimit is scenario 8; kill is the crash the count survives.
func collectionLimit(kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		own := newOwned(t)
		requireEmptyStore(ctx, t)
		const limit, creators = 20, 50
		setQuotas(ctx, t, map[string]string{envCollections: itoa(limit)})
		names := make([]string, creators)
		seen := map[string]bool{}
		for i := range names {
			for names[i] == "" || seen[names[i]] {
				names[i] = fixture.UniqueName(t, rng)
			}
			seen[names[i]] = true
		}
		own.add(names...)
		create := func(names []string) []error {
			errs := make([]error, len(names))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, n := range names {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = c.CreateCollection(ctx, api.CreateCollectionRequest{Name: n, Dimension: dim, Metric: api.MetricCosine})
				}()
			}
			close(start)
			wg.Wait()
			return errs
		}
		var created, refused []string
		for i, err := range create(names) {
			if err == nil {
				created = append(created, names[i])
				continue
			}
			requireRejected(t, tc, err, "collections", "create of "+names[i])
			refused = append(refused, names[i])
		}
		require.Len(t, created, limit, "creates that succeeded")
		require.Len(t, refused, creators-limit, "creates refused with quota_exceeded")
		requireCollections := func(want []string) {
			t.Helper()
			list, err := stack.Tierd.ListCollections(ctx)
			require.NoError(t, err)
			var got []string
			for _, col := range list {
				got = append(got, col.Name)
			}
			require.ElementsMatch(t, want, got, "collections tierd lists")
			m, err := datadir.Manifest(ctx, stack)
			require.NoError(t, err)
			got = got[:0]
			for n := range m.Collections {
				got = append(got, n)
			}
			require.ElementsMatch(t, want, got, "collections in the manifest")
			require.Equal(t, len(want), usage(ctx, t).Collections)
		}
		requireCollections(created)

		// Every created collection works.
		for _, n := range created {
			_, err := c.Insert(ctx, n, fixture.RandomVectors(rng, 5, dim))
			require.NoError(t, err, "insert into %s", n)
		}

		// A delete frees exactly one slot: of two racing creates one gets it.
		require.NoError(t, c.DeleteCollection(ctx, created[0]))
		errs := create(refused[:2])
		winners := 0
		for i, err := range errs {
			if err == nil {
				winners++
				created = append(created, refused[i])
				continue
			}
			requireRejected(t, tc, err, "collections", "create of "+refused[i]+" after one delete")
		}
		require.Equal(t, 1, winners, "one of two creates takes the freed slot")
		created = created[1:]
		requireCollections(created)

		// The count survives a crash: still at the limit, a create is refused.
		_, err := fault.Inject(ctx, stack, kill)
		require.NoError(t, err, "%s", kill)
		requireCollections(created)
		_, err = c.CreateCollection(ctx, api.CreateCollectionRequest{Name: refused[2], Dimension: dim, Metric: api.MetricCosine})
		requireRejected(t, tc, err, "collections", "create after the crash")
		requireNoObjects(ctx, t, names...)
		tc.Check(ctx, t, check.Config{}, names...)
	}
}
