//go:build e2e

package check_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{}, func(s *tierd.Stack) { stack = s }))
}

// TestRealTierdChurnPasses drives the real tierd with four clients that
// insert, search, change tiers, take snapshots, restore earlier ones, and
// now and then delete the collection and create it again with another
// metric and dimension, all recorded; then SIGKILL and restart. A correct
// tierd must pass every checker: this guards the checkers' snapshot,
// restore and incarnation rules against false alarms on the real system.
func TestRealTierdChurnPasses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tc := stack.NewCase(t)
	rc := tc.Client
	name := fixture.UniqueName(t, tc.Rand)
	schemas := []api.CreateCollectionRequest{
		{Name: name, Dimension: 8, Metric: api.MetricCosine},
		{Name: name, Dimension: 5, Metric: api.MetricL2},
		{Name: name, Dimension: 8, Metric: api.MetricDot},
	}
	_, err := rc.CreateCollection(ctx, schemas[0])
	require.NoError(t, err)

	var mu sync.Mutex
	schema := 0        // the schema of the last create, as the clients believe
	var snaps []string // ids of the current incarnation's snapshots
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		rng := tc.Seed.Stream(fmt.Sprintf("worker-%d", w))
		wg.Go(func() {
			for time.Now().Before(deadline) {
				mu.Lock()
				dim := schemas[schema].Dimension
				var id string
				if len(snaps) > 0 {
					id = snaps[rng.IntN(len(snaps))]
				}
				mu.Unlock()
				opCtx, opCancel := context.WithTimeout(ctx, 10*time.Second)
				var err error
				switch r := rng.IntN(100); {
				case r < 40:
					vs := fixture.RandomVectors(rng, rng.IntN(3)+1, dim)
					for i := range vs {
						vs[i].ID = fmt.Sprintf("v%d", rng.IntN(40))
					}
					_, err = rc.Insert(opCtx, name, vs)
				case r < 70:
					_, err = rc.Search(opCtx, name, fixture.RandomVectors(rng, 1, dim)[0].Values, rng.IntN(8)+1)
				case r < 80:
					_, err = rc.SetTier(opCtx, name, []api.Tier{api.TierHot, api.TierWarm, api.TierCold}[rng.IntN(3)])
				case r < 88:
					var sn api.Snapshot
					if sn, err = rc.CreateSnapshot(opCtx, name); err == nil {
						mu.Lock()
						snaps = append(snaps, sn.ID)
						mu.Unlock()
					}
				case r < 96 && id != "":
					_, err = rc.Restore(opCtx, name, id)
				case r >= 98 && w == 0:
					if err = rc.DeleteCollection(opCtx, name); err == nil {
						mu.Lock()
						schema = (schema + 1) % len(schemas)
						snaps = nil
						next := schemas[schema]
						mu.Unlock()
						_, err = rc.CreateCollection(opCtx, next)
					}
				default:
					_, err = rc.GetCollection(opCtx, name)
				}
				opCancel()
				// Races make not_found, invalid_argument (an old
				// dimension) and transition_in_progress legitimate.
				switch client.CodeOf(err) {
				case "", api.CodeNotFound, api.CodeInvalidArgument, api.CodeTransitionInProgress:
				default:
					assert.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	counts := map[string]int{}
	for _, op := range tc.Rec.Ops() {
		counts[string(op.Kind)+"/"+string(op.Outcome)]++
	}
	t.Logf("operations by kind and outcome: %v", counts)
	require.Positive(t, counts[string(history.KindRestore)+"/"+string(history.OK)], "some restores succeeded")
	require.NoError(t, stack.RestartTierd(ctx, false), "SIGKILL and restart tierd")
	require.True(t, tc.Check(ctx, t, check.Config{}, name))

	// The same real history with one restore's answer off by one vector
	// must be flagged: restores of the real history are judged.
	ops := tc.Rec.Ops()
	for i, op := range ops {
		if op.Kind == history.KindRestore && op.Outcome == history.OK {
			ops[i].Count++
			c, err := check.New(ops, check.Config{ArtifactDir: t.TempDir()})
			require.NoError(t, err)
			require.ErrorContains(t, c.Snapshots(), fmt.Sprintf("answered %d vectors", op.Count+1))
			break
		}
	}
}
