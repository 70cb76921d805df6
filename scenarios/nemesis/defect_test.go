//go:build e2e

package nemesis

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/nemesis"
)

// TestNemesisCatchesPlantedDefect shows the nemesis can fail: with a
// test-only defect that answers one insert as acknowledged without passing
// it to tierd, a short run under worker cycles must fail and name the lost
// ids. The defect lives in the in-process tierd, so the planted run is in
// TIERCHAOS_SUT=inprocess mode (make e2e-race); in container mode the test
// checks that arming it is refused.
func TestNemesisCatchesPlantedDefect(t *testing.T) {
	if stack.Mode != tierd.SUTInProcess {
		// A container's tierd cannot carry a test-only defect: arming one
		// must be refused, never silently ignored (a run would then pass
		// and prove nothing). The planted run itself is in process mode.
		require.ErrorIs(t, stack.ArmDefect(tierd.DefectDropInsert), tierd.ErrDefectUnsupported)
		require.False(t, stack.DefectFired())
		t.Logf("container mode refuses the planted defect; TIERCHAOS_SUT=inprocess (make e2e-race) runs the planted run")
		return
	}
	c := stack.NewCase(t)
	p := nemesis.Profile{Name: "planted-defect", Families: []nemesis.Weight{{Family: fault.FamilyWorker, Weight: 1}},
		Kinds: []string{fault.KindWorkerRunOnce}, MeanFault: d(time.Second), MeanGap: d(2 * time.Second), MaxOverlap: 1,
		Length: d(8 * time.Second), Quiet: d(2 * time.Second), Recovery: d(2 * time.Second)}
	// Without restores and deletes, nothing may legitimately wipe the
	// dropped ids, so the final read names them whatever the seed (with
	// them, a restore can erase the ids before any read sees them, leaving
	// only a snapshot's count to betray the loss).
	sch, err := nemesis.Generate(c.Seed.Seed, p, nemesis.Traffic{Rate: 50, Collections: 4, Dimension: 8, Seed: c.Seed.Seed,
		Without: []string{"restore", "delete"}})
	require.NoError(t, err)
	ctx := context.Background()
	res := runOnce(ctx, t, sch, nil, artifactDir(t, sch), func(context.Context) error {
		return stack.ArmDefect(tierd.DefectDropInsert)
	})
	require.True(t, stack.DefectFired(), "the defect dropped an acknowledged insert")
	require.True(t, res.Failed(), "the nemesis must fail when an acknowledged insert is lost")
	// The findings name the dropped insert's ids: as lost writes, or as
	// the ids a search missed. All of them come from one insert request
	// ("v<seq>-<i>").
	named := map[string]bool{}
	for _, f := range res.Findings {
		if f.Check != "history" && f.Check != "readback" {
			continue
		}
		for _, m := range namedID.FindAllStringSubmatch(f.Message, -1) {
			named[m[1]] = true
		}
	}
	require.NotEmpty(t, named, "the findings name the lost ids:\n%s", res.Summary())
	requests := map[string]bool{}
	for id := range named {
		requests[strings.SplitN(id, "-", 2)[0]] = true
	}
	assert.Len(t, requests, 1, "every id named comes from the one dropped insert: %v", named)
	t.Logf("nemesis named the dropped insert's ids %v (lost writes: %v)", named, res.Lost)
}

// namedID finds the vector ids a finding names: `id "v12-3"` of a lost
// write, `(id "v12-3")` of a search that missed it.
var namedID = regexp.MustCompile(`id "(v[0-9]+-[0-9]+)"`)
