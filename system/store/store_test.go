package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/uploader"
)

const dim = 4

func setup(t *testing.T, s *store.Store, name string, m api.Metric) data {
	t.Helper()
	ctx := context.Background()
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: name, Dimension: dim, Metric: m})
	require.NoError(t, err)
	want := data{}
	for i, b := range [][]api.Vector{batch("a", 40, dim, 1), batch("b", 25, dim, 2), batch("a", 5, dim, 3)} {
		n, err := s.Insert(ctx, name, b)
		require.NoError(t, err, "batch %d", i)
		require.Equal(t, len(b), n)
		want.add(b)
	}
	return want
}

func TestTransitionsThroughAllTiers(t *testing.T) {
	f := newFixture(t, nil)
	s := f.open(t, nil)
	ctx := context.Background()
	want := setup(t, s, "c", api.MetricL2)
	steps := []api.Tier{api.TierWarm, api.TierCold, api.TierWarm, api.TierHot, api.TierCold, api.TierHot, api.TierWarm, api.TierHot}
	for _, target := range steps {
		c, err := s.SetTier(ctx, "c", target)
		require.NoError(t, err, "to %s", target)
		require.Equal(t, target, c.Tier)
		require.Equal(t, len(want), c.Vectors)
		files, temps := localFiles(t, f.dir)
		require.Empty(t, temps)
		switch target {
		case api.TierCold:
			require.Equal(t, []string{c.Object}, objectKeys(t, f.objs, "collections/c/"))
			require.Empty(t, files)
		case api.TierWarm:
			requireNoObjects(t, f, "collections/c/")
			require.Len(t, files, 1)
		case api.TierHot:
			requireNoObjects(t, f, "collections/c/")
			require.LessOrEqual(t, len(files), 1, "at most the checkpoint")
		}
		// Restart in this tier: the state survives.
		require.NoError(t, s.Close())
		s = f.open(t, nil)
		c, err = s.Get(ctx, "c")
		require.NoError(t, err)
		require.Equal(t, target, c.Tier)
	}
	requireContent(t, s, "c", api.MetricL2, want, dim)
}

func TestTransparentPromotion(t *testing.T) {
	f := newFixture(t, nil)
	s := f.open(t, nil)
	ctx := context.Background()
	want := setup(t, s, "p", api.MetricDot)
	for _, from := range []api.Tier{api.TierWarm, api.TierCold} {
		_, err := s.SetTier(ctx, "p", from)
		require.NoError(t, err)
		// An insert touches the collection: it is promoted, then written.
		b := batch("ins-"+string(from), 3, dim, 9)
		_, err = s.Insert(ctx, "p", b)
		require.NoError(t, err)
		want.add(b)
		c, err := s.Get(ctx, "p")
		require.NoError(t, err)
		require.Equal(t, api.TierHot, c.Tier)
		_, err = s.SetTier(ctx, "p", from)
		require.NoError(t, err)
		requireContent(t, s, "p", api.MetricDot, want, dim)
	}
}

func TestRecoveryReplaysWAL(t *testing.T) {
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "w", api.MetricCosine)
	require.NoError(t, s.Close())
	// A torn record at the end of the WAL (a crash mid-write) is dropped.
	segs, err := filepath.Glob(filepath.Join(f.dir, "wal", "wal-*.log"))
	require.NoError(t, err)
	var last string
	for _, p := range segs {
		if info, _ := os.Stat(p); info.Size() > 0 {
			last = p
		}
	}
	fh, err := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fh.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5, 6})
	require.NoError(t, err)
	require.NoError(t, fh.Close())
	s = f.open(t, nil)
	requireContent(t, s, "w", api.MetricCosine, want, dim)
	b := batch("after", 4, dim, 5)
	_, err = s.Insert(context.Background(), "w", b)
	require.NoError(t, err)
	want.add(b)
	require.NoError(t, s.Close())
	s = f.open(t, nil)
	requireContent(t, s, "w", api.MetricCosine, want, dim)
}

// TestCrashDuringTransition kills the store at every step of every
// transition and checks, after a restart: the collection is in exactly one
// tier (the old one before the manifest flip, the new one after), every
// acknowledged insert is present, and no temporary file, orphaned object
// or incomplete upload is left once the start-up sweep and one worker
// cycle have run.
func TestCrashDuringTransition(t *testing.T) {
	type path struct {
		from, to api.Tier
		points   []string
		// flipAt is the first point at which the new tier is committed.
		flipAt string
	}
	paths := []path{
		{api.TierHot, api.TierCold, []string{store.HookColdEncoded, store.HookColdUploaded, store.HookColdVerified, store.HookColdCommitted, store.HookColdCleaned}, store.HookColdCommitted},
		{api.TierWarm, api.TierCold, []string{store.HookColdEncoded, store.HookColdUploaded, store.HookColdVerified, store.HookColdCommitted, store.HookColdCleaned}, store.HookColdCommitted},
		{api.TierHot, api.TierWarm, []string{store.HookWarmWritten, store.HookWarmCommitted}, store.HookWarmCommitted},
		{api.TierCold, api.TierHot, []string{store.HookHotLoaded, store.HookHotCommitted}, store.HookHotCommitted},
		{api.TierWarm, api.TierHot, []string{store.HookHotLoaded, store.HookHotCommitted}, store.HookHotCommitted},
		{api.TierCold, api.TierWarm, []string{store.HookHotLoaded, store.HookHotCommitted}, store.HookHotCommitted},
	}
	for _, p := range paths {
		for i, point := range p.points {
			t.Run(fmt.Sprintf("%s-to-%s/%s", p.from, p.to, point), func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, nil)
				s := f.open(t, nil)
				want := setup(t, s, "k", api.MetricL2)
				if p.from != api.TierHot {
					_, err := s.SetTier(ctx, "k", p.from)
					require.NoError(t, err)
				}
				require.NoError(t, s.Close())

				s = f.open(t, func(o *store.Options) { o.Hook = crashAt(point) })
				got := runCrashing(func() { _, _ = s.SetTier(ctx, "k", p.to) })
				require.Equal(t, point, got, "the transition passes the hook point")
				require.NoError(t, s.Close()) // the process is gone

				s = f.open(t, nil)
				flipIdx := 0
				for j, q := range p.points {
					if q == p.flipAt {
						flipIdx = j
					}
				}
				expect := p.from
				if i >= flipIdx {
					expect = p.to
				}
				c, err := s.Get(ctx, "k")
				require.NoError(t, err)
				require.Equal(t, expect, c.Tier)
				require.Equal(t, len(want), c.Vectors)
				_, temps := localFiles(t, f.dir)
				require.Empty(t, temps, "no temporary file survives a restart")

				// Start-up sweep and one worker cycle clean up the rest.
				_, err = s.SweepOrphans(ctx)
				require.NoError(t, err)
				var cyc api.WorkerCycle
				s.Maintain(ctx, store.MaintainOptions{}, &cyc)
				require.Empty(t, cyc.Errors)
				keys := objectKeys(t, f.objs, "collections/")
				if expect == api.TierCold {
					require.Equal(t, []string{c.Object}, keys)
				} else {
					require.Empty(t, keys)
				}
				require.Zero(t, incomplete(t, f.objs, "collections/"))
				files, _ := localFiles(t, f.dir)
				if expect == api.TierWarm {
					require.Len(t, files, 1)
				}
				if expect == api.TierCold {
					require.Empty(t, files)
				}

				// The data is complete and the collection keeps working.
				requireContent(t, s, "k", api.MetricL2, want, dim)
				b := batch("post", 3, dim, 4)
				_, err = s.Insert(ctx, "k", b)
				require.NoError(t, err)
				want.add(b)
				require.NoError(t, s.Close())
				s = f.open(t, nil)
				requireContent(t, s, "k", api.MetricL2, want, dim)
			})
		}
	}
}

func TestCorruptLocalSnapshotIsNotServed(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"bit flip", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			b[len(b)/3] ^= 0x01
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}},
		{"truncated", func(t *testing.T, p string) {
			info, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(p, info.Size()/2))
		}},
		{"missing", func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, nil)
			s := f.open(t, nil)
			setup(t, s, "z", api.MetricDot)
			_, err := s.SetTier(ctx, "z", api.TierWarm)
			require.NoError(t, err)
			files, _ := localFiles(t, f.dir)
			require.Len(t, files, 1)
			tc.damage(t, filepath.Join(f.dir, files[0]))
			for _, op := range []func() error{
				func() error { _, err := s.Search(ctx, "z", ones(dim, 1), 3); return err },
				func() error { _, err := s.SetTier(ctx, "z", api.TierHot); return err },
				func() error { _, err := s.SetTier(ctx, "z", api.TierCold); return err },
			} {
				err := op()
				require.Equal(t, api.CodeDataCorrupted, api.CodeOf(err), "%v", err)
				require.ErrorContains(t, err, files[0])
			}
			c, err := s.Get(ctx, "z")
			require.NoError(t, err)
			require.Equal(t, api.TierWarm, c.Tier)
			require.Empty(t, objectKeys(t, f.objs, "collections/"), "a corrupt file is never uploaded")
		})
	}
}

func TestCorruptColdObjectIsNotServed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "o", api.MetricDot)
	c, err := s.SetTier(ctx, "o", api.TierCold)
	require.NoError(t, err)
	for _, fault := range []uploader.Fault{
		{Kind: uploader.FaultCorrupt, Op: uploader.OpGetObject},
		{Kind: uploader.FaultPartial, Op: uploader.OpGetObject, Bytes: 100},
	} {
		id, err := f.objs.Inject(fault)
		require.NoError(t, err)
		_, err = s.Search(ctx, "o", ones(dim, 1), 3)
		f.objs.RemoveFault(id)
		code := api.CodeOf(err)
		require.Contains(t, []string{api.CodeDataCorrupted, api.CodeStorageUnavailable}, code, "%v", err)
		if fault.Kind == uploader.FaultCorrupt {
			require.Equal(t, api.CodeDataCorrupted, code)
			require.ErrorContains(t, err, c.Object)
		}
		got, err := s.Get(ctx, "o")
		require.NoError(t, err)
		require.Equal(t, api.TierCold, got.Tier)
	}
	requireContent(t, s, "o", api.MetricDot, want, dim)
}

func TestHotQuotaDemotesLRU(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	// Each batch of 40 vectors of dim 4 with ids "a0".."a39" costs
	// 40*(16+64)+ids ≈ 3300 bytes.
	f := newFixture(t, func(o *store.Options) { o.Quotas.HotBytes = 8000; o.Now = clk.Now })
	s := f.open(t, nil)
	for _, name := range []string{"q1", "q2"} {
		_, err := s.Create(ctx, api.CreateCollectionRequest{Name: name, Dimension: dim, Metric: api.MetricL2})
		require.NoError(t, err)
		_, err = s.Insert(ctx, name, batch("a", 40, dim, 1))
		require.NoError(t, err)
		clk.Advance(time.Second)
	}
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "q3", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	// q1 is the least recently used: it is demoted to make room.
	_, err = s.Insert(ctx, "q3", batch("a", 40, dim, 1))
	require.NoError(t, err)
	tiers := map[string]api.Tier{}
	for _, c := range s.List(ctx) {
		tiers[c.Name] = c.Tier
	}
	require.Equal(t, map[string]api.Tier{"q1": api.TierWarm, "q2": api.TierHot, "q3": api.TierHot}, tiers)
	u := s.Usage()
	require.LessOrEqual(t, u.HotBytes, int64(8000))
	// A single insert larger than the whole quota is refused, naming it.
	_, err = s.Insert(ctx, "q3", batch("big", 200, dim, 1))
	require.Equal(t, api.CodeQuotaExceeded, api.CodeOf(err))
	require.ErrorContains(t, err, "hot_bytes")
	// Searching q1 promotes it, demoting q2 (now the LRU) in turn.
	clk.Advance(time.Second)
	_, err = s.Search(ctx, "q1", ones(dim, 1), 1)
	require.NoError(t, err)
	c, err := s.Get(ctx, "q2")
	require.NoError(t, err)
	require.Equal(t, api.TierWarm, c.Tier)
}

func TestHotQuotaRefusesWhenNothingCanBeDemoted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *store.Options) { o.Quotas.HotBytes = 4000 })
	s := f.open(t, nil)
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "only", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = s.Insert(ctx, "only", batch("a", 40, dim, 1))
	require.NoError(t, err)
	_, err = s.Insert(ctx, "only", batch("b", 40, dim, 1))
	require.Equal(t, api.CodeQuotaExceeded, api.CodeOf(err))
	c, err := s.Get(ctx, "only")
	require.NoError(t, err)
	require.Equal(t, 40, c.Vectors, "a refused insert changes nothing")
}

func TestWarmQuota(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *store.Options) { o.Quotas.WarmBytes = 100 })
	s := f.open(t, nil)
	want := setup(t, s, "wq", api.MetricL2)
	_, err := s.SetTier(ctx, "wq", api.TierWarm)
	require.Equal(t, api.CodeQuotaExceeded, api.CodeOf(err))
	require.ErrorContains(t, err, "warm_bytes")
	c, err := s.Get(ctx, "wq")
	require.NoError(t, err)
	require.Equal(t, api.TierHot, c.Tier)
	files, temps := localFiles(t, f.dir)
	require.Empty(t, files)
	require.Empty(t, temps)
	// Cold does not need the local volume.
	_, err = s.SetTier(ctx, "wq", api.TierCold)
	require.NoError(t, err)
	// Promotion from cold passes through the local volume: refused too.
	_, err = s.SetTier(ctx, "wq", api.TierHot)
	require.Equal(t, api.CodeQuotaExceeded, api.CodeOf(err))
	require.NoError(t, s.Close())
	s = f.open(t, func(o *store.Options) { o.Quotas.WarmBytes = 1 << 20 })
	requireContent(t, s, "wq", api.MetricL2, want, dim)
}

func TestConcurrentCreatesAtCollectionLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *store.Options) { o.Quotas.Collections = 10 })
	s := f.open(t, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range 100 {
		wg.Go(func() {
			_, err := s.Create(ctx, api.CreateCollectionRequest{Name: fmt.Sprintf("c%03d", i), Dimension: 2, Metric: api.MetricDot})
			code := "ok"
			if err != nil {
				code = api.CodeOf(err)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[string]int{"ok": 10, api.CodeQuotaExceeded: 90}, codes)
	require.Len(t, s.List(ctx), 10)
	require.NoError(t, s.Close())
	s = f.open(t, nil)
	require.Len(t, s.List(ctx), 10, "exactly the acknowledged creates survive a restart")
}

func TestConcurrentTransitionsOnOneCollection(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "race", api.MetricL2)
	_, err := f.objs.Inject(uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpPutObject, Delay: 20 * time.Millisecond, Probability: 0.5})
	require.NoError(t, err)
	targets := []api.Tier{api.TierHot, api.TierWarm, api.TierCold}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	stop := make(chan struct{})
	// Readers see the full content in every state.
	searchErrs := make(chan error, 1)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := s.Search(ctx, "race", ones(dim, 1), api.MaxK)
			if err == nil && !assert.ObjectsAreEqual(oracle(api.MetricL2, want, ones(dim, 1), api.MaxK), got) {
				err = fmt.Errorf("partial state served: %d results", len(got))
			}
			if err != nil {
				select {
				case searchErrs <- err:
				default:
				}
				return
			}
		}
	})
	var tw sync.WaitGroup
	for g := range 16 {
		tw.Go(func() {
			for i := range 10 {
				_, err := s.SetTier(ctx, "race", targets[(g+i)%3])
				code := "ok"
				if err != nil {
					code = api.CodeOf(err)
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	tw.Wait()
	close(stop)
	wg.Wait()
	select {
	case err := <-searchErrs:
		t.Fatal(err)
	default:
	}
	for code := range codes {
		require.Contains(t, []string{"ok", api.CodeTransitionInProgress}, code)
	}
	require.Positive(t, codes["ok"])
	require.Equal(t, 160, codes["ok"]+codes[api.CodeTransitionInProgress])
	c, err := s.Get(ctx, "race")
	require.NoError(t, err)
	keys := objectKeys(t, f.objs, "collections/")
	files, _ := localFiles(t, f.dir)
	switch c.Tier {
	case api.TierCold:
		require.Equal(t, []string{c.Object}, keys)
		require.Empty(t, files)
	case api.TierWarm:
		// The cold copy a promotion replaced is deleted in the background.
		requireNoObjects(t, f, "collections/")
		require.Len(t, files, 1)
	default:
		requireNoObjects(t, f, "collections/")
	}
	requireContent(t, s, "race", api.MetricL2, want, dim)
}

func TestSnapshotAndRestore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "sn", api.MetricCosine)
	snap, err := s.CreateSnapshot(ctx, "sn")
	require.NoError(t, err)
	require.Equal(t, len(want), snap.Vectors)
	require.Contains(t, objectKeys(t, f.objs, "collections/sn/snapshots/"), snap.Object)
	// Change the content after the snapshot, also demote.
	_, err = s.Insert(ctx, "sn", batch("later", 10, dim, 8))
	require.NoError(t, err)
	_, err = s.SetTier(ctx, "sn", api.TierCold)
	require.NoError(t, err)
	// A snapshot of a cold collection works too and keeps it cold.
	snap2, err := s.CreateSnapshot(ctx, "sn")
	require.NoError(t, err)
	require.Equal(t, len(want)+10, snap2.Vectors)
	list, err := s.ListSnapshots(ctx, "sn")
	require.NoError(t, err)
	require.Equal(t, []string{snap.ID, snap2.ID}, []string{list[0].ID, list[1].ID})

	c, err := s.Restore(ctx, "sn", snap.ID)
	require.NoError(t, err)
	require.Equal(t, api.TierHot, c.Tier)
	requireContent(t, s, "sn", api.MetricCosine, want, dim)
	// The old cold object is gone, both snapshots remain.
	require.ElementsMatch(t, []string{snap.Object, snap2.Object}, objectKeys(t, f.objs, "collections/sn/"))
	// After a restart the restored content stands: the superseded WAL
	// records are not replayed on top of it.
	require.NoError(t, s.Close())
	s = f.open(t, nil)
	requireContent(t, s, "sn", api.MetricCosine, want, dim)
	_, err = s.Restore(ctx, "sn", "nope")
	require.Equal(t, api.CodeNotFound, api.CodeOf(err))
	// Deleting the collection deletes every object of it.
	require.NoError(t, s.Delete(ctx, "sn"))
	require.Empty(t, objectKeys(t, f.objs, "collections/sn/"))
	files, _ := localFiles(t, f.dir)
	require.Empty(t, files)
}

func TestWorkerDemotesIdleAndCheckpoints(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	f := newFixture(t, func(o *store.Options) {
		o.Now = clk.Now
		o.CheckpointBytes = 1000
		o.WAL.SegmentBytes = 8 << 10
	})
	s := f.open(t, nil)
	idleWant := setup(t, s, "idle", api.MetricL2)
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "busy", Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	busyWant := data{}
	// Enough WAL to span several segments.
	for i := range 60 {
		b := batch(fmt.Sprintf("w%d-", i), 50, dim, i)
		_, err := s.Insert(ctx, "busy", b)
		require.NoError(t, err)
		busyWant.add(b)
	}
	before := s.Usage().WALSegments
	require.Greater(t, before, 2)
	opts := store.MaintainOptions{HotIdle: time.Minute, WarmIdle: time.Hour}

	clk.Advance(2 * time.Minute)
	_, err = s.Insert(ctx, "busy", batch("fresh", 1, dim, 0))
	require.NoError(t, err)
	busyWant.add(batch("fresh", 1, dim, 0))
	var cyc api.WorkerCycle
	s.Maintain(ctx, opts, &cyc)
	require.Empty(t, cyc.Errors)
	require.Equal(t, []string{"idle"}, cyc.DemotedWarm)
	require.Empty(t, cyc.DemotedCold)
	require.Equal(t, []string{"busy"}, cyc.Checkpointed)
	require.Positive(t, cyc.WALSegmentsDropped)
	require.Less(t, s.Usage().WALSegments, before)

	clk.Advance(2 * time.Hour)
	cyc = api.WorkerCycle{}
	s.Maintain(ctx, opts, &cyc)
	// busy, idle beyond both limits, passes warm to cold in one cycle.
	require.Equal(t, []string{"busy"}, cyc.DemotedWarm)
	require.Equal(t, []string{"busy", "idle"}, cyc.DemotedCold)

	require.NoError(t, s.Close())
	s = f.open(t, func(o *store.Options) { o.Now = clk.Now })
	requireContent(t, s, "idle", api.MetricL2, idleWant, dim)
	requireContent(t, s, "busy", api.MetricL2, busyWant, dim)
}

func TestDemotionFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	// A 5 MiB part size and 6 MiB of data force a multipart upload.
	f := newFixture(t, nil)
	s := f.open(t, nil)
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "mp", Dimension: 1024, Metric: api.MetricDot})
	require.NoError(t, err)
	want := data{}
	for i := range 3 {
		b := batch(fmt.Sprintf("m%d-", i), 500, 1024, i)
		_, err := s.Insert(ctx, "mp", b)
		require.NoError(t, err)
		want.add(b)
	}
	cases := []uploader.Fault{
		{Kind: uploader.FaultConnReset, Op: uploader.OpUploadPart, After: 1},
		{Kind: uploader.FaultAccessDenied, Op: uploader.OpCompleteMultipart},
		{Kind: uploader.FaultInternal, Op: uploader.OpStatObject},
	}
	for _, fault := range cases {
		t.Run(string(fault.Kind)+"-"+string(fault.Op), func(t *testing.T) {
			id, err := f.objs.Inject(fault)
			require.NoError(t, err)
			_, err = s.SetTier(ctx, "mp", api.TierCold)
			f.objs.RemoveFault(id)
			require.Equal(t, api.CodeStorageUnavailable, api.CodeOf(err), "%v", err)
			c, err := s.Get(ctx, "mp")
			require.NoError(t, err)
			require.Equal(t, api.TierHot, c.Tier)
			require.Empty(t, objectKeys(t, f.objs, "collections/"))
			require.Zero(t, incomplete(t, f.objs, "collections/"), "no orphaned multipart parts")
		})
	}
	_, err = s.SetTier(ctx, "mp", api.TierCold)
	require.NoError(t, err)
	requireContent(t, s, "mp", api.MetricDot, want, 1024)
}

// TestRedemotionDoesNotLoseToAPendingDelete: the cold copy's delete fails
// on promotion and stays pending; a new demotion must not store the object
// the pending delete will remove.
func TestRedemotionDoesNotLoseToAPendingDelete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	reg := prometheus.NewRegistry()
	s := f.open(t, func(o *store.Options) { o.Registerer = reg })
	want := setup(t, s, "rd", api.MetricCosine)
	first, err := s.SetTier(ctx, "rd", api.TierCold)
	require.NoError(t, err)
	id, err := f.objs.Inject(uploader.Fault{Kind: uploader.FaultInternal, Op: uploader.OpDeleteObject})
	require.NoError(t, err)
	_, err = s.SetTier(ctx, "rd", api.TierWarm)
	require.NoError(t, err, "the promotion succeeds; only the cleanup (in the background) fails")
	require.Eventually(t, func() bool { return backgroundDeletes(t, reg, "failed") >= 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{first.Object}, objectKeys(t, f.objs, "collections/rd/"))
	f.objs.RemoveFault(id)
	second, err := s.SetTier(ctx, "rd", api.TierCold)
	require.NoError(t, err)
	require.NotEqual(t, first.Object, second.Object)
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &cyc)
	require.Empty(t, cyc.Errors)
	require.Equal(t, []string{second.Object}, objectKeys(t, f.objs, "collections/rd/"))
	requireContent(t, s, "rd", api.MetricCosine, want, dim)
}

// TestWaitersShareAFailedPromotion: searches that wait for a failing
// promotion get its error instead of downloading again each.
func TestWaitersShareAFailedPromotion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	want := setup(t, s, "sh", api.MetricL2)
	_, err := s.SetTier(ctx, "sh", api.TierCold)
	require.NoError(t, err)
	// The first GET hangs 200ms (while the other searches queue up), then
	// every GET is refused.
	lid, err := f.objs.Inject(uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpGetObject, Delay: 200 * time.Millisecond, Times: 1})
	require.NoError(t, err)
	fid, err := f.objs.Inject(uploader.Fault{Kind: uploader.FaultAccessDenied, Op: uploader.OpGetObject})
	require.NoError(t, err)
	f.objs.ResetMetrics()
	var wg sync.WaitGroup
	codes := make([]string, 8)
	for i := range codes {
		wg.Go(func() {
			_, err := s.Search(ctx, "sh", ones(dim, 1), 3)
			codes[i] = api.CodeOf(err)
		})
	}
	wg.Wait()
	for _, c := range codes {
		require.Contains(t, []string{api.CodeStorageUnavailable}, c)
	}
	gets := f.objs.Metrics().Ops[uploader.OpGetObject].Calls
	require.Less(t, gets, int64(8), "waiters did not each download again (%d GETs)", gets)
	f.objs.RemoveFault(fid)
	f.objs.RemoveFault(lid)
	requireContent(t, s, "sh", api.MetricL2, want, dim)
}

// TestUploadLeftWhileS3DownIsAbortedLater: S3 fails the demotion and its
// cleanup; once S3 answers, one worker cycle aborts the incomplete upload.
func TestUploadLeftWhileS3DownIsAbortedLater(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	s := f.open(t, nil)
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "ab", Dimension: 1024, Metric: api.MetricDot})
	require.NoError(t, err)
	want := data{}
	for i := range 3 {
		b := batch(fmt.Sprintf("m%d-", i), 500, 1024, i)
		_, err := s.Insert(ctx, "ab", b)
		require.NoError(t, err)
		want.add(b)
	}
	var ids []uploader.FaultID
	for _, op := range []uploader.Op{uploader.OpUploadPart, uploader.OpAbortMultipart, uploader.OpListMultipartUploads, uploader.OpDeleteObject} {
		fault := uploader.Fault{Kind: uploader.FaultAccessDenied, Op: op}
		if op == uploader.OpUploadPart {
			fault.After = 1 // the first part lands, the second fails
		}
		id, err := f.objs.Inject(fault)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	_, err = s.SetTier(ctx, "ab", api.TierCold)
	require.Equal(t, api.CodeStorageUnavailable, api.CodeOf(err), "%v", err)
	f.objs.RemoveFault(ids[2]) // let the test list
	require.Equal(t, 1, incomplete(t, f.objs, "collections/"), "the abort could not reach S3")
	for _, id := range ids {
		f.objs.RemoveFault(id)
	}
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &cyc)
	require.Empty(t, cyc.Errors)
	require.Zero(t, incomplete(t, f.objs, "collections/"))
	require.Empty(t, objectKeys(t, f.objs, "collections/"))
	c, err := s.Get(ctx, "ab")
	require.NoError(t, err)
	require.Equal(t, api.TierHot, c.Tier)
	requireContent(t, s, "ab", api.MetricDot, want, 1024)
}

// TestInsertsAfterRestartWithAllWALDropped is the nemesis's find: a worker
// cycle checkpoints everything and drops every WAL segment, tierd restarts,
// a cold collection (its snapshot covering the old LSNs) is promoted by an
// insert, and tierd crashes. The inserts must be replayed: before the fix
// the reopened WAL numbered records from 1 again, below the LSN the cold
// collection's snapshot covers, and recovery skipped them as covered.
func TestInsertsAfterRestartWithAllWALDropped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *store.Options) { o.CheckpointBytes = 1 })
	s := f.open(t, nil)
	want := setup(t, s, "c", api.MetricL2)
	hot := setup(t, s, "h", api.MetricL2)
	_, err := s.SetTier(ctx, "c", api.TierCold)
	require.NoError(t, err)
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &cyc) // checkpoints h; every record is covered
	require.Empty(t, cyc.Errors)
	require.Equal(t, []string{"h"}, cyc.Checkpointed)
	cyc = api.WorkerCycle{}
	s.Maintain(ctx, store.MaintainOptions{}, &cyc) // the old segments go
	require.Empty(t, cyc.Errors)
	require.NoError(t, s.Close())

	s = f.open(t, nil)
	b := batch("after-restart", 5, dim, 3)
	_, err = s.Insert(ctx, "c", b) // promotes c to hot
	require.NoError(t, err)
	want.add(b)
	s.Halt() // crash: nothing flushed beyond what was acknowledged

	s = f.open(t, nil)
	requireContent(t, s, "c", api.MetricL2, want, dim)
	requireContent(t, s, "h", api.MetricL2, hot, dim)
}

// TestSnapshotUploadDoesNotBlockInserts is the nemesis's second find: a
// user snapshot of a hot collection held the collection's write lock for
// its whole upload, so while S3 hung (MinIO stopped) inserts into that hot
// collection waited seconds. Here the snapshot is held right after its
// upload; an insert into the collection must complete meanwhile.
func TestSnapshotUploadDoesNotBlockInserts(t *testing.T) {
	ctx := context.Background()
	uploaded, resume := make(chan struct{}), make(chan struct{})
	f := newFixture(t, nil)
	s := f.open(t, func(o *store.Options) {
		o.Hook = func(point string) {
			if point == store.HookSnapshotUploaded {
				close(uploaded)
				<-resume
			}
		}
	})
	setup(t, s, "h", api.MetricL2)
	snapDone := make(chan error, 1)
	go func() {
		_, err := s.CreateSnapshot(ctx, "h")
		snapDone <- err
	}()
	<-uploaded
	insertDone := make(chan error, 1)
	go func() {
		_, err := s.Insert(ctx, "h", batch("during-upload", 2, dim, 9))
		insertDone <- err
	}()
	select {
	case err := <-insertDone:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(resume)
		t.Fatal("an insert into a hot collection waited for a snapshot's upload")
	}
	close(resume)
	require.NoError(t, <-snapDone)
}

// TestDeleteWaitingForS3DoesNotBlockCreates: a delete whose object
// deletion hangs on S3 must not hold the lock that creates and other
// deletes take (the nemesis saw creates wait seconds while MinIO was down).
func TestDeleteWaitingForS3DoesNotBlockCreates(t *testing.T) {
	f := newFixture(t, nil)
	s := f.open(t, func(o *store.Options) {
		cs, err := cold.New(f.objs, cold.Options{OpTimeout: time.Minute, MaxRetries: 1, PartSize: 5 << 20, Concurrency: 2}, discard())
		require.NoError(t, err)
		o.Cold = cs
	})
	ctx := context.Background()
	setup(t, s, "doomed", api.MetricL2)
	setup(t, s, "other", api.MetricL2)
	_, err := s.CreateSnapshot(ctx, "doomed")
	require.NoError(t, err)
	_, err = f.objs.Inject(uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpDeleteObject, Delay: time.Minute})
	require.NoError(t, err)

	delCtx, cancel := context.WithCancel(ctx)
	delDone := make(chan error, 1)
	go func() { delDone <- s.Delete(delCtx, "doomed") }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-delDone, "the delete is durable; its objects stay pending")
	})
	require.Eventually(t, func() bool {
		return f.objs.Metrics().Ops[uploader.OpDeleteObject].Calls > 0
	}, 10*time.Second, 5*time.Millisecond, "the delete never reached S3")

	others := make(chan error, 2)
	go func() {
		_, err := s.Create(ctx, api.CreateCollectionRequest{Name: "fresh", Dimension: dim, Metric: api.MetricL2})
		others <- err
	}()
	go func() { others <- s.Delete(ctx, "other") }()
	for range 2 {
		select {
		case err := <-others:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a create or a delete of another collection waited for a delete's S3 call")
		}
	}
}
