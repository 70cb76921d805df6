//go:build resultsdemo

package resultsdemo_test

import (
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/seed"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

func TestMain(m *testing.M) {
	seed.Init(os.Stderr)
	os.Exit(m.Run())
}

// TestLostWriteDemo fails on purpose: its history acknowledges an insert
// that the final state does not hold, so the lost-writes checker fails it
// and writes the history, the violations and the timeline.
func TestLostWriteDemo(t *testing.T) {
	sc := seed.For(t)
	id := "v" + string(rune('a'+sc.Rand().IntN(26)))
	ops := []history.Op{
		{Index: 0, Kind: history.KindCreateCollection, Collection: "c", Call: 1, Return: 2, Outcome: history.OK, Dimension: 2, Metric: api.MetricDot},
		{Index: 1, Kind: history.KindInsert, Collection: "c", Call: 3, Return: 4, Outcome: history.OK, Vectors: []api.Vector{{ID: id, Values: []float32{1, 0}}}},
	}
	check.All(t, ops, history.NewFinal(map[string][]api.Vector{"c": nil}), check.Config{})
}
