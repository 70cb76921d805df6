package store_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/fsutil"
	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/uploader"
)

// packThreshold is the tests' size threshold: the collections of setup
// (70 vectors of dimension 4) are far below it, bigColl's far above.
const packThreshold = 16 << 10

// packsPrefix is where the packs of the tests' stores live (no S3 prefix).
const packsPrefix = "packs/_batch/"

// packedFixture returns a fixture whose stores pack warm demotions of
// small collections (at most maxItems members per pack) on a settable
// clock, and that clock.
func packedFixture(t *testing.T, maxItems int) (*fixture, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	f := newFixture(t, nil)
	f.mod = func(o *store.Options) {
		cs, err := cold.New(f.objs, cold.Options{OpTimeout: 2 * time.Second, MaxRetries: 2, PartSize: 5 << 20, Concurrency: 2,
			Batch: uploader.BatchConfig{Enabled: true, Size: maxItems, MaxBytes: 8 << 20, FlushInterval: time.Hour}}, discard())
		require.NoError(t, err)
		o.Cold, o.PackThreshold, o.Now = cs, packThreshold, clk.Now
	}
	return f, clk
}

// warmCollections creates n small collections p0..p(n-1), makes them
// warm and returns their contents.
func warmCollections(t *testing.T, s *store.Store, n int) map[string]data {
	t.Helper()
	out := map[string]data{}
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		out[name] = setup(t, s, name, api.MetricL2)
		_, err := s.SetTier(context.Background(), name, api.TierWarm)
		require.NoError(t, err)
	}
	return out
}

// bigColl creates a warm collection whose snapshot is above packThreshold.
func bigColl(t *testing.T, s *store.Store, name string) data {
	t.Helper()
	ctx := context.Background()
	_, err := s.Create(ctx, api.CreateCollectionRequest{Name: name, Dimension: dim, Metric: api.MetricL2})
	require.NoError(t, err)
	want := data{}
	b := batch("big", 3000, dim, 9)
	_, err = s.Insert(ctx, name, b)
	require.NoError(t, err)
	want.add(b)
	_, err = s.SetTier(ctx, name, api.TierWarm)
	require.NoError(t, err)
	return want
}

// idleCycle lets every collection idle past the warm idle time and runs
// one maintenance cycle, which must report no error.
func idleCycle(t *testing.T, s *store.Store, clk *clock) api.WorkerCycle {
	t.Helper()
	clk.Advance(2 * time.Hour)
	var cyc api.WorkerCycle
	s.Maintain(context.Background(), store.MaintainOptions{WarmIdle: time.Hour}, &cyc)
	require.Empty(t, cyc.Errors)
	return cyc
}

func TestWorkerPacksSmallDemotions(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	small := warmCollections(t, s, 5)
	big := bigColl(t, s, "big")
	f.objs.ResetMetrics()
	cyc := idleCycle(t, s, clk)
	require.ElementsMatch(t, []string{"p0", "p1", "p2", "p3", "p4", "big"}, cyc.DemotedCold)

	packs := objectKeys(t, f.objs, packsPrefix)
	require.Len(t, packs, 1, "the five small collections share one pack")
	require.Equal(t, int64(2), f.objs.Metrics().Ops[uploader.OpPutObject].Calls, "one PUT for the pack, one for the big collection")
	idx, err := uploader.ReadPackIndex(ctx, f.objs, packs[0])
	require.NoError(t, err)
	require.Len(t, idx.Members, 5)
	for name := range small {
		c, err := s.Get(ctx, name)
		require.NoError(t, err)
		require.Equal(t, api.TierCold, c.Tier)
		require.Equal(t, packs[0], c.Object, "a member's object is its pack")
		_, ok := idx.Lookup(packs[0], "packs/"+name+"."+c.Snapshot+".parquet")
		require.True(t, ok, "the pack's index lists %s", name)
	}
	c, err := s.Get(ctx, "big")
	require.NoError(t, err)
	require.Equal(t, api.TierCold, c.Tier)
	require.True(t, strings.HasPrefix(c.Object, "collections/big/data/"), "a large collection keeps its own object: %s", c.Object)
	files, _ := localFiles(t, f.dir)
	require.Empty(t, files, "no warm copy is left")

	// Each member is read with one ranged GET of its own bytes only.
	packSize := int64(0)
	for _, o := range mustList(t, f.objs, packsPrefix) {
		packSize = o.Size
	}
	for name, want := range small {
		f.objs.ResetMetrics()
		_, err := s.SetTier(ctx, name, api.TierHot)
		require.NoError(t, err)
		m := f.objs.Metrics().Ops
		require.Equal(t, int64(1), m[uploader.OpGetObjectRange].Calls, "one ranged GET promotes %s", name)
		require.Zero(t, m[uploader.OpGetObject].Calls, "the whole pack is never read")
		require.Less(t, m[uploader.OpGetObjectRange].BytesOut, packSize, "only the member's bytes")
		requireContent(t, s, name, api.MetricL2, want, dim)
	}
	_, err = s.SetTier(ctx, "big", api.TierHot)
	require.NoError(t, err)
	requireContent(t, s, "big", api.MetricL2, big, dim)
	requirePacksGone(t, s, f)
}

func TestSingleSmallDemotionKeepsItsOwnObject(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	want := warmCollections(t, s, 1)
	idleCycle(t, s, clk)
	require.Empty(t, objectKeys(t, f.objs, packsPrefix), "one candidate: no pack")
	c, err := s.Get(ctx, "p0")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(c.Object, "collections/p0/data/"))
	_, err = s.SetTier(ctx, "p0", api.TierHot)
	require.NoError(t, err)
	requireContent(t, s, "p0", api.MetricL2, want["p0"], dim)
}

func TestPacksSplitAtMaxItems(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 3)
	s := f.open(t, nil)
	want := warmCollections(t, s, 7)
	idleCycle(t, s, clk)
	require.Len(t, objectKeys(t, f.objs, packsPrefix), 3, "7 members in packs of at most 3")
	promoteAll(ctx, t, s, want)
	requirePacksGone(t, s, f)
}

// TestPackDeletedWithItsLastMember: a pack stays while any member refers
// to it, whichever way the others left (promotion, delete, restore), and
// goes with the last one.
func TestPackDeletedWithItsLastMember(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	want := warmCollections(t, s, 3)
	// p2 gets a user snapshot of its content before it is packed.
	sn, err := s.CreateSnapshot(ctx, "p2")
	require.NoError(t, err)
	idleCycle(t, s, clk)
	packs := objectKeys(t, f.objs, packsPrefix)
	require.Len(t, packs, 1)

	steps := []struct {
		name string
		do   func() error
	}{
		{"promote p0", func() error { _, err := s.SetTier(ctx, "p0", api.TierHot); return err }},
		{"delete p1", func() error { return s.Delete(ctx, "p1") }},
		{"restore p2 from its snapshot", func() error { _, err := s.Restore(ctx, "p2", sn.ID); return err }},
	}
	for i, st := range steps {
		require.NoError(t, st.do(), st.name)
		// Pending deletes run in the background and in every cycle.
		var cyc api.WorkerCycle
		s.Maintain(ctx, store.MaintainOptions{}, &cyc)
		require.Empty(t, cyc.Errors)
		if i < len(steps)-1 {
			require.Equal(t, packs, objectKeys(t, f.objs, packsPrefix), "after %s the pack has live members", st.name)
			continue
		}
		require.Eventually(t, func() bool { return len(objectKeys(t, f.objs, packsPrefix)) == 0 }, 5*time.Second, 5*time.Millisecond,
			"the pack goes with its last member")
	}
	requireContent(t, s, "p0", api.MetricL2, want["p0"], dim)
	requireContent(t, s, "p2", api.MetricL2, want["p2"], dim)
}

// TestCorruptMemberFailsOnlyItself: bytes changed inside one member's
// range of a pack fail that member's promotion with data_corrupted; the
// others promote exactly, and the damaged one stays cold.
func TestCorruptMemberFailsOnlyItself(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	want := warmCollections(t, s, 3)
	idleCycle(t, s, clk)
	packs := objectKeys(t, f.objs, packsPrefix)
	require.Len(t, packs, 1)
	idx, err := uploader.ReadPackIndex(ctx, f.objs, packs[0])
	require.NoError(t, err)
	victim, err := s.Get(ctx, "p1")
	require.NoError(t, err)
	loc, ok := idx.Lookup(packs[0], "packs/p1."+victim.Snapshot+".parquet")
	require.True(t, ok)
	rewriteObject(t, f.objs, packs[0], func(b []byte) { b[loc.Offset+loc.Length/2] ^= 0x10 })

	for _, name := range []string{"p0", "p1", "p2"} {
		_, err := s.SetTier(ctx, name, api.TierHot)
		if name == "p1" {
			require.Equal(t, api.CodeDataCorrupted, api.CodeOf(err), "the damaged member: %v", err)
			require.ErrorContains(t, err, packs[0], "the error names the pack")
			c, gerr := s.Get(ctx, name)
			require.NoError(t, gerr)
			require.Equal(t, api.TierCold, c.Tier, "the damaged member stays cold")
			_, err = s.Search(ctx, name, ones(dim, 1), 3)
			require.Equal(t, api.CodeDataCorrupted, api.CodeOf(err), "never served")
			continue
		}
		require.NoError(t, err, name)
		requireContent(t, s, name, api.MetricL2, want[name], dim)
	}
	require.Equal(t, packs, objectKeys(t, f.objs, packsPrefix), "p1 still refers to the pack")
}

// TestCrashDuringPackedDemotion crashes a packed demotion at each of its
// points and restarts: every member is in the same tier (all warm before
// the commit, all cold after it), with every vector, and after the sweep
// and a cycle the bucket holds the pack exactly when members refer to it.
func TestCrashDuringPackedDemotion(t *testing.T) {
	for _, tc := range []struct {
		point string
		tier  api.Tier
	}{
		{store.HookPackUploaded, api.TierWarm},
		{store.HookPackCommitted, api.TierCold},
	} {
		t.Run(tc.point, func(t *testing.T) {
			ctx := context.Background()
			f, clk := packedFixture(t, 10)
			s := f.open(t, nil)
			want := warmCollections(t, s, 4)
			require.NoError(t, s.Close())

			s = f.open(t, func(o *store.Options) { o.Hook = crashAt(tc.point) })
			clk.Advance(2 * time.Hour)
			got := runCrashing(func() {
				var cyc api.WorkerCycle
				s.Maintain(ctx, store.MaintainOptions{WarmIdle: time.Hour}, &cyc)
			})
			require.Equal(t, tc.point, got)
			require.NoError(t, s.Close()) // the process is gone

			s = f.open(t, nil)
			for name := range want {
				c, err := s.Get(ctx, name)
				require.NoError(t, err)
				require.Equal(t, tc.tier, c.Tier, "%s: all members or none", name)
			}
			_, err := s.SweepOrphans(ctx)
			require.NoError(t, err)
			var cyc api.WorkerCycle
			s.Maintain(ctx, store.MaintainOptions{}, &cyc)
			require.Empty(t, cyc.Errors)
			if tc.tier == api.TierCold {
				require.Len(t, objectKeys(t, f.objs, packsPrefix), 1, "the committed pack stays")
				files, _ := localFiles(t, f.dir)
				require.Empty(t, files, "the warm copies were removed at start")
			} else {
				require.Empty(t, objectKeys(t, f.objs, packsPrefix), "the uncommitted pack is swept")
			}
			for name, w := range want {
				requireContent(t, s, name, api.MetricL2, w, dim)
			}
			promoteAll(ctx, t, s, want)
			requirePacksGone(t, s, f)
		})
	}
}

// TestCrashAfterFirstMemberLeavesKeepsThePack: a crash right after one
// member's promotion committed (the pack is a pending delete) must not
// delete the pack the others still refer to, neither by the retried
// delete nor by the sweep.
func TestCrashAfterFirstMemberLeavesKeepsThePack(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	want := warmCollections(t, s, 3)
	idleCycle(t, s, clk)
	require.NoError(t, s.Close())

	s = f.open(t, func(o *store.Options) { o.Hook = crashAt(store.HookHotCommitted) })
	require.Equal(t, store.HookHotCommitted, runCrashing(func() { _, _ = s.SetTier(ctx, "p0", api.TierHot) }))
	require.NoError(t, s.Close())

	s = f.open(t, nil)
	_, err := s.SweepOrphans(ctx)
	require.NoError(t, err)
	require.Zero(t, s.RetryDeletes(ctx))
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{}, &cyc)
	require.Empty(t, cyc.Errors)
	require.Len(t, objectKeys(t, f.objs, packsPrefix), 1, "p1 and p2 still refer to the pack")
	for name, w := range want {
		requireContent(t, s, name, api.MetricL2, w, dim)
	}
	for _, name := range []string{"p1", "p2"} {
		_, err := s.SetTier(ctx, name, api.TierHot)
		require.NoError(t, err)
		requireContent(t, s, name, api.MetricL2, want[name], dim)
	}
	requirePacksGone(t, s, f)
}

// TestSweepKeepsPackCommittedBetweenItsReads: the orphan sweep lists a
// pack that is stored and not yet committed, and the pack commits between
// the sweep's reads of running uploads and references. It must survive.
func TestSweepKeepsPackCommittedBetweenItsReads(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	var armed, sweepHeld atomic.Bool
	uploaded, commit := make(chan struct{}), make(chan struct{})
	between, resume := make(chan struct{}), make(chan struct{})
	s := f.open(t, func(o *store.Options) {
		o.Hook = func(p string) {
			if !armed.Load() {
				return
			}
			switch p {
			case store.HookPackUploaded:
				close(uploaded)
				<-commit
			case store.HookSweepBetweenReads:
				// Only the test's sweep waits; the cycle's own sweep
				// (after the commit) passes.
				if sweepHeld.CompareAndSwap(false, true) {
					close(between)
					<-resume
				}
			}
		}
	})
	want := warmCollections(t, s, 3)
	armed.Store(true)
	clk.Advance(2 * time.Hour)
	var cyc api.WorkerCycle
	cycleDone := make(chan struct{})
	go func() {
		defer close(cycleDone)
		s.Maintain(ctx, store.MaintainOptions{WarmIdle: time.Hour}, &cyc)
	}()
	<-uploaded
	require.Len(t, objectKeys(t, f.objs, packsPrefix), 1, "the pack is stored, not committed")
	var wg sync.WaitGroup
	var removed []string
	var sweepErr error
	wg.Go(func() { removed, sweepErr = s.SweepOrphans(ctx) })
	<-between
	close(commit)
	<-cycleDone
	close(resume)
	wg.Wait()
	armed.Store(false)
	require.NoError(t, sweepErr)
	assert.Empty(t, removed, "the pack was never an orphan")
	require.Empty(t, cyc.Errors)
	require.Len(t, objectKeys(t, f.objs, packsPrefix), 1, "the committed pack survives")
	promoteAll(ctx, t, s, want)
}

// TestFailedPackUploadKeepsMembersWarm: a pack PUT that keeps failing
// leaves every member warm and exact, nothing in the bucket, and no
// upload in progress in the manifest's care.
func TestFailedPackUploadKeepsMembersWarm(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	want := warmCollections(t, s, 3)
	_, err := f.objs.Inject(uploader.Fault{Kind: uploader.FaultInternal, Op: uploader.OpPutObject, KeyPattern: packsPrefix + "*"})
	require.NoError(t, err)
	clk.Advance(2 * time.Hour)
	var cyc api.WorkerCycle
	s.Maintain(ctx, store.MaintainOptions{WarmIdle: time.Hour}, &cyc)
	require.Len(t, cyc.Errors, 3, "each member reports its failure: %v", cyc.Errors)
	require.Empty(t, cyc.DemotedCold)
	f.objs.ClearFaults()
	require.Empty(t, objectKeys(t, f.objs, ""), "nothing stored")
	for name := range want {
		c, err := s.Get(ctx, name)
		require.NoError(t, err)
		require.Equal(t, api.TierWarm, c.Tier)
	}
	// The next cycle packs them (searches would promote them first).
	cyc = idleCycle(t, s, clk)
	require.Len(t, cyc.DemotedCold, 3, "%+v", cyc)
	require.Len(t, objectKeys(t, f.objs, packsPrefix), 1)
	for name, w := range want {
		requireContent(t, s, name, api.MetricL2, w, dim)
	}
}

// promoteAll promotes every collection of want to hot and requires its
// content to be exactly want's.
func promoteAll(ctx context.Context, t *testing.T, s *store.Store, want map[string]data) {
	t.Helper()
	for name, w := range want {
		_, err := s.SetTier(ctx, name, api.TierHot)
		require.NoError(t, err, "promote %s", name)
		requireContent(t, s, name, api.MetricL2, w, dim)
	}
}

// requirePacksGone runs a cycle and requires that no pack is left once
// no collection refers to one.
func requirePacksGone(t *testing.T, s *store.Store, f *fixture) {
	t.Helper()
	require.Eventually(t, func() bool {
		var cyc api.WorkerCycle
		s.Maintain(context.Background(), store.MaintainOptions{}, &cyc)
		return len(objectKeys(t, f.objs, packsPrefix)) == 0
	}, 5*time.Second, 10*time.Millisecond, "packs left: %v", objectKeys(t, f.objs, packsPrefix))
}

func mustList(t *testing.T, objs *uploader.MemStore, prefix string) []uploader.ObjectInfo {
	t.Helper()
	list, err := objs.ListObjects(context.Background(), prefix)
	require.NoError(t, err)
	return list
}

// rewriteObject changes an object's bytes at rest, keeping its size and
// metadata (corruption on the store's disk).
func rewriteObject(t *testing.T, objs *uploader.MemStore, key string, change func([]byte)) {
	t.Helper()
	ctx := context.Background()
	rc, info, err := objs.GetObject(ctx, key)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	change(b)
	_, err = objs.PutObject(ctx, key, bytes.NewReader(b), int64(len(b)), uploader.PutOptions{Metadata: info.Metadata})
	require.NoError(t, err)
}

// TestPowerLossDuringPackedDemotion cuts the power (unsynced writes lost,
// or torn) at each point of a packed demotion and after it, reopens the
// store on what the cut left, and requires every member in one tier with
// every vector, and the pack kept exactly when the members refer to it.
func TestPowerLossDuringPackedDemotion(t *testing.T) {
	for _, tc := range []struct {
		point string // "" cuts after the cycle
		want  api.Tier
	}{
		{store.HookPackUploaded, api.TierWarm},
		{store.HookPackCommitted, api.TierCold},
		{"", api.TierCold},
	} {
		for _, torn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/torn=%v", cmp.Or(tc.point, "after"), torn), func(t *testing.T) {
				ctx := context.Background()
				f, clk := packedFixture(t, 10)
				fs, err := powerloss.New(f.dir)
				require.NoError(t, err)
				var armed atomic.Bool
				s := f.open(t, func(o *store.Options) {
					o.FS = fs
					o.Hook = func(point string) {
						if armed.Load() && point == tc.point {
							_, err := fs.Cut(powerloss.CutOptions{Seed: 5, Torn: torn})
							require.NoError(t, err)
							armed.Store(false)
						}
					}
				})
				want := warmCollections(t, s, 3)
				armed.Store(tc.point != "")
				clk.Advance(2 * time.Hour)
				var cyc api.WorkerCycle
				s.Maintain(ctx, store.MaintainOptions{WarmIdle: time.Hour}, &cyc)
				if tc.point == "" {
					require.Empty(t, cyc.Errors)
					_, err := fs.Cut(powerloss.CutOptions{Seed: 5, Torn: torn})
					require.NoError(t, err)
				} else {
					require.False(t, armed.Load(), "the cycle passed %s", tc.point)
				}
				s.Halt()

				fs2, err := powerloss.New(f.dir)
				require.NoError(t, err)
				s2 := f.open(t, func(o *store.Options) { o.FS = fs2 })
				for name := range want {
					c, err := s2.Get(ctx, name)
					require.NoError(t, err)
					require.Equal(t, tc.want, c.Tier, "%s: all members or none", name)
				}
				_, err = s2.SweepOrphans(ctx)
				require.NoError(t, err)
				var cyc2 api.WorkerCycle
				s2.Maintain(ctx, store.MaintainOptions{}, &cyc2)
				require.Empty(t, cyc2.Errors)
				if tc.want == api.TierCold {
					require.Len(t, objectKeys(t, f.objs, packsPrefix), 1, "the committed pack stays")
				} else {
					require.Empty(t, objectKeys(t, f.objs, packsPrefix), "the uncommitted pack is swept")
				}
				for name, w := range want {
					page, err := s2.ListVectors(ctx, name, "", 1000)
					require.NoError(t, err)
					require.Len(t, page.Vectors, len(w), name)
					for _, v := range page.Vectors {
						require.Equal(t, w[v.ID], v.Values, "%s %s", name, v.ID)
					}
				}
			})
		}
	}
}

// stagedFS delays a few operations on one folder of the data directory
// so that a promotion and the removal of a packed member's warm file
// interleave in the order that once lost the promotion's new file: the
// promotion finds the folder (Stat), the removal then takes the last
// file and the folder, and only then does the promotion create its
// file in it. Each wait gives up after a second, so an order that
// cannot happen (the removal done before the promotion may start) only
// slows the test down.
type stagedFS struct {
	fsutil.FS
	dir        string      // the folder watched
	armed      atomic.Bool // set once the pack is committed
	statSeen   chan struct{}
	dirRemoved chan struct{}
	statOnce   sync.Once
	removeOnce sync.Once
}

func newStagedFS(dir string) *stagedFS {
	return &stagedFS{FS: fsutil.OS, dir: dir, statSeen: make(chan struct{}), dirRemoved: make(chan struct{})}
}

func waitAtMost(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(time.Second):
	}
}

func (f *stagedFS) Stat(name string) (os.FileInfo, error) {
	if f.armed.Load() && name == f.dir {
		f.statOnce.Do(func() { close(f.statSeen) })
	}
	return f.FS.Stat(name)
}

func (f *stagedFS) Remove(name string) error {
	if f.armed.Load() {
		switch {
		case filepath.Dir(name) == f.dir && strings.HasSuffix(name, ".parquet"):
			waitAtMost(f.statSeen)
		case name == f.dir:
			err := f.FS.Remove(name)
			f.removeOnce.Do(func() { close(f.dirRemoved) })
			return err
		}
	}
	return f.FS.Remove(name)
}

func (f *stagedFS) CreateTemp(dir, pattern string) (fsutil.File, error) {
	if f.armed.Load() && dir == f.dir {
		waitAtMost(f.dirRemoved)
	}
	return f.FS.CreateTemp(dir, pattern)
}

// TestPromotionRightAfterPackCommit: a search that waits for a member of
// a pack being committed promotes it from the pack as soon as the pack's
// demotion lets go of it. The member's old warm file (and with it, when
// empty, the collection's folder) is removed before that, never while the
// promotion writes its new file into the same folder: once it was, and the
// promotion failed with "internal" (no such file or directory).
func TestPromotionRightAfterPackCommit(t *testing.T) {
	ctx := context.Background()
	f, clk := packedFixture(t, 10)
	s := f.open(t, nil)
	want := warmCollections(t, s, 2)
	got, err := s.Get(ctx, "p0")
	require.NoError(t, err)
	files, _ := localFiles(t, f.dir)
	var warmFile string
	for _, file := range files {
		if filepath.Base(file) == got.Snapshot+".parquet" {
			warmFile = file
		}
	}
	require.NotEmpty(t, warmFile, "p0's warm file (snapshot %s) among %v", got.Snapshot, files)
	require.NoError(t, s.Close())

	fs := newStagedFS(filepath.Dir(filepath.Join(f.dir, filepath.FromSlash(warmFile))))
	searched := make(chan error, 1)
	s = f.open(t, func(o *store.Options) {
		o.FS = fs
		o.Hook = func(point string) {
			if point != store.HookPackCommitted {
				return
			}
			fs.armed.Store(true)
			go func() {
				_, err := s.Search(ctx, "p0", ones(dim, 1), 3)
				searched <- err
			}()
		}
	})
	cyc := idleCycle(t, s, clk)
	require.ElementsMatch(t, []string{"p0", "p1"}, cyc.DemotedCold, "both went cold in one pack")
	select {
	case err := <-searched:
		require.NoError(t, err, "the search promotes p0 from its pack")
	case <-time.After(30 * time.Second):
		t.Fatal("the search did not return")
	}
	requireContent(t, s, "p0", api.MetricL2, want["p0"], dim)
	requireContent(t, s, "p1", api.MetricL2, want["p1"], dim)
}
