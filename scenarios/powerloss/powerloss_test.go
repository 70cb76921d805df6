//go:build e2e

package powerloss

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/store"
)

const (
	dim     = 16
	vectors = 300 // below api.MaxK, so the checkers can read every id back
	topK    = 10
	queries = 5
	// waitFor bounds a wait for tierd to reach a point.
	waitFor = 30 * time.Second
)

// TestPowerLoss is the power-loss suite: each row cuts tierd's power (in
// the test process, on the power-loss layer: what no fsync covers is
// lost) at a point of its work, restarts tierd on what remains, and reads
// back what it acknowledged. Every row ends with the harness checkers.
func TestPowerLoss(t *testing.T) {
	// The power cuts the rows make at a moment of their choosing, each
	// declared once: the row lists it and its Run injects exactly it. A
	// cut armed at a hook point, which fires inside tierd's work, has no
	// fault value and is given as prose.
	var (
		// Every unsynced write dropped.
		cut = fault.PowerCut{}
		// A prefix of each file's unsynced writes survives (drawn from
		// the seed), the last possibly torn.
		tornCut = fault.PowerCut{Torn: true, Seed: 1}
	)
	cases := []scenario.Scenario[*tierd.Case]{
		{
			// While 4 writers insert.
			Name:    "inserts-cut",
			Faults:  []scenario.Fault{cut},
			Guards:  "an acknowledged insert is durable: the WAL record is fsynced before the answer, the segment's folder entry too",
			Run:     insertsCutNow(cut),
			Timeout: rowTimeout,
		},
		{
			Name:    "inserts-torn-cut",
			Faults:  []scenario.Fault{tornCut},
			Guards:  "a torn WAL tail is cut at restart and no acknowledged insert is lost",
			Run:     insertsCutNow(tornCut),
			Timeout: rowTimeout,
		},
		{
			// The 4 writers insert over tierd's gRPC API: their
			// connection dies with the power.
			Name:    "inserts-torn-cut-grpc",
			Faults:  []scenario.Fault{tornCut},
			Guards:  "as inserts-torn-cut: no insert acknowledged over gRPC is lost; inserts cut with the connection are recorded unknown; the client reconnects and tierd takes writes again",
			Run:     insertsCutNow(tornCut),
			Timeout: rowTimeout,
			Variant: string(tierd.APIGRPC),
		},
		{
			Name:    "inserts-cut-before-wal-fsync",
			Faults:  []scenario.Fault{scenario.Described("power cut: while 4 writers insert, just before a WAL fsync: the batch in flight (written, not acknowledged) is torn")},
			Guards:  "a torn batch at the WAL's tail is cut cleanly at restart (whole records of it may stay, never a partial one); nothing acknowledged lost",
			Run:     insertsCutAtSync,
			Timeout: rowTimeout,
		},
		{
			Name:    "demotion-warm-file-written",
			Faults:  []scenario.Fault{scenario.Described("power cut: hot -> warm, after the Parquet file is written, before the manifest flip (" + store.HookWarmWritten + ")")},
			Guards:  "an interrupted demotion leaves the collection hot, exact, with no stray local file",
			Run:     demotionCut(api.TierHot, api.TierWarm, store.HookWarmWritten, api.TierHot),
			Timeout: rowTimeout,
		},
		{
			Name:    "demotion-warm-committed",
			Faults:  []scenario.Fault{scenario.Described("power cut: hot -> warm, right after the manifest commit (" + store.HookWarmCommitted + ")")},
			Guards:  "a committed demotion survives: warm, its Parquet file durable and intact",
			Run:     demotionCut(api.TierHot, api.TierWarm, store.HookWarmCommitted, api.TierWarm),
			Timeout: rowTimeout,
		},
		{
			Name:    "demotion-cold-verified",
			Faults:  []scenario.Fault{scenario.Described("power cut: warm -> cold, after the object is verified, before the manifest flip (" + store.HookColdVerified + ")")},
			Guards:  "an interrupted demotion to cold leaves the collection warm on its durable local file",
			Run:     demotionCut(api.TierWarm, api.TierCold, store.HookColdVerified, api.TierWarm),
			Timeout: rowTimeout,
		},
		{
			Name:    "demotion-cold-committed",
			Faults:  []scenario.Fault{scenario.Described("power cut: warm -> cold, right after the manifest commit (" + store.HookColdCommitted + ")")},
			Guards:  "a committed demotion to cold survives; the old local file goes at recovery",
			Run:     demotionCut(api.TierWarm, api.TierCold, store.HookColdCommitted, api.TierCold),
			Timeout: rowTimeout,
		},
		{
			Name:    "promotion-hot-committed",
			Faults:  []scenario.Fault{scenario.Described("power cut: cold -> hot, right after the manifest commit (" + store.HookHotCommitted + ")")},
			Guards:  "a committed promotion survives: hot, its local copy durable",
			Run:     demotionCut(api.TierCold, api.TierHot, store.HookHotCommitted, api.TierHot),
			Timeout: rowTimeout,
		},
		{
			Name:    "manifest-commit-delete",
			Faults:  []scenario.Fault{scenario.Described("power cut: right after a delete's manifest commit (" + store.HookDeleteCommitted + ")")},
			Guards:  "a committed delete survives the power cut; the other collections are intact",
			Run:     deleteCommitted,
			Timeout: rowTimeout,
		},
		{
			// Right after collections were created and filled (manifest
			// commits and WAL).
			Name:    "manifest-commit-creates",
			Faults:  []scenario.Fault{tornCut},
			Guards:  "every acknowledged create and insert survives",
			Run:     createsCut(tornCut),
			Timeout: rowTimeout,
		},
	}
	scenario.Run(t, cases, func(t *testing.T, s scenario.Scenario[*tierd.Case]) *tierd.Case {
		if err := stack.PowerLossReady(); err != nil {
			requireRefused(t, err)
			t.Skipf("power loss cannot exist with tierd in a container (it runs with TIERCHAOS_SUT=inprocess; the refusal was checked): %v", err)
		}
		return stack.CaseFor(t, s)
	})
}

// rowTimeout bounds each row of the suite.
const rowTimeout = 3 * time.Minute

// requireRefused checks that a stack without power loss refuses the
// fault with a stable code rather than doing something else.
func requireRefused(t *testing.T, ready error) {
	t.Helper()
	require.ErrorIs(t, ready, tierd.ErrPowerLossUnsupported)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := fault.PowerCut{}.Run(ctx, stack)
	var fe *fault.Error
	require.ErrorAs(t, err, &fe)
	require.Equal(t, fault.CodeUnsupported, fe.Code)
	_, err = stack.ArmPowerCut(store.HookWarmCommitted, powerloss.CutOptions{})
	require.ErrorIs(t, err, tierd.ErrPowerLossUnsupported)
}

func cutOptions(c *tierd.Case, torn bool) powerloss.CutOptions {
	return powerloss.CutOptions{Seed: c.Rand.Uint64(), Torn: torn}
}

// insertsCutNow is insertsCut with the power cut at once by cut, which
// starts tierd again.
func insertsCutNow(cut fault.PowerCut) func(ctx context.Context, t *testing.T, c *tierd.Case) {
	return func(ctx context.Context, t *testing.T, c *tierd.Case) {
		insertsCut(ctx, t, c, func() {
			_, err := fault.Inject(ctx, stack, cut)
			require.NoError(t, err, "%s and restart tierd", cut)
		})
	}
}

// insertsCutAtSync is insertsCut with a torn power cut armed just before
// the next WAL fsync.
func insertsCutAtSync(ctx context.Context, t *testing.T, c *tierd.Case) {
	insertsCut(ctx, t, c, func() {
		fired, err := stack.ArmPowerCut(tierd.PowerCutBeforeWALSync, cutOptions(c, true))
		require.NoError(t, err)
		select {
		case r := <-fired:
			require.NoError(t, r.Err, "the cut")
			t.Logf("power cut: %d files written back, %d unsynced bytes lost, %d files torn, %d entries undone",
				r.Report.Files, r.Report.LostBytes, r.Report.TornFiles, len(r.Report.Undone))
		case <-time.After(waitFor):
			require.FailNow(t, "no WAL fsync came")
		}
		require.NoError(t, stack.RestartAfterPowerCut(ctx), "restart tierd on what the cut left")
	})
}

// insertsCut cuts the power with cutPower (which leaves tierd started
// again) while writers insert, then requires every acknowledged vector
// back, exactly.
func insertsCut(ctx context.Context, t *testing.T, c *tierd.Case, cutPower func()) {
	col := fixture.Create(ctx, t, c.Client, c.Rand, 50, dim, api.MetricCosine)
	var (
		mu    sync.Mutex
		acked = slices.Clone(col.Vectors)
	)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		rng := c.Seed.Stream(fmt.Sprintf("writer-%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				batch := fixture.RandomVectors(rng, 10, dim)
				for j := range batch {
					batch[j].ID = fmt.Sprintf("w%d-%05d-%02d", w, i, j)
				}
				if _, err := c.Client.Insert(wctx, col.Name, batch); err == nil {
					mu.Lock()
					acked = append(acked, batch...)
					mu.Unlock()
				}
			}
		}()
	}
	// Cut once the writers have a good number of acknowledged batches.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 50+200
	}, waitFor, 10*time.Millisecond, "the writers get inserts acknowledged")
	cutPower()
	stop()
	wg.Wait()
	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	requireVectors(ctx, t, col.Name, want, true)
	// tierd takes writes again after the restart.
	more := fixture.RandomVectors(c.Rand, 10, dim)
	for j := range more {
		more[j].ID = fmt.Sprintf("after-%02d", j)
	}
	_, err := c.Client.Insert(ctx, col.Name, more)
	require.NoError(t, err, "insert after the restart")
	requireVectors(ctx, t, col.Name, append(want, more...), true)
	c.Check(ctx, t, check.Config{}, col.Name)
}

// requireVectors reads every vector of the collection back and requires
// each of want in it with its values; with extra, vectors not in want
// (inserts whose answer was lost in the cut) may be there too, else the
// collection holds exactly want.
func requireVectors(ctx context.Context, t *testing.T, name string, want []api.Vector, extra bool) {
	t.Helper()
	got, err := stack.Tierd.AllVectors(ctx, name, 500)
	require.NoError(t, err, "read back %s", name)
	byID := make(map[string][]float32, len(got))
	for _, v := range got {
		byID[v.ID] = v.Values
	}
	var missing []string
	for _, v := range want {
		vals, ok := byID[v.ID]
		if !ok {
			missing = append(missing, v.ID)
			continue
		}
		require.Equal(t, v.Values, vals, "values of %s", v.ID)
	}
	require.Empty(t, missing, "acknowledged vectors lost in the power cut (%d of %d)", len(missing), len(want))
	if !extra {
		require.Len(t, got, len(want), "vectors of %s", name)
	}
}

// setTier moves the collection and requires success.
func setTier(ctx context.Context, t *testing.T, c *tierd.Case, name string, tier api.Tier) {
	t.Helper()
	_, err := c.Client.SetTier(ctx, name, tier)
	require.NoError(t, err, "set %s %s", name, tier)
}

// demotionCut moves a collection to from, arms a cut at point, asks for
// to, and after the restart requires the collection in want, readable and
// exact, its local files exactly those the manifest refers to.
func demotionCut(from, to api.Tier, point string, want api.Tier) func(ctx context.Context, t *testing.T, c *tierd.Case) {
	return func(ctx context.Context, t *testing.T, c *tierd.Case) {
		col := fixture.Create(ctx, t, c.Client, c.Rand, vectors, dim, api.MetricCosine)
		for _, step := range pathTo(from) {
			setTier(ctx, t, c, col.Name, step)
		}
		// Every unsynced write is dropped, so a missing fsync always shows.
		fired, err := stack.ArmPowerCut(point, cutOptions(c, false))
		require.NoError(t, err)
		answer := make(chan error, 1)
		go func() {
			_, err := c.Client.SetTier(ctx, col.Name, to)
			answer <- err
		}()
		select {
		case r := <-fired:
			require.NoError(t, r.Err, "the cut")
			t.Logf("power cut at %s: %d unsynced bytes lost, %d entries undone: %v", point, r.Report.LostBytes, len(r.Report.Undone), r.Report.Undone)
		case err := <-answer:
			require.FailNow(t, "the transition answered before reaching the cut", "point %s: %v", point, err)
		case <-time.After(waitFor):
			require.FailNow(t, "the transition did not reach the cut", "point %s", point)
		}
		require.NoError(t, stack.RestartAfterPowerCut(ctx), "restart tierd on what the cut left")
		select {
		case err := <-answer:
			t.Logf("the transition answered %v", err)
		case <-time.After(waitFor):
			require.FailNow(t, "the interrupted transition never answered")
		}
		fixture.RequireTier(ctx, t, c.Client, col, want)
		requireVectors(ctx, t, col.Name, col.Vectors, false)
		fixture.RequireExactSearch(ctx, t, c.Client, c.Rand, col, queries, topK)
		requireLocalFilesReferenced(t, col.Name)
		// The collection goes on working: back to hot and exact.
		setTier(ctx, t, c, col.Name, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c.Client, c.Rand, col, queries, topK)
		c.Check(ctx, t, check.Config{}, col.Name)
	}
}

// pathTo lists the tier changes that bring a new (hot) collection to tier.
func pathTo(tier api.Tier) []api.Tier {
	switch tier {
	case api.TierWarm:
		return []api.Tier{api.TierWarm}
	case api.TierCold:
		return []api.Tier{api.TierWarm, api.TierCold}
	}
	return nil
}

// requireLocalFilesReferenced reads tierd's data folder for the named
// collections: every local file the manifest refers to for them exists
// with its recorded size, and (recovery removes the rest) no other file
// is left in their folders. So each is in exactly the tier the manifest
// says, with nothing dangling or orphaned. (Other rows' collections are
// left out, so that a row fails only for its own.)
func requireLocalFilesReferenced(t *testing.T, names ...string) {
	t.Helper()
	dir, err := stack.DataDir()
	require.NoError(t, err)
	m, err := manifest.Load(dir)
	require.NoError(t, err, "the manifest after the cut")
	refs := m.ReferencedFiles()
	for _, e := range m.Collections {
		if !slices.Contains(names, e.Name) {
			continue
		}
		if e.Data != nil && e.Data.File != "" {
			info, err := os.Stat(filepath.Join(dir, filepath.FromSlash(e.Data.File)))
			require.NoError(t, err, "the local file of %s the manifest refers to", e.Name)
			require.Equal(t, e.Data.Size, info.Size(), "size of %s", e.Data.File)
		}
		folder := filepath.Join(dir, "local", strconv.FormatUint(e.ID, 10))
		ents, err := os.ReadDir(folder)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, f := range ents {
			rel := filepath.ToSlash(filepath.Join("local", strconv.FormatUint(e.ID, 10), f.Name()))
			require.True(t, refs[rel], "local file %s of %s that no collection refers to", rel, e.Name)
		}
	}
}

// deleteCommitted cuts the power right after a delete's manifest commit:
// the collection stays deleted, a neighbour keeps its vectors.
func deleteCommitted(ctx context.Context, t *testing.T, c *tierd.Case) {
	keep := fixture.Create(ctx, t, c.Client, c.Rand, 100, dim, api.MetricCosine)
	gone := fixture.Create(ctx, t, c.Client, c.Rand, 100, dim, api.MetricCosine)
	setTier(ctx, t, c, gone.Name, api.TierWarm)
	fired, err := stack.ArmPowerCut(store.HookDeleteCommitted, cutOptions(c, false))
	require.NoError(t, err)
	answer := make(chan error, 1)
	go func() { answer <- c.Client.DeleteCollection(ctx, gone.Name) }()
	select {
	case r := <-fired:
		require.NoError(t, r.Err, "the cut")
	case err := <-answer:
		require.FailNow(t, "the delete answered before reaching the cut", "%v", err)
	case <-time.After(waitFor):
		require.FailNow(t, "the delete did not reach the cut")
	}
	require.NoError(t, stack.RestartAfterPowerCut(ctx))
	select {
	case err := <-answer:
		t.Logf("the delete answered %v", err)
	case <-time.After(waitFor):
		require.FailNow(t, "the interrupted delete never answered")
	}
	_, err = stack.Tierd.GetCollection(ctx, gone.Name)
	require.Equal(t, api.CodeNotFound, client.CodeOf(err), "the deleted collection stays deleted: %v", err)
	requireVectors(ctx, t, keep.Name, keep.Vectors, false)
	fixture.RequireExactSearch(ctx, t, c.Client, c.Rand, keep, queries, topK)
	requireLocalFilesReferenced(t, keep.Name, gone.Name)
	c.Check(ctx, t, check.Config{}, keep.Name, gone.Name)
}

// createsCut creates and fills a few collections (every create a manifest
// commit, every insert a WAL record), some moved to warm, then cuts the
// power at once (cut): all of it must be back.
func createsCut(cut fault.PowerCut) func(ctx context.Context, t *testing.T, c *tierd.Case) {
	return func(ctx context.Context, t *testing.T, c *tierd.Case) {
		var cols []*fixture.Collection
		var names []string
		for i := range 4 {
			col := fixture.Create(ctx, t, c.Client, c.Rand, 60, dim, api.MetricDot)
			if i%2 == 1 {
				setTier(ctx, t, c, col.Name, api.TierWarm)
			}
			cols = append(cols, col)
			names = append(names, col.Name)
		}
		_, err := fault.Inject(ctx, stack, cut)
		require.NoError(t, err, "%s and restart tierd", cut)
		for i, col := range cols {
			tier := api.TierHot
			if i%2 == 1 {
				tier = api.TierWarm
			}
			fixture.RequireTier(ctx, t, c.Client, col, tier)
			requireVectors(ctx, t, col.Name, col.Vectors, false)
			fixture.RequireExactSearch(ctx, t, c.Client, c.Rand, col, queries, topK)
		}
		requireLocalFilesReferenced(t, names...)
		c.Check(ctx, t, check.Config{}, names...)
	}
}
