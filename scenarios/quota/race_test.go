//go:build e2e

package quota

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// raceCollection is one collection of the race: it hands out equally
// long vector ids in blocks until it is full; a block whose insert was
// refused (no effect) is handed out again.
type raceCollection struct {
	name   string
	metric api.Metric
	mu     sync.Mutex
	next   int
	free   []int
}

// alloc reserves a block of n ids and returns its first, or -1 when the
// collection is full.
func (r *raceCollection) alloc(n, max int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := len(r.free); k > 0 {
		first := r.free[k-1]
		r.free = r.free[:k-1]
		return first
	}
	if r.next+n > max {
		return -1
	}
	first := r.next
	r.next += n
	return first
}

// refused hands a block out again.
func (r *raceCollection) refused(first int) {
	r.mu.Lock()
	r.free = append(r.free, first)
	r.mu.Unlock()
}

// full reports whether every block has been inserted (or is in flight).
func (r *raceCollection) full(n, max int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.free) == 0 && r.next+n > max
}

// memoryRaceCrash is the own case: inserts and searches race the memory
// quota while LRU evictions and promotions churn, tierd is SIGKILLed in
// the middle, and the accounting is compared with the real contents; a
// graceful restart (restart) recovers the same accounting. The kill is no
// fault value: tierd starts again only once the workers stopped.
func memoryRaceCrash(restart fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c := tc.Client
		own := newOwned(t)
		requireEmptyStore(ctx, t)
		const (
			ncols   = 4
			maxPer  = 300 // vectors per collection: one alone always fits
			batch   = 20
			workers = 6
		)
		quota := int64(500 * perVector) // less than two full collections
		setQuotas(ctx, t, map[string]string{envHotBytes: itoa(quota)})
		metrics := []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot}
		cols := make([]*raceCollection, ncols)
		names := make([]string, ncols)
		for i := range cols {
			cols[i] = &raceCollection{name: fixture.UniqueName(t, tc.Rand), metric: metrics[i%len(metrics)]}
			names[i] = cols[i].name
			_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: cols[i].name, Dimension: dim, Metric: cols[i].metric})
			require.NoError(t, err)
			own.add(cols[i].name)
		}

		// The monitor samples hot usage for the whole case.
		var maxHot, samples atomic.Int64
		monCtx, stopMon := context.WithCancel(ctx)
		monDone := make(chan struct{})
		go func() {
			defer close(monDone)
			for monCtx.Err() == nil {
				if u, err := stack.Tierd.Usage(monCtx); err == nil {
					samples.Add(1)
					for {
						m := maxHot.Load()
						if u.HotBytes <= m || maxHot.CompareAndSwap(m, u.HotBytes) {
							break
						}
					}
				}
				select {
				case <-monCtx.Done():
				case <-time.After(time.Millisecond):
				}
			}
		}()
		t.Cleanup(func() { stopMon(); <-monDone })

		var crashing atomic.Bool
		var acked, refused atomic.Int64
		// run drives the workers until stop is closed or every collection is
		// full; an error other than quota_exceeded fails the case unless
		// tierd is being killed.
		run := func(phase string, stop <-chan struct{}) error {
			g, gctx := errgroup.WithContext(ctx)
			for w := range workers {
				rng := tc.Seed.Stream(fmt.Sprintf("%s-worker-%d", phase, w))
				g.Go(func() error {
					for {
						select {
						case <-stop:
							return nil
						case <-gctx.Done():
							return nil
						default:
						}
						col := cols[rng.IntN(len(cols))]
						var err error
						op := "search"
						if rng.IntN(4) == 0 {
							_, err = c.Search(gctx, col.name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK)
						} else {
							first := col.alloc(batch, maxPer)
							if first < 0 {
								full := true
								for _, o := range cols {
									full = full && o.full(batch, maxPer)
								}
								if full {
									return nil
								}
								continue
							}
							op = "insert"
							vs := fixture.RandomVectors(rng, first+batch, dim)[first:]
							_, err = c.Insert(gctx, col.name, vs)
							switch {
							case err == nil:
								acked.Add(batch)
							case client.CodeOf(err) == api.CodeQuotaExceeded:
								col.refused(first)
							}
						}
						if err == nil {
							continue
						}
						if crashing.Load() || gctx.Err() != nil {
							// tierd is being killed: this worker is done
							// (spinning on would use up the ids for phase 2).
							return nil
						}
						if client.CodeOf(err) != api.CodeQuotaExceeded {
							return fmt.Errorf("%s %s: only quota_exceeded may refuse it, got %w", op, col.name, err)
						}
						refused.Add(1)
					}
				})
			}
			return g.Wait()
		}

		// Phase 1: churn, then SIGKILL at a seeded point while the workers run.
		killAt := int64(200 + tc.Rand.IntN(200))
		stop1 := make(chan struct{})
		phase1 := make(chan error, 1)
		go func() { phase1 <- run("before-crash", stop1) }()
		require.Eventually(t, func() bool { return acked.Load() >= killAt }, time.Minute, 5*time.Millisecond,
			"workers acknowledged %d vectors before the kill point", killAt)
		crashing.Store(true)
		require.NoError(t, stack.KillTierd(ctx))
		close(stop1)
		require.NoError(t, <-phase1)
		require.NoError(t, stack.StartTierd(ctx))
		crashing.Store(false)
		t.Logf("killed tierd after %d acknowledged vectors", acked.Load())
		requireAccounting(ctx, t, c, names, quota)

		// Phase 2: the quota still holds after the restart.
		before := acked.Load()
		stop2 := make(chan struct{})
		phase2 := make(chan error, 1)
		go func() { phase2 <- run("after-crash", stop2) }()
		err := func() error {
			deadline := time.NewTimer(time.Minute)
			defer deadline.Stop()
			for {
				select {
				case err := <-phase2:
					return err // every collection is full
				case <-deadline.C:
					close(stop2)
					return errors.Join(errors.New("phase 2 did not end within a minute"), <-phase2)
				case <-time.After(10 * time.Millisecond):
					if acked.Load()-before >= 400 {
						close(stop2)
						return <-phase2
					}
				}
			}
		}()
		require.NoError(t, err)
		require.Positive(t, acked.Load()-before, "inserts acknowledged after the restart")
		requireAccounting(ctx, t, c, names, quota)
		// The quota is enforced after the restart: tierd evicted collections
		// to make room (its counter restarted with the process).
		evictions := metric(ctx, t, "tierd_auto_demotions_total")
		require.Positive(t, evictions, "LRU evictions after the restart")
		stopMon()
		<-monDone
		require.Positive(t, samples.Load(), "usage samples")
		require.LessOrEqual(t, maxHot.Load(), quota, "hot usage never exceeded the quota (max of %d samples)", samples.Load())
		// A second, graceful restart recovers the same accounting (and the
		// read-back below runs on it).
		_, err = fault.Inject(ctx, stack, restart)
		require.NoError(t, err, "%s", restart)
		requireAccounting(ctx, t, c, names, quota)
		// Memory pressure demotes to warm only: nothing went to S3.
		requireNoObjects(ctx, t, names...)
		t.Logf("acknowledged %d vectors, %d operations refused by the quota, %.0f evictions after the restart; max hot usage %d of %d B over %d samples",
			acked.Load(), refused.Load(), evictions, maxHot.Load(), quota, samples.Load())
		tc.Check(ctx, t, check.Config{AutoDemote: true}, names...)
	}
}

// requireAccounting requires that tierd's reported usage equals what its
// collections and files really hold: hot bytes = the vectors of the hot
// collections, warm bytes = the Parquet files on disk.
func requireAccounting(ctx context.Context, t *testing.T, c fixture.Tierd, names []string, quota int64) {
	t.Helper()
	var hot int64
	for _, n := range names {
		col, err := c.GetCollection(ctx, n)
		require.NoError(t, err)
		if col.Tier == api.TierHot {
			hot += int64(col.Vectors) * perVector
		}
	}
	u := usage(ctx, t)
	require.Equal(t, hot, u.HotBytes, "hot usage = vectors of the hot collections")
	require.LessOrEqual(t, u.HotBytes, quota)
	require.Equal(t, len(names), u.Collections)
	requireDiskMatchesUsage(ctx, t)
}

// metric reads one unlabelled counter or gauge from tierd's /metrics.
func metric(ctx context.Context, t *testing.T, name string) float64 {
	t.Helper()
	base, err := stack.DebugURL()
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, "metric %s", name)
			return v
		}
	}
	require.NoError(t, sc.Err())
	require.Failf(t, "metric missing", "%s not in tierd's /metrics", name)
	return 0
}
