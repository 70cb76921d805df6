//go:build e2e

package concurrency

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/harness/tierd/oracle"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

const (
	dim     = 16
	vectors = 600 // below api.MaxK, so the checkers can read every id back
	topK    = 10
	queries = 10

	// holdFor is how long a held S3 request is delayed: long enough that
	// every concurrent request of a case is certainly in flight meanwhile.
	holdFor = 1500 * time.Millisecond
)

var allTiers = []api.Tier{api.TierHot, api.TierWarm, api.TierCold}

// TestConcurrency is the concurrency suite: each row names its fault, what
// runs concurrently under it, and what it expects, read back from tierd and
// MinIO and judged by the history checkers.
func TestConcurrency(t *testing.T) {
	// The faults the rows inject, each declared once: the row lists it
	// and its Run injects exactly it. An S3 fault on a row's objects
	// narrows itself to its own row's collections (fixture.RowKeys).
	keys := func(row, sub string) string { return fixture.RowKeys(t.Name(), row, sub) }
	gets := []s3fault.Op{s3fault.OpGetObject}
	// delayOf delays every request of ops on the row's objects under sub.
	delayOf := func(row string, ops []s3fault.Op, sub string, d time.Duration) fault.S3 {
		return fault.S3{Action: "delay", Ops: ops, Key: keys(row, sub), Latency: fault.Duration(d)}
	}
	var (
		kill = fault.Process{Action: "kill"}

		holdDemotersUpload     = delayOf("ten-demoters", uploadOps, "data/*", holdFor)
		holdDemotersUploadGRPC = delayOf("ten-demoters-grpc", uploadOps, "data/*", holdFor)
		holdPromoteDownload    = delayOf("promote-slow-download-under-search", gets, "data/*", holdFor)
		slowThrottledDownloads = delayOf("transparent-promote-throttled", gets, "data/*", 300*time.Millisecond)
		throttleDownloads      = fault.S3{Action: "slow_down", Ops: gets, Key: keys("transparent-promote-throttled", "data/*"), Count: 2}
		failDownloads          = fault.S3{Action: "internal_error", Ops: gets, Key: keys("failed-promote-under-search", "data/*")}
		slowSnapshotDownloads  = delayOf("snapshot-during-restore", gets, "snapshots/*", 300*time.Millisecond)
		slowSnapshotUploads    = delayOf("snapshot-during-restore", uploadOps, "snapshots/*", 300*time.Millisecond)
		latency10ms            = fault.Net{Toxic: "latency", Latency: fault.Duration(10 * time.Millisecond), Jitter: fault.Duration(10 * time.Millisecond)}
		latency5ms             = fault.Net{Toxic: "latency", Latency: fault.Duration(5 * time.Millisecond), Jitter: fault.Duration(5 * time.Millisecond)}
		jitter20ms             = fault.S3{Action: "delay", Key: "collections/*", Latency: fault.Duration(time.Millisecond), Jitter: fault.Duration(20 * time.Millisecond)}
		holdDeletedDemotion    = delayOf("delete-during-demotion", uploadOps, "data/*", holdFor)
		holdDeletedPromotion   = delayOf("delete-during-promotion", gets, "data/*", holdFor)
		holdRestoreDownload    = delayOf("restore-during-inserts", gets, "snapshots/*", holdFor)
		jitter5ms              = fault.S3{Action: "delay", Key: "collections/*", Latency: fault.Duration(time.Millisecond), Jitter: fault.Duration(5 * time.Millisecond)}
		failDeletes            = fault.S3{Action: "internal_error", Ops: []s3fault.Op{s3fault.OpDeleteObject}, Key: keys("redemotion-vs-pending-delete", "data/*")}
	)
	cases := []scenario.Scenario[*tierd.Case]{
		{
			Name:   "ten-demoters",
			Faults: []scenario.Fault{holdDemotersUpload},
			Guards: "transitions of one collection are serialized: of ten simultaneous demotions exactly one runs (one upload, one transition), the others answer transition_in_progress at once; the collection ends cold with every vector in its S3 object",
			Run:    tenDemoters(holdDemotersUpload),
		},
		{
			Name:    "ten-demoters-grpc",
			Faults:  []scenario.Fault{holdDemotersUploadGRPC},
			Guards:  "as ten-demoters; the refused demoters get gRPC status Aborted with an ErrorInfo whose reason is transition_in_progress, recorded as failed",
			Run:     tenDemoters(holdDemotersUploadGRPC),
			Variant: string(tierd.APIGRPC),
		},
		{
			Name:   "promote-slow-download-under-search",
			Faults: []scenario.Fault{holdPromoteDownload},
			Guards: "searches during a promotion from cold wait for it and return the oracle's exact top-k; the searchers do not start promotions of their own (one download)",
			Run: promoteUnderSearch(promoteRow{
				explicit: true, wantPromote: "ok", hold: &holdPromoteDownload,
			}),
		},
		{
			Name:   "transparent-promote-throttled",
			Faults: []scenario.Fault{slowThrottledDownloads, throttleDownloads},
			Guards: "eight searches hitting a cold collection at once promote it exactly once (retrying the throttled download) and all return the exact top-k",
			Run: promoteUnderSearch(promoteRow{
				slow: &slowThrottledDownloads, throttle: &throttleDownloads,
			}),
		},
		{
			Name:   "failed-promote-under-search",
			Faults: []scenario.Fault{failDownloads},
			Guards: "a promotion that cannot download fails with storage_unavailable and leaves the collection cold and intact; concurrent searches get the exact top-k or storage_unavailable, never a partial or wrong result; once S3 recovers a search promotes it",
			Run: promoteUnderSearch(promoteRow{
				explicit: true, wantPromote: api.CodeStorageUnavailable, fail: &failDownloads,
			}),
		},
		{
			Name: "snapshot-during-restore",
			// The snapshot transfers are slowed, so both requests are
			// inside tierd together.
			Faults: []scenario.Fault{slowSnapshotDownloads, slowSnapshotUploads, kill},
			Guards: "a snapshot racing a restore of another snapshot captures exactly the content before or after the restore, never a mix; the restore leaves exactly its snapshot's content, also after SIGKILL and restart (superseded WAL records are not replayed)",
			Run:    snapshotDuringRestore(slowSnapshotDownloads, slowSnapshotUploads, kill),
		},
		{
			Name:   "racing-tier-updates",
			Faults: []scenario.Fault{latency10ms, kill},
			Guards: "random concurrent demote/promote requests on three collections for 10 s give a linearizable tier history; the tier, snapshot and S3 object each collection reports agree with the bucket and survive a restart unchanged",
			Run:    racingTiers(latency10ms, kill),
		},
		{
			Name:    "racing-tier-updates-grpc",
			Faults:  []scenario.Fault{latency10ms, kill},
			Guards:  "as racing-tier-updates: tier history linearizable over gRPC; tier, count, snapshot and object unchanged by a SIGKILL and restart",
			Run:     racingTiers(latency10ms, kill),
			Variant: string(tierd.APIGRPC),
		},
		{
			Name: "kill-during-racing-tiers",
			Faults: []scenario.Fault{latency5ms,
				scenario.Described("SIGKILL while 6 workers race demotions, promotions, inserts and searches on 3 collections; tierd starts again once the workers stopped")},
			Guards: "after a crash in the middle of racing transitions each collection is in one tier the history allows, every acknowledged insert is there, and once the start-up sweep ran the bucket holds exactly the objects of the cold collections and no incomplete upload",
			Run:    killDuringRacingTiers(latency5ms),
		},
		{
			Name: "worker-vs-api",
			Faults: []scenario.Fault{
				scenario.Described("tierd reconfigured with 1 ms idle times (every cycle demotes what is idle), run_once cycles back to back"),
				jitter20ms, kill,
			},
			Guards: "background demotions, checkpoints and WAL segment drops racing inserts and searches lose no acknowledged insert (also across a crash) and every search stays exact",
			Run:    workerVsAPI(jitter20ms, kill),
		},
		{
			Name:   "delete-during-demotion",
			Faults: []scenario.Fault{holdDeletedDemotion, kill},
			Guards: "a delete waits for the running demotion, then removes the collection and every object and upload of it; the name can be reused and the new collection never shows old data, also after SIGKILL and restart",
			Run:    deleteDuringTransition(api.TierHot, api.TierCold, api.MetricCosine, dim, holdDeletedDemotion, kill),
		},
		{
			Name:   "delete-during-promotion",
			Faults: []scenario.Fault{holdDeletedPromotion, kill},
			Guards: "a delete waits for the running promotion from cold, then removes the collection and every object of it; nothing of it comes back under the reused name (recreated with another metric and dimension), also after SIGKILL and restart",
			Run:    deleteDuringTransition(api.TierCold, api.TierHot, api.MetricL2, dim/2, holdDeletedPromotion, kill),
		},
		{
			Name:   "restore-during-inserts",
			Faults: []scenario.Fault{holdRestoreDownload, kill},
			Guards: "a restore supersedes exactly the inserts acknowledged before it and keeps every insert called after it returned, each racing insert all or nothing; the same content after a crash (no superseded WAL record replayed, no later one lost)",
			Run:    restoreDuringInserts(holdRestoreDownload, kill),
		},
		{
			Name: "snapshots-vs-orphan-sweep",
			Faults: []scenario.Fault{
				scenario.Described("run_once cycles (each an orphan sweep) back to back while snapshots and demotions run back to back"),
				jitter5ms,
			},
			Guards: "the orphan sweep never deletes an object a committed snapshot or cold collection refers to: every snapshot tierd lists exists in S3 and restores, every cold collection's object exists",
			Run:    snapshotsVsSweep(jitter5ms),
		},
		{
			Name:   "redemotion-vs-pending-delete",
			Faults: []scenario.Fault{failDeletes},
			Guards: "the deferred cleanup of an old cold copy never deletes the object a later demotion stored: a cold collection's object stays in S3 and it promotes with every vector",
			Run:    redemotionVsPendingDelete(failDeletes),
		},
	}
	scenario.Run(t, cases, stack.CaseFor)
}

// tenDemoters: scenario 1, the demotion's upload held (hold).
func tenDemoters(hold fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const workers = 10
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricCosine)
		held := stack.InjectS3(ctx, t, hold)
		before := transitions(ctx, t, api.TierHot, api.TierCold)

		errs := make([]error, workers)
		together(workers, func(i int) { _, errs[i] = c.SetTier(ctx, col.Name, api.TierCold) })
		answers := map[string]int{}
		for _, err := range errs {
			answers[codeName(err)]++
		}
		t.Logf("answers of the %d demoters: %v", workers, answers)
		for _, err := range errs {
			if err != nil {
				tc.RequireWireError(t, err, api.CodeTransitionInProgress)
			}
		}
		require.Equal(t, workers, answers["ok"]+answers[api.CodeTransitionInProgress],
			"every demoter got ok or transition_in_progress: %v", answers)
		require.Positive(t, answers["ok"], "the demotion that ran succeeded")
		require.Positive(t, answers[api.CodeTransitionInProgress], "demoters arriving during the held upload were refused at once")

		require.EqualValues(t, 1, ruleStatus(ctx, t, held.ID).Matched, "exactly one upload of the collection reached S3")
		require.Equal(t, before+1, transitions(ctx, t, api.TierHot, api.TierCold), "exactly one hot→cold transition ran")
		got := fixture.RequireTier(ctx, t, c, col, api.TierCold)
		objs := objectsUnder(ctx, t, col.Name, "data/")
		require.Equal(t, []string{got.Object}, keysOf(objs), "one cold object, the one tierd reports")
		require.True(t, sameVectors(col.Vectors, objectContent(ctx, t, got.Object, -1, got.Checksum, dim)),
			"the cold object holds exactly the collection's vectors")

		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// promoteRow configures promoteUnderSearch.
type promoteRow struct {
	// explicit: a POST tier=hot starts the promotion and the searchers
	// start once its download reached S3; else the searchers themselves
	// promote the collection.
	explicit bool
	// wantPromote is the expected answer of the explicit promotion.
	wantPromote string
	// hold delays every download of the cold object.
	hold *fault.S3
	// slow delays every download, and throttle answers the first
	// throttle.Count of them 503 SlowDown.
	slow, throttle *fault.S3
	// fail answers every download 500 until the case removes it.
	fail *fault.S3
}

// searchOutcome is one search of a searcher.
type searchOutcome struct {
	query       []float32
	results     []api.Result
	err         error
	call, reply time.Time
}

// searchers run searches of one collection in a loop until stopped.
type searchers struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	out   []searchOutcome
	count atomic.Int64
	ok    atomic.Int64
}

func startSearchers(ctx context.Context, tc *tierd.Case, name string, n int) *searchers {
	s := &searchers{stop: make(chan struct{})}
	for i := range n {
		rng := tc.Seed.Stream(fmt.Sprintf("searcher-%d", i))
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for ctx.Err() == nil {
				select {
				case <-s.stop:
					return
				default:
				}
				q := fixture.RandomVectors(rng, 1, dim)[0].Values
				o := searchOutcome{query: q, call: time.Now()}
				o.results, o.err = tc.Client.Search(ctx, name, q, topK)
				o.reply = time.Now()
				s.mu.Lock()
				s.out = append(s.out, o)
				s.mu.Unlock()
				s.count.Add(1)
				if o.err == nil {
					s.ok.Add(1)
				}
			}
		}()
	}
	return s
}

// waitOK waits until n more searches succeeded than when it was called.
func (s *searchers) waitOK(t *testing.T, n int64) {
	t.Helper()
	from := s.ok.Load()
	require.Eventually(t, func() bool { return s.ok.Load() >= from+n }, time.Minute, pollEvery,
		"searchers did not complete %d more successful searches", n)
}

// waitAny waits until n more searches returned, whatever their outcome.
func (s *searchers) waitAny(t *testing.T, n int64) {
	t.Helper()
	from := s.count.Load()
	require.Eventually(t, func() bool { return s.count.Load() >= from+n }, time.Minute, pollEvery,
		"searchers did not complete %d more searches", n)
}

func (s *searchers) halt() []searchOutcome {
	close(s.stop)
	s.wg.Wait()
	return s.out
}

// promoteUnderSearch: scenario 2. A cold collection is promoted while
// eight searchers query it; every search is the oracle's exact top-k or a
// retryable storage_unavailable.
func promoteUnderSearch(row promoteRow) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const nSearchers = 8
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, vectors, dim, api.MetricDot)
		_, err := c.SetTier(ctx, col.Name, api.TierCold)
		require.NoError(t, err, "demote to cold")
		coldState := fixture.RequireTier(ctx, t, c, col, api.TierCold)

		// watch is the rule on every download, fail the throttle's.
		var watch, fail *fault.S3Rule
		switch {
		case row.hold != nil:
			watch = stack.InjectS3(ctx, t, *row.hold)
		case row.throttle != nil:
			watch = stack.InjectS3(ctx, t, *row.slow)
			fail = stack.InjectS3(ctx, t, *row.throttle)
		case row.fail != nil:
			watch = stack.InjectS3(ctx, t, *row.fail)
		}

		var promoteErr error
		var promoteEnd time.Time
		promoted := make(chan struct{})
		var srch *searchers
		if row.explicit {
			go func() {
				defer close(promoted)
				_, promoteErr = c.SetTier(ctx, col.Name, api.TierHot)
				promoteEnd = time.Now()
			}()
			// The explicit promotion holds the transition: its download
			// has reached S3. Only now do the searchers start.
			waitMatched(ctx, t, watch.ID, 1)
			srch = startSearchers(ctx, tc, col.Name, nSearchers)
			<-promoted
			require.Equal(t, row.wantPromote, codeName(promoteErr), "answer of the explicit promotion")
		} else {
			srch = startSearchers(ctx, tc, col.Name, nSearchers)
		}
		if row.fail != nil {
			// While S3 fails, searches fail with storage_unavailable and
			// the collection stays cold with its object in place.
			srch.waitAny(t, nSearchers)
			got := fixture.RequireTier(ctx, t, c, col, api.TierCold)
			require.Equal(t, coldState.Object, got.Object, "the failed promotion kept the cold object")
			require.Equal(t, []string{coldState.Object}, keysOf(objectsUnder(ctx, t, col.Name, "data/")),
				"the cold object is still in MinIO")
			require.NoError(t, watch.Remove(ctx), "remove %s", row.fail)
		}
		require.Eventually(t, func() bool {
			got, err := c.GetCollection(ctx, col.Name)
			return err == nil && got.Tier == api.TierHot
		}, time.Minute, pollEvery, "the promotion never completed")
		if !row.explicit {
			promoteEnd = time.Now()
		}
		srch.waitOK(t, 2*nSearchers)
		outcomes := srch.halt()

		// Judge every search: exact top-k or storage_unavailable.
		answers := map[string]int{}
		during := 0
		for i, o := range outcomes {
			code := codeName(o.err)
			answers[code]++
			if o.call.Before(promoteEnd) {
				during++
			}
			if o.err != nil {
				require.True(t, row.fail != nil && code == api.CodeStorageUnavailable,
					"search %d failed with %q: only storage_unavailable while S3 fails is allowed", i, code)
				continue
			}
			oq, err := oracle.NewQuery(col.Metric, o.query)
			require.NoError(t, err)
			want, err := oq.TopK(col.Vectors, topK)
			require.NoError(t, err)
			require.NoError(t, oq.Compare(want, o.results, topK, oracle.DefaultTolerance),
				"search %d (called %s before the promotion ended) is not the exact top-k",
				i, promoteEnd.Sub(o.call).Round(time.Millisecond))
		}
		t.Logf("%d searches: %v; %d called before the promotion ended", len(outcomes), answers, during)
		require.Positive(t, during, "searches ran during the promotion")
		if row.fail != nil {
			require.Positive(t, answers[api.CodeStorageUnavailable], "searches saw the S3 failure")
		}

		switch {
		case row.hold != nil:
			require.EqualValues(t, 1, ruleStatus(ctx, t, watch.ID).Matched, "exactly one download: searchers waited for the promotion")
		case row.throttle != nil:
			require.EqualValues(t, row.throttle.Count, ruleStatus(ctx, t, fail.ID).Fired, "every injected 503 was seen")
			require.EqualValues(t, row.throttle.Count+1, ruleStatus(ctx, t, watch.ID).Matched,
				"exactly one promotion ran: the throttled attempts and one successful download")
		}
		fixture.RequireTier(ctx, t, c, col, api.TierHot)
		require.Empty(t, objectsUnder(ctx, t, col.Name, "data/"), "the cold copy is deleted after the promotion")
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// snapshotDuringRestore: scenario 3. Each round changes the content away
// from snapshot s1's, moves the collection to a random tier, then races a
// new snapshot against a restore of s1, with the snapshot transfers
// slowed (slowGets, slowUploads); then tierd is killed (kill). Every
// operation is recorded, so the checkers judge the snapshots' and
// restores' effects too.
func snapshotDuringRestore(slowGets, slowUploads fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const rounds = 4
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, 400, dim, api.MetricL2)
		a := col.Vectors
		fixture.RequireExactSearch(ctx, t, c, rng, col, 3, topK)
		s1, err := c.CreateSnapshot(ctx, col.Name)
		require.NoError(t, err, "snapshot s1")
		require.Equal(t, len(a), s1.Vectors)
		require.True(t, sameVectors(a, objectContent(ctx, t, s1.Object, s1.Size, s1.Checksum, dim)), "s1 holds the content")

		stack.InjectS3(ctx, t, slowGets)
		stack.InjectS3(ctx, t, slowUploads)

		orders := map[string]int{}
		var last api.Snapshot
		var lastContent []api.Vector
		for round := range rounds {
			// New values for every id and 50 new ids: content b ≠ a.
			b := merge(withValues(rng, a), newVectors(rng, fmt.Sprintf("r%d-", round), 50, dim))
			insertAll(ctx, t, c, col.Name, b)
			tier := allTiers[rng.IntN(len(allTiers))]
			_, err := c.SetTier(ctx, col.Name, tier)
			require.NoError(t, err, "round %d: move to %s", round, tier)

			var sn api.Snapshot
			var restored api.Collection
			var snErr, rsErr error
			together(2, func(i int) {
				if i == 0 {
					sn, snErr = c.CreateSnapshot(ctx, col.Name)
				} else {
					restored, rsErr = c.Restore(ctx, col.Name, s1.ID)
				}
			})
			require.NoError(t, snErr, "round %d: snapshot during the restore", round)
			require.NoError(t, rsErr, "round %d: restore during the snapshot", round)
			require.Equal(t, api.TierHot, restored.Tier, "round %d: a restore leaves the collection hot", round)
			require.Equal(t, len(a), restored.Vectors, "round %d: restored count", round)

			got := objectContent(ctx, t, sn.Object, sn.Size, sn.Checksum, dim)
			require.Equal(t, len(got), sn.Vectors, "round %d: the snapshot's reported count", round)
			switch {
			case sameVectors(got, b):
				orders["snapshot first"]++
			case sameVectors(got, a):
				orders["restore first"]++
			default:
				t.Fatalf("round %d (from %s): the snapshot taken during the restore is torn: %d vectors, neither the %d before nor the %d after",
					round, tier, len(got), len(b), len(a))
			}
			requireContent(ctx, t, c, rng, col.Name, col.Metric, a, 2)

			// The bucket holds no cold copy (the collection is hot) and
			// exactly the snapshots tierd lists.
			requireNoColdCopy(ctx, t, col.Name, "round ", round)
			list, err := c.Client().ListSnapshots(ctx, col.Name)
			require.NoError(t, err)
			var listed []string
			for _, s := range list {
				listed = append(listed, s.Object)
			}
			slices.Sort(listed)
			require.Equal(t, listed, keysOf(objectsUnder(ctx, t, col.Name, "snapshots/")), "round %d: snapshot objects", round)
			last, lastContent = sn, got
		}
		t.Logf("orders over %d rounds: %v", rounds, orders)

		// The snapshot taken during the last restore restores to exactly its
		// content; then s1 again.
		_, err = c.Restore(ctx, col.Name, last.ID)
		require.NoError(t, err, "restore the racing snapshot")
		requireContent(ctx, t, c, rng, col.Name, col.Metric, lastContent, 2)
		_, err = c.Restore(ctx, col.Name, s1.ID)
		require.NoError(t, err, "restore s1")

		// Only the restored content survives a crash: the WAL records of the
		// superseded inserts must not be replayed.
		stack.Inject(ctx, t, kill)
		requireContent(ctx, t, c, rng, col.Name, col.Metric, a, 2)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// racingTiers: scenario 4, with latency on tierd's S3 path, then a kill.
func racingTiers(latency fault.Net, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const (
			workers = 8
			raceFor = 10 * time.Second
		)
		c, rng := tc.Client, tc.Rand
		metrics := []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot}
		cols := make([]*fixture.Collection, len(metrics))
		names := make([]string, len(metrics))
		for i, m := range metrics {
			cols[i] = fixture.Create(ctx, t, c, rng, 300, dim, m)
			names[i] = cols[i].Name
		}
		stack.Inject(ctx, t, latency)

		answers, firstErr := answersUntil(ctx, tc, "tier-worker", workers, time.Now().Add(raceFor), func(r *rand.Rand) (string, string, error) {
			col := cols[r.IntN(len(cols))]
			switch p := r.IntN(10); {
			case p < 7:
				target := allTiers[r.IntN(len(allTiers))]
				_, err := c.SetTier(ctx, col.Name, target)
				return "set_tier", col.Name, err
			case p < 9:
				_, err := c.GetCollection(ctx, col.Name)
				return "get", col.Name, err
			default:
				_, err := c.Search(ctx, col.Name, fixture.RandomVectors(r, 1, dim)[0].Values, topK)
				return "search", col.Name, err
			}
		})
		t.Logf("answers: %v", answers)
		for key := range answers {
			require.Contains(t, []string{"set_tier ok", "set_tier " + api.CodeTransitionInProgress, "get ok", "search ok"}, key,
				"unexpected answer (all: %v; first of each error: %v)", answers, firstErr)
		}
		require.Positive(t, answers["set_tier ok"])
		require.Positive(t, answers["set_tier "+api.CodeTransitionInProgress], "requests really raced")

		// What each collection reports agrees with the bucket, and survives a
		// SIGKILL and restart unchanged.
		before := make([]api.Collection, len(cols))
		for i, col := range cols {
			var err error
			before[i], err = c.GetCollection(ctx, col.Name)
			require.NoError(t, err)
			require.Equal(t, len(col.Vectors), before[i].Vectors, "%s: vector count", col.Name)
			if before[i].Tier == api.TierCold {
				data := keysOf(objectsUnder(ctx, t, col.Name, "data/"))
				require.Equal(t, []string{before[i].Object}, data, "%s is cold: exactly its object is in MinIO", col.Name)
			} else {
				requireNoColdCopy(ctx, t, col.Name, col.Name, " is ", before[i].Tier)
			}
		}
		stack.Inject(ctx, t, kill)
		for i, col := range cols {
			after, err := c.GetCollection(ctx, col.Name)
			require.NoError(t, err)
			b := before[i]
			require.Equal(t, []any{b.Tier, b.Vectors, b.Snapshot, b.Checksum, b.Object},
				[]any{after.Tier, after.Vectors, after.Snapshot, after.Checksum, after.Object},
				"%s: tier, count, snapshot, checksum and object after the restart", col.Name)
			t.Logf("%s ends %s", col.Name, after.Tier)
			fixture.RequireExactSearch(ctx, t, c, rng, col, 3, topK)
		}
		tc.Check(ctx, t, check.Config{}, names...)
	}
}

// workerVsAPI: scenario 5, with jitter on tierd's S3 requests, then a
// kill.
func workerVsAPI(jitter fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const (
			clients = 4
			runFor  = 6 * time.Second
			pool    = 300 // ids p000..p299 per collection, on top of the initial 200
		)
		eager := map[string]string{
			"TIERD_WORKER_HOT_IDLE":         "1ms",
			"TIERD_WORKER_WARM_IDLE":        "1ms",
			"TIERD_WORKER_CHECKPOINT_BYTES": "16384",
			"TIERD_WAL_SEGMENT_BYTES":       "65536",
		}
		require.NoError(t, stack.ReconfigureTierd(ctx, eager), "reconfigure tierd with an eager worker")
		t.Cleanup(func() {
			undo := map[string]string{}
			for k := range eager {
				undo[k] = ""
			}
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := stack.ReconfigureTierd(cctx, undo); err != nil {
				t.Errorf("reconfigure tierd back to its defaults: %v", err)
			}
		})
		c, rng := tc.Client, tc.Rand
		metrics := []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot}
		names := make([]string, len(metrics))
		for i, m := range metrics {
			names[i] = fixture.Create(ctx, t, c, rng, 200, dim, m).Name
		}
		stack.InjectS3(ctx, t, jitter)

		// A first cycle demotes what earlier cases left hot, so that the
		// cycles under load are about this case's collections.
		_, err := stack.Tierd.Worker(ctx, api.WorkerRunOnce)
		require.NoError(t, err, "first run_once")

		var stopping atomic.Bool
		var cycles []api.WorkerCycle
		var workerErrs []error
		workerDone := make(chan struct{})
		go func() {
			defer close(workerDone)
			for !stopping.Load() && ctx.Err() == nil {
				st, err := stack.Tierd.Worker(ctx, api.WorkerRunOnce)
				switch {
				case err != nil:
					workerErrs = append(workerErrs, err)
				case st.Last != nil:
					cycles = append(cycles, *st.Last)
				}
			}
		}()

		answers, firstErr := answersUntil(ctx, tc, "api-client", clients, time.Now().Add(runFor), func(r *rand.Rand) (string, string, error) {
			name := names[r.IntN(len(names))]
			if r.IntN(2) == 0 {
				batch := fixture.RandomVectors(r, 1+r.IntN(8), dim)
				for i := range batch {
					batch[i].ID = fmt.Sprintf("p%03d", r.IntN(pool))
				}
				_, err := c.Insert(ctx, name, batch)
				return "insert", name, err
			}
			_, err := c.Search(ctx, name, fixture.RandomVectors(r, 1, dim)[0].Values, topK)
			return "search", name, err
		})
		stopping.Store(true)
		<-workerDone

		mine := func(ns []string) (n int) {
			for _, name := range ns {
				if slices.Contains(names, name) {
					n++
				}
			}
			return n
		}
		var warm, cold, checkpoints, walDropped, orphans int
		var cycleErrs []string
		for _, cy := range cycles {
			warm += mine(cy.DemotedWarm)
			cold += mine(cy.DemotedCold)
			checkpoints += len(cy.Checkpointed)
			walDropped += cy.WALSegmentsDropped
			orphans += len(cy.OrphansDeleted)
			cycleErrs = append(cycleErrs, cy.Errors...)
		}
		t.Logf("API answers: %v", answers)
		t.Logf("%d run_once cycles: %d demotions of the case's collections to warm, %d to cold, %d checkpoints, %d WAL segments dropped, %d orphans deleted",
			len(cycles), warm, cold, checkpoints, walDropped, orphans)
		require.Empty(t, workerErrs, "run_once requests failed")
		for _, e := range cycleErrs {
			// A promotion racing the cycle adds its key to the pending
			// deletes between the cycle's retry and its count, and deletes
			// it itself a moment later: allowed here only because the
			// quiet cycle below must drain it.
			require.Regexp(t, `^\d+ object deletes still pending$`, e, "worker cycle error")
		}
		for key := range answers {
			require.Contains(t, []string{"insert ok", "search ok"}, key, "unexpected answer (all: %v; first of each error: %v)", answers, firstErr)
		}
		require.Positive(t, warm+cold, "the worker demoted collections while the API used them")

		// Once quiet, a cycle has nothing left to report, and the bucket holds
		// exactly the objects of the cold collections.
		st, err := stack.Tierd.Worker(ctx, api.WorkerRunOnce)
		require.NoError(t, err)
		require.NotNil(t, st.Last)
		require.Empty(t, st.Last.Errors, "a cycle after the load reports no error")
		for _, name := range names {
			got, err := c.GetCollection(ctx, name)
			require.NoError(t, err)
			if got.Tier == api.TierCold {
				data := keysOf(objectsUnder(ctx, t, name, "data/"))
				if strings.HasPrefix(got.Object, fixture.PackDir) {
					// A member of a pack the worker wrote: no object of its
					// own, and the pack it reads its range from is stored.
					require.Empty(t, data, "%s is cold in the pack %s: no object of its own is in MinIO", name, got.Object)
					_, err := stack.S3.StatObject(ctx, tierd.Bucket, got.Object, minio.StatObjectOptions{})
					require.NoError(t, err, "%s is cold in the pack %s: the pack is in MinIO", name, got.Object)
				} else {
					require.Equal(t, []string{got.Object}, data, "%s is cold: exactly its object is in MinIO", name)
				}
			} else {
				requireNoColdCopy(ctx, t, name, name, " is ", got.Tier)
			}
		}

		// Nothing acknowledged is lost across a crash either, after
		// checkpoints and WAL segment drops.
		stack.Inject(ctx, t, kill)
		tc.Check(ctx, t, check.Config{AutoDemote: true}, names...)
	}
}

// deleteDuringTransition: own case. A delete (with a search and an insert)
// arrives while a transition from → to holds its S3 request (hold); then
// the name is reused for a collection of metric reuseMetric and dimension
// reuseDim, and tierd is killed (kill).
func deleteDuringTransition(from, to api.Tier, reuseMetric api.Metric, reuseDim int, hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, 400, dim, api.MetricCosine)
		fixture.RequireExactSearch(ctx, t, c, rng, col, 2, topK)
		if from != api.TierHot {
			_, err := c.SetTier(ctx, col.Name, from)
			require.NoError(t, err)
		}
		held := stack.InjectS3(ctx, t, hold)

		var trErr error
		transitioned := make(chan struct{})
		go func() {
			defer close(transitioned)
			_, trErr = c.SetTier(ctx, col.Name, to)
		}()
		waitMatched(ctx, t, held.ID, 1)
		var delErr, searchErr, insertErr error
		extra := newVectors(rng, "late-", 5, dim)
		together(3, func(i int) {
			switch i {
			case 0:
				delErr = c.DeleteCollection(ctx, col.Name)
			case 1:
				_, searchErr = c.Search(ctx, col.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK)
			case 2:
				_, insertErr = c.Insert(ctx, col.Name, extra)
			}
		})
		<-transitioned
		t.Logf("transition %s, delete %s, search %s, insert %s", codeName(trErr), codeName(delErr), codeName(searchErr), codeName(insertErr))
		require.NoError(t, trErr, "the transition that held the collection completes")
		require.NoError(t, delErr, "the delete waits for the transition, then succeeds")
		require.Contains(t, []string{"ok", api.CodeNotFound}, codeName(searchErr), "the racing search")
		require.Contains(t, []string{"ok", api.CodeNotFound}, codeName(insertErr), "the racing insert")

		_, err := c.GetCollection(ctx, col.Name)
		require.Equal(t, api.CodeNotFound, codeName(err), "the collection is gone")
		require.Empty(t, fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", col.Name), "no object of it left in MinIO")
		require.Empty(t, fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", col.Name), "no upload of it left")

		// The name is free again, and the new collection starts empty,
		// also after a crash (old WAL records and objects stay dead).
		_, err = c.CreateCollection(ctx, api.CreateCollectionRequest{Name: col.Name, Dimension: reuseDim, Metric: reuseMetric})
		require.NoError(t, err, "recreate under the same name")
		got, err := c.GetCollection(ctx, col.Name)
		require.NoError(t, err)
		require.Equal(t, 0, got.Vectors, "the recreated collection is empty")
		require.Equal(t, []any{reuseDim, reuseMetric}, []any{got.Dimension, got.Metric}, "the recreated collection's schema")
		fresh := newVectors(rng, "new-", 20, reuseDim)
		insertAll(ctx, t, c, col.Name, fresh)
		requireContent(ctx, t, c, rng, col.Name, reuseMetric, fresh, 2)
		stack.Inject(ctx, t, kill)
		requireContent(ctx, t, c, rng, col.Name, reuseMetric, fresh, 2)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// redemotionVsPendingDelete: own case. cold → warm keeps the snapshot id,
// so warm → cold stores the same key again; the cleanup of the first cold
// copy, deferred because S3 failed it (failDeletes), must not delete the
// second.
func redemotionVsPendingDelete(failDeletes fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, 300, dim, api.MetricCosine)
		_, err := c.SetTier(ctx, col.Name, api.TierCold)
		require.NoError(t, err)
		first := fixture.RequireTier(ctx, t, c, col, api.TierCold)

		fail := stack.InjectS3(ctx, t, failDeletes)
		failedDeletes := map[string]string{"result": "failed"}
		before := metricValue(ctx, t, "tierd_background_deletes_total", failedDeletes)
		_, err = c.SetTier(ctx, col.Name, api.TierWarm)
		require.NoError(t, err, "promotion to warm succeeds; only the cleanup of the cold copy fails")
		// The cleanup runs in the background after the promotion answered.
		require.Eventually(t, func() bool {
			return metricValue(ctx, t, "tierd_background_deletes_total", failedDeletes) > before
		}, 30*time.Second, pollEvery, "the background delete of the old cold copy ends (failed)")
		require.Positive(t, ruleStatus(ctx, t, fail.ID).Fired, "tierd tried to delete the old cold copy")
		require.Equal(t, []string{first.Object}, keysOf(objectsUnder(ctx, t, col.Name, "data/")), "the old copy is still there")
		require.NoError(t, fail.Remove(ctx), "remove %s", failDeletes)

		_, err = c.SetTier(ctx, col.Name, api.TierCold)
		require.NoError(t, err, "demote to cold again")
		second := fixture.RequireTier(ctx, t, c, col, api.TierCold)
		t.Logf("first cold object %s, second %s", first.Object, second.Object)
		// The worker retries pending deletes (and sweeps orphans).
		_, err = stack.Tierd.Worker(ctx, api.WorkerRunOnce)
		require.NoError(t, err)

		// Both the bucket and the user's view: a search promotes the cold
		// collection from its object.
		assert.Equal(t, []string{second.Object}, keysOf(objectsUnder(ctx, t, col.Name, "data/")),
			"exactly the object of the cold collection is in MinIO")
		fixture.RequireExactSearch(ctx, t, c, rng, col, queries, topK)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// insertOutcome is one insert batch of restoreDuringInserts.
type insertOutcome struct {
	batch       []api.Vector
	err         error
	call, reply time.Time
}

// restoreDuringInserts: own case. Inserts of new ids race a restore. Besides
// the checkers (which model restores), the case judges the final content
// exactly: s1's vectors plus every batch called after the restore returned,
// plus each racing batch entirely or not at all, and no batch acknowledged
// before the restore was called. The restore's download is held (hold);
// tierd is killed at the end (kill).
func restoreDuringInserts(hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const (
			inserters = 4
			perBatch  = 2
			maxRacing = 50 // batches per inserter before it waits for the restore: stays below api.MaxK
			after     = 3  // batches per inserter called after the restore returned
		)
		c, rng := tc.Client, tc.Rand
		col := fixture.Create(ctx, t, c, rng, 300, dim, api.MetricCosine)
		a := col.Vectors
		s1, err := c.CreateSnapshot(ctx, col.Name)
		require.NoError(t, err, "snapshot s1")
		superseded := newVectors(rng, "pre-", 50, dim)
		insertAll(ctx, t, c, col.Name, superseded)
		held := stack.InjectS3(ctx, t, hold)

		var restoreCall, restoreReply time.Time
		var restoreErr error
		var restored atomic.Bool
		restoreDone := make(chan struct{})
		outs := make([][]insertOutcome, inserters)
		var wg sync.WaitGroup
		for g := range inserters {
			r := tc.Seed.Stream(fmt.Sprintf("inserter-%d", g))
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Paced so that the batches spread over the restore; a
				// capped inserter waits for the restore before its last ones.
				limit := rate.NewLimiter(rate.Every(50*time.Millisecond), 1)
				afterCount := 0
				for n := 0; afterCount < after && ctx.Err() == nil; n++ {
					if n == maxRacing {
						<-restoreDone
					}
					if limit.Wait(ctx) != nil {
						return
					}
					batch := newVectors(r, fmt.Sprintf("w%d-%02d-", g, n), perBatch, dim)
					wasRestored := restored.Load()
					o := insertOutcome{batch: batch, call: time.Now()}
					_, o.err = c.Insert(ctx, col.Name, batch)
					o.reply = time.Now()
					outs[g] = append(outs[g], o)
					if wasRestored {
						afterCount++
					}
				}
			}()
		}
		go func() {
			defer close(restoreDone)
			restoreCall = time.Now()
			_, restoreErr = c.Restore(ctx, col.Name, s1.ID)
			restoreReply = time.Now()
			restored.Store(true)
		}()
		<-restoreDone
		wg.Wait()
		require.NoError(t, restoreErr, "restore s1 while inserts run")
		require.EqualValues(t, 1, ruleStatus(ctx, t, held.ID).Matched, "one download of the snapshot")

		// The listing of every id (k above the collection's size).
		listed := map[string]bool{}
		got, err := c.Search(ctx, col.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, api.MaxK)
		require.NoError(t, err)
		require.Less(t, len(got), api.MaxK)
		for _, r := range got {
			listed[r.ID] = true
		}
		for _, v := range superseded {
			require.False(t, listed[v.ID], "%s was inserted before the restore was called but survived it", v.ID)
		}
		want := slices.Clone(a)
		phases := map[string]int{}
		for g, os := range outs {
			for n, o := range os {
				require.NoError(t, o.err, "inserter %d batch %d", g, n)
				present := 0
				for _, v := range o.batch {
					if listed[v.ID] {
						present++
					}
				}
				switch {
				case o.reply.Before(restoreCall):
					phases["acknowledged before the restore"]++
					require.Zero(t, present, "inserter %d batch %d was acknowledged before the restore was called but survived it", g, n)
				case o.call.After(restoreReply):
					phases["called after the restore"]++
					require.Equal(t, len(o.batch), present, "inserter %d batch %d was called after the restore returned but is lost", g, n)
				default:
					require.Contains(t, []int{0, len(o.batch)}, present, "inserter %d batch %d raced the restore and is torn", g, n)
					if present == 0 {
						phases["racing, superseded"]++
					} else {
						phases["racing, kept"]++
					}
				}
				if present > 0 {
					want = append(want, o.batch...)
				}
			}
		}
		t.Logf("insert batches: %v", phases)
		require.Positive(t, phases["racing, superseded"]+phases["racing, kept"], "inserts raced the restore")
		require.Positive(t, phases["called after the restore"], "inserts followed the restore")
		require.Len(t, got, len(want), "no id other than s1's and the kept batches")
		requireContent(ctx, t, c, rng, col.Name, col.Metric, want, 2)

		stack.Inject(ctx, t, kill)
		requireContent(ctx, t, c, rng, col.Name, col.Metric, want, 2)
		tc.Check(ctx, t, check.Config{}, col.Name)
	}
}

// snapshotsVsSweep: own case. Uploads that commit while the worker's
// orphan sweep runs must never be taken for orphans; jitter delays
// tierd's S3 requests.
func snapshotsVsSweep(jitter fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const runFor = 4 * time.Second
		c, rng := tc.Client, tc.Rand
		cols := make([]*fixture.Collection, 4)
		names := make([]string, len(cols))
		for i := range cols {
			cols[i] = fixture.Create(ctx, t, c, rng, 200, dim, api.MetricCosine)
			names[i] = cols[i].Name
		}
		stack.InjectS3(ctx, t, jitter)

		wctx, stopWorker := context.WithCancel(ctx)
		defer stopWorker()
		var cycles, orphans int
		var workerErrs []error
		workerDone := make(chan struct{})
		go func() {
			defer close(workerDone)
			for wctx.Err() == nil {
				st, err := stack.Tierd.Worker(wctx, api.WorkerRunOnce)
				switch {
				case wctx.Err() != nil:
					return
				case err != nil:
					workerErrs = append(workerErrs, err)
				case st.Last != nil:
					cycles++
					orphans += len(st.Last.OrphansDeleted)
				}
			}
		}()
		var mu sync.Mutex
		answers := map[string]int{}
		note := func(key string) {
			mu.Lock()
			answers[key]++
			mu.Unlock()
		}
		deadline := time.Now().Add(runFor)
		var wg sync.WaitGroup
		for _, col := range cols {
			wg.Add(2)
			go func() { // snapshots back to back
				defer wg.Done()
				for time.Now().Before(deadline) && ctx.Err() == nil {
					_, err := c.CreateSnapshot(ctx, col.Name)
					note("snapshot " + codeName(err))
				}
			}()
			go func() { // hot ↔ cold, at most 20 requests a second
				defer wg.Done()
				limit := rate.NewLimiter(rate.Every(50*time.Millisecond), 1)
				for i := 0; time.Now().Before(deadline) && limit.Wait(ctx) == nil; i++ {
					target := api.TierCold
					if i%2 == 1 {
						target = api.TierHot
					}
					_, err := c.SetTier(ctx, col.Name, target)
					note("set_tier " + codeName(err))
				}
			}()
		}
		wg.Wait()
		stopWorker()
		<-workerDone
		t.Logf("answers: %v; %d run_once cycles deleted %d orphans", answers, cycles, orphans)
		require.Empty(t, workerErrs, "run_once requests failed")
		for key := range answers {
			require.Contains(t, []string{"snapshot ok", "set_tier ok", "set_tier " + api.CodeTransitionInProgress}, key,
				"unexpected answer (all: %v)", answers)
		}

		for _, col := range cols {
			got, err := c.GetCollection(ctx, col.Name)
			require.NoError(t, err)
			if got.Tier == api.TierCold {
				require.Equal(t, []string{got.Object}, keysOf(objectsUnder(ctx, t, col.Name, "data/")),
					"%s is cold: its object is in MinIO", col.Name)
			}
			list, err := c.Client().ListSnapshots(ctx, col.Name)
			require.NoError(t, err)
			require.NotEmpty(t, list)
			var listed []string
			for _, sn := range list {
				listed = append(listed, sn.Object)
			}
			slices.Sort(listed)
			require.Equal(t, listed, keysOf(objectsUnder(ctx, t, col.Name, "snapshots/")),
				"%s: the snapshot objects in MinIO are exactly the %d snapshots tierd lists", col.Name, len(list))
			// The oldest, a middle and the newest snapshot restore to the
			// collection's content (nothing was inserted meanwhile).
			_, err = c.SetTier(ctx, col.Name, api.TierHot)
			require.NoError(t, err)
			for _, sn := range []api.Snapshot{list[0], list[len(list)/2], list[len(list)-1]} {
				_, err := c.Restore(ctx, col.Name, sn.ID)
				require.NoError(t, err, "%s: restore snapshot %s", col.Name, sn.ID)
				requireContent(ctx, t, c, rng, col.Name, col.Metric, col.Vectors, 1)
			}
		}
		tc.Check(ctx, t, check.Config{}, names...)
	}
}

// killDuringRacingTiers: own case. tierd is killed with transitions,
// inserts and searches in flight, with latency on tierd's S3 path. The
// kill is no fault value: tierd starts again only once the workers
// stopped.
func killDuringRacingTiers(latency fault.Net) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		const (
			workers   = 6
			killAfter = 200 // operations completed before the kill
			maxBatchs = 40  // insert batches per worker: stays below api.MaxK
		)
		c, rng := tc.Client, tc.Rand
		metrics := []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot}
		names := make([]string, len(metrics))
		for i, m := range metrics {
			names[i] = fixture.Create(ctx, t, c, rng, 200, dim, m).Name
		}
		stack.Inject(ctx, t, latency)

		// killing is set just before the SIGKILL, killed once it landed: the
		// workers keep requests in flight until then. A request that got no
		// answer from tierd while the kill was under way was cut by it.
		var killing, killed atomic.Bool
		var done atomic.Int64
		name := func(err error) string {
			if err != nil && client.CodeOf(err) == "" {
				return "cut"
			}
			return codeName(err)
		}
		var mu sync.Mutex
		answers := map[string]int{}
		var wg sync.WaitGroup
		for w := range workers {
			r := tc.Seed.Stream(fmt.Sprintf("crash-worker-%d", w))
			wg.Add(1)
			go func() {
				defer wg.Done()
				batches := 0
				for i := 0; !killed.Load() && ctx.Err() == nil; i++ {
					coll := names[r.IntN(len(names))]
					var key string
					switch p := r.IntN(10); {
					case p < 5:
						_, err := c.SetTier(ctx, coll, allTiers[r.IntN(len(allTiers))])
						key = "set_tier " + name(err)
					case p < 7 && batches < maxBatchs:
						batches++
						_, err := c.Insert(ctx, coll, newVectors(r, fmt.Sprintf("k%d-%03d-", w, i), 3, dim))
						key = "insert " + name(err)
					case p < 9:
						_, err := c.Search(ctx, coll, fixture.RandomVectors(r, 1, dim)[0].Values, topK)
						key = "search " + name(err)
					default:
						_, err := c.GetCollection(ctx, coll)
						key = "get " + name(err)
					}
					if strings.HasSuffix(key, " cut") && killing.Load() {
						key = "cut by the kill"
					}
					mu.Lock()
					answers[key]++
					mu.Unlock()
					done.Add(1)
					if key == "cut by the kill" {
						return // tierd is gone
					}
				}
			}()
		}
		require.Eventually(t, func() bool { return done.Load() >= killAfter }, time.Minute, pollEvery,
			"the workers never completed %d operations", killAfter)
		killing.Store(true)
		require.NoError(t, stack.KillTierd(ctx), "SIGKILL tierd")
		killed.Store(true)
		wg.Wait()
		cut := 0
		for _, op := range tc.Rec.Ops() {
			if op.Outcome == history.Unknown {
				cut++
			}
		}
		t.Logf("answers: %v; %d operations with unknown outcome", answers, cut)
		for key := range answers {
			require.Contains(t, []string{"set_tier ok", "set_tier " + api.CodeTransitionInProgress, "insert ok", "search ok", "get ok",
				"cut by the kill"}, key, "unexpected answer (all: %v)", answers)
		}
		require.Positive(t, answers["cut by the kill"], "the kill cut requests in flight")
		require.NoError(t, stack.StartTierd(ctx), "restart tierd")

		for _, name := range names {
			got, err := c.GetCollection(ctx, name)
			require.NoError(t, err)
			want := []string{}
			if got.Tier == api.TierCold {
				want = []string{got.Object}
			}
			t.Logf("%s is %s after the restart", name, got.Tier)
			require.Eventually(t, func() bool {
				var keys []string
				for o := range stack.S3.ListObjects(ctx, tierd.Bucket, minio.ListObjectsOptions{
					Prefix: fixture.ObjectPrefix("", name) + "data/", Recursive: true}) {
					if o.Err != nil {
						return false
					}
					keys = append(keys, o.Key)
				}
				return slices.Equal(want, keys)
			}, 30*time.Second, 50*time.Millisecond, "%s (%s): the bucket never settled on exactly %v", name, got.Tier, want)
			// MinIO ignores S3's prefix rule when listing incomplete uploads, so
			// list them all and filter by the collection's prefix.
			require.Eventually(t, func() bool {
				n := 0
				for u := range stack.S3.ListIncompleteUploads(ctx, tierd.Bucket, "", true) {
					if u.Err != nil {
						return false
					}
					if strings.HasPrefix(u.Key, fixture.ObjectPrefix("", name)) {
						n++
					}
				}
				return n == 0
			}, 30*time.Second, 50*time.Millisecond, "%s: incomplete uploads never removed", name)
		}
		tc.Check(ctx, t, check.Config{}, names...)
	}
}
