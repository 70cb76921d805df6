//go:build e2e && reprodemo

package reprodemo_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/system/api"
)

var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{StartTimeout: 3 * time.Minute}, func(s *tierd.Stack) { stack = s }))
}

// unluckyEvery: a case whose first draw is a multiple of it loses a write.
const unluckyEvery = 4

// TestInProcessDemo fails on purpose (only with the build tags e2e and
// reprodemo, and only with TIERCHAOS_DEMO set): in iterations whose case
// seed draws unlucky, the in-process tierd drops one acknowledged insert,
// and the read-back names the lost id.
func TestInProcessDemo(t *testing.T) {
	if os.Getenv("TIERCHAOS_DEMO") == "" {
		t.Skip("set TIERCHAOS_DEMO=1")
	}
	t.Run("insert", func(t *testing.T) {
		c := stack.NewCase(t)
		draw := c.Seed.Rand().Uint64()
		ctx := context.Background()
		name := fmt.Sprintf("demo-%d", c.Seed.Seed%1_000_000)
		_, err := c.Client.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
		require.NoError(t, err)
		if draw%unluckyEvery == 0 {
			require.NoError(t, stack.ArmDefect(tierd.DefectDropInsert))
		}
		id := fmt.Sprintf("v%d", draw%1000)
		n, err := c.Client.Insert(ctx, name, []api.Vector{{ID: id, Values: []float32{1, 2}}})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		page, err := stack.Tierd.ListVectors(ctx, name, "", 10)
		require.NoError(t, err)
		for _, v := range page.Vectors {
			if v.ID == id {
				return
			}
		}
		t.Errorf("acknowledged insert %s lost (draw %d)", id, draw)
	})
}
