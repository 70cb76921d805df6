//go:build e2e && !reprodemo

package reprodemo_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/seed"
)

const (
	demoCase     = "TestInProcessDemo/insert"
	unluckyEvery = 4 // as in demo_test.go
)

// demoDraw is the first draw of the demo case at iteration n of a run with
// run seed run, as seed.For hands it out.
func demoDraw(run uint64, n int) uint64 {
	c := &seed.Case{Run: run, Name: demoCase, Seed: seed.Iteration(seed.Derive(run, demoCase), n)}
	return c.Rand().Uint64()
}

// runFailingOnlyAt finds a run seed with which, of count iterations, only
// iteration want draws unlucky.
func runFailingOnlyAt(want, count int) uint64 {
	for run := rand.Uint64(); ; run++ {
		ok := true
		for n := 1; n <= count && ok; n++ {
			ok = (demoDraw(run, n)%unluckyEvery == 0) == (n == want)
		}
		if ok {
			return run
		}
	}
}

// TestRerunLineReproducesTheFailingIteration runs the in-process demo case
// with -count=5 so that only iteration 3 loses an acknowledged insert,
// takes the rerun line it prints, and runs that line, as printed, ten
// times: each rerun must fail the same way, losing the same id.
func TestRerunLineReproducesTheFailingIteration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child go test processes against the harness stack")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	run := runFailingOnlyAt(3, 5)
	unlucky := demoDraw(run, 3)
	want := fmt.Sprintf("acknowledged insert v%d lost (draw %d)", unlucky%1000, unlucky)

	first := exec.Command(goBin, "test", "-tags", "e2e,reprodemo", "-run", "^TestInProcessDemo$", "./harness/internal/reprodemo",
		"-count=5", "-v", fmt.Sprintf("-%s=%d", seed.FlagName, run))
	first.Dir = root
	first.Env = append(os.Environ(), "TIERCHAOS_DEMO=1", "TIERCHAOS_SUT=inprocess")
	out, err := first.CombinedOutput()
	require.Error(t, err, "the demo must fail:\n%s", out)
	assert.Equal(t, 1, strings.Count(string(out), "--- FAIL: "+demoCase+" "), "one iteration fails:\n%s", out)
	assert.Equal(t, 4, strings.Count(string(out), "--- PASS: "+demoCase+" "), "four pass:\n%s", out)
	require.Contains(t, string(out), want, "iteration 3 lost its insert")

	m := regexp.MustCompile(`(?m)reproduce this case with:\s*\n\s*(.+)$`).FindAllSubmatch(out, -1)
	require.Len(t, m, 1, "one rerun line:\n%s", out)
	line := strings.TrimSpace(string(m[0][1]))
	t.Logf("printed: %s", line)
	require.Contains(t, line, "TIERCHAOS_SUT=inprocess")
	require.Contains(t, line, "-"+seed.CaseSeedFlagName+"=")
	require.True(t, strings.HasSuffix(line, " -count=1"), line)

	failed := 0
	for i := range 10 {
		rerun := exec.Command("sh", "-c", line)
		rerun.Dir = root
		rerun.Env = os.Environ()
		out, err := rerun.CombinedOutput()
		if err != nil && strings.Contains(string(out), want) && strings.Count(string(out), "--- FAIL: "+demoCase+" ") == 1 {
			failed++
			continue
		}
		t.Errorf("rerun %d did not fail the same way (want %q):\n%s", i+1, want, out)
	}
	t.Logf("the rerun line failed the same way %d of 10 times", failed)
	assert.Equal(t, 10, failed)
}
