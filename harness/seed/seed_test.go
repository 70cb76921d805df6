package seed_test

import (
	"flag"
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

func TestMain(m *testing.M) {
	seed.Init(os.Stderr)
	os.Exit(m.Run())
}

func TestFlagValue(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	v := seed.RegisterFlags(fs)
	other := seed.RegisterFlags(flag.NewFlagSet("y", flag.ContinueOnError))
	assert.NotEqual(t, v.Seed(), other.Seed(), "defaults are random")
	assert.False(t, v.FromFlag())

	require.NoError(t, fs.Parse([]string{"-chaos.seed=18446744073709551615"}))
	assert.Equal(t, uint64(18446744073709551615), v.Seed())
	assert.True(t, v.FromFlag())
	assert.Equal(t, "18446744073709551615", v.String())

	_, pinned := v.CaseSeed()
	assert.False(t, pinned)
	require.NoError(t, fs.Parse([]string{"-chaos.case-seed=12"}))
	pin, pinned := v.CaseSeed()
	assert.True(t, pinned)
	assert.Equal(t, uint64(12), pin)
	assert.Equal(t, "12", fs.Lookup(seed.CaseSeedFlagName).Value.String())

	for _, bad := range []string{"-1", "abc", "1.5", ""} {
		for _, name := range []string{seed.FlagName, seed.CaseSeedFlagName} {
			err := fs.Parse([]string{"-" + name + "=" + bad})
			assert.Error(t, err, name+"="+bad)
		}
	}
}

func TestIteration(t *testing.T) {
	assert.Equal(t, uint64(5), seed.Iteration(5, 1))
	assert.Equal(t, uint64(5), seed.Iteration(5, 0))
	assert.Equal(t, seed.Derive(5, "#2"), seed.Iteration(5, 2))
	assert.NotEqual(t, seed.Iteration(5, 2), seed.Iteration(5, 3))
}

func TestRegisterIsIdempotentAndRunReadsTheFlag(t *testing.T) {
	v := seed.Register()
	assert.Same(t, v, seed.Register())
	run, err := seed.Run()
	require.NoError(t, err)
	assert.Equal(t, v.Seed(), run)
}

func TestDerivedSeedsAreStable(t *testing.T) {
	assert.Equal(t, seed.Derive(1, "TestX/a"), seed.Derive(1, "TestX/a"))
	assert.NotEqual(t, seed.Derive(1, "TestX/a"), seed.Derive(1, "TestX/b"))
	assert.NotEqual(t, seed.Derive(1, "TestX/a"), seed.Derive(2, "TestX/a"))

	c := &seed.Case{Run: 5, Name: "TestX/a", Seed: seed.Derive(5, "TestX/a")}
	a, b := c.Rand(), c.Rand()
	for range 10 {
		require.Equal(t, a.Uint64(), b.Uint64())
	}
	w1, w1again, w2 := c.Stream("worker-1"), c.Stream("worker-1"), c.Stream("worker-2")
	x := w1.Uint64()
	assert.Equal(t, x, w1again.Uint64())
	assert.NotEqual(t, x, w2.Uint64())
}

func TestForDerivesFromTheTestName(t *testing.T) {
	run, err := seed.Run()
	require.NoError(t, err)
	c := seed.For(t)
	assert.Equal(t, run, c.Run)
	assert.Equal(t, t.Name(), c.Name)
	if _, pinned := seed.Register().CaseSeed(); !pinned {
		assert.Equal(t, seed.Iteration(seed.Derive(run, t.Name()), c.Iteration), c.Seed)
	}
	assert.Equal(t, c.Iteration, seed.For(t).Iteration, "a second call in the same test shares the iteration")
}

func TestRunPattern(t *testing.T) {
	tests := []struct {
		name    string
		want    string
		matches []string // every level must match exactly its own element
	}{
		{"TestX", "^TestX$", nil},
		{"TestX/case_1", "^TestX$/^case_1$", nil},
		{"TestFailure/503_(x5)_on_put.object#01", `^TestFailure$/^503_\(x5\)_on_put\.object#01$`, nil},
		{"TestX/a+b/[c]", `^TestX$/^a\+b$/^\[c\]$`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := seed.RunPattern(tt.name)
			assert.Equal(t, tt.want, got)
			levels := strings.Split(tt.name, "/")
			for i, p := range strings.Split(got, "/") {
				re := regexp.MustCompile(p)
				assert.True(t, re.MatchString(levels[i]))
				assert.False(t, re.MatchString(levels[i]+"x"), "anchored")
			}
		})
	}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		name  string
		build seed.Build
		want  string
	}{
		{"TestX/case", seed.Build{Tags: "e2e", Package: "./scenarios/failure"},
			"go test -tags e2e -run '^TestX$/^case$' ./scenarios/failure -chaos.seed=42 -count=1"},
		{"TestX", seed.Build{Race: true, Tags: "e2e,slow", Package: ".", Env: []string{"TIERCHAOS_SUT=inprocess"}},
			"TIERCHAOS_SUT=inprocess go test -race -tags e2e,slow -run '^TestX$' . -chaos.seed=42 -count=1"},
		{"TestX/it's", seed.Build{Package: "./harness/seed", Env: []string{"TIERCHAOS_DIR=/tmp/a b"}},
			`TIERCHAOS_DIR='/tmp/a b' go test -run '^TestX$/^it'\''s$' ./harness/seed -chaos.seed=42 -count=1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, seed.Command(tt.name, 42, tt.build))
		})
	}
}

func TestCaseCommandPinsTheIteration(t *testing.T) {
	tests := []struct {
		name string
		c    seed.Case
		b    seed.Build
		want string
	}{
		{"first-iteration", seed.Case{Run: 42, Name: "TestX/case", Seed: 7, Iteration: 1}, seed.Build{Tags: "e2e", Package: "./scenarios/failure"},
			"go test -tags e2e -run '^TestX$/^case$' ./scenarios/failure -chaos.seed=42 -chaos.case-seed=7 -count=1"},
		{"third-iteration", seed.Case{Run: 42, Name: "TestX/case", Seed: 9, Iteration: 3}, seed.Build{Race: true, Tags: "e2e", Package: ".", Env: []string{"TIERCHAOS_SUT=inprocess"}},
			"TIERCHAOS_SUT=inprocess go test -race -tags e2e -run '^TestX$/^case$' . -chaos.seed=42 -chaos.case-seed=9 -count=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.c.Command(tt.b))
		})
	}
}

func TestEnvironmentKnowsThePackage(t *testing.T) {
	t.Setenv("TIERCHAOS_SUT", "inprocess")
	t.Setenv(seed.EnvArtifacts, "/tmp/results")
	b := seed.Environment()
	assert.Equal(t, "./harness/seed", b.Package)
	assert.Contains(t, b.Env, "TIERCHAOS_SUT=inprocess")
	assert.NotContains(t, b.Env, seed.EnvArtifacts+"=/tmp/results", "where output goes is no part of the rerun")
}

// unluckyEvery is the failure rate of the seeddemo test
// TestDemoIterations: it fails when its draw is a multiple of this.
const unluckyEvery = 4

// demoDraw is the first draw of TestDemoIterations/draw at iteration n of
// a run with run seed run, as seed.For hands it out.
func demoDraw(run uint64, n int) uint64 {
	const name = "TestDemoIterations/draw"
	c := &seed.Case{Run: run, Name: name, Seed: seed.Iteration(seed.Derive(run, name), n)}
	return c.Rand().Uint64()
}

// seedFailingOnlyAt finds a run seed with which, of count iterations of
// TestDemoIterations, exactly iteration want fails.
func seedFailingOnlyAt(t *testing.T, want, count int) uint64 {
	t.Helper()
	for run := rand.Uint64(); ; run++ {
		ok := true
		for n := 1; n <= count && ok; n++ {
			unlucky := demoDraw(run, n)%unluckyEvery == 0
			ok = unlucky == (n == want)
		}
		if ok {
			return run
		}
	}
}

// TestReproCommandReproduces runs a deliberately failing case (build tag
// seeddemo) in a child go test, takes the rerun command it prints, runs that
// command as printed, again and again, and requires the same failure with
// the same random draw every time, with only that case running.
func TestReproCommandReproduces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs child test binaries")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)

	iterRun := seedFailingOnlyAt(t, 3, 5)
	tests := []struct {
		name string
		// args of the first go test after the package.
		args     []string
		failing  string // the case that must fail, once
		passing  string // a case that must pass (in the first run only)
		passes   int    // how many times it passes in the first run
		wantDraw string // the failing draw, when known beforehand
		reruns   int
		// controlPasses: the old command (run seed only, -count=1) must
		// pass, because it replays iteration 1.
		controlPasses bool
	}{
		{
			name: "subtest-beside-a-passing-one", args: []string{"-run", "^TestDemo$", "-count=1"},
			failing: "TestDemo/unlucky", passing: "TestDemo/lucky", passes: 1, reruns: 3,
		},
		{
			name:    "iteration-3-of-count-5",
			args:    []string{"-run", "^TestDemoIterations$", "-count=5", fmt.Sprintf("-%s=%d", seed.FlagName, iterRun)},
			failing: "TestDemoIterations/draw", passing: "TestDemoIterations/draw", passes: 4,
			wantDraw: fmt.Sprintf("unlucky draw %d", demoDraw(iterRun, 3)), reruns: 10, controlPasses: true,
		},
	}
	drawRe := regexp.MustCompile(`unlucky draw \d+`)
	cmdRe := regexp.MustCompile(`(?m)reproduce this case with:\s*\n\s*(.+)$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"test", "-tags", "seeddemo"}, tt.args[:2]...)
			args = append(append(args, "./harness/seed"), tt.args[2:]...)
			first := exec.Command(goBin, append(args, "-v")...)
			first.Dir = root
			first.Env = append(os.Environ(), "TIERCHAOS_DEMO=1")
			out1, err := first.CombinedOutput()
			require.Error(t, err, "the demo must fail:\n%s", out1)
			assert.Equal(t, 1, strings.Count(string(out1), "--- FAIL: "+tt.failing+" "), "fails once:\n%s", out1)
			assert.Equal(t, tt.passes, strings.Count(string(out1), "--- PASS: "+tt.passing+" "), "passes:\n%s", out1)

			ms := cmdRe.FindAllSubmatch(out1, -1)
			require.Len(t, ms, 1, "one rerun command in:\n%s", out1)
			command := strings.TrimSpace(string(ms[0][1]))
			t.Logf("printed: %s", command)
			assert.Contains(t, command, "TIERCHAOS_DEMO=1")
			assert.Contains(t, command, "-run '"+seed.RunPattern(tt.failing)+"'")
			assert.Contains(t, command, "-"+seed.CaseSeedFlagName+"=")
			assert.True(t, strings.HasSuffix(command, " -count=1"), command)

			draws := drawRe.FindAll(out1, -1)
			require.Len(t, draws, 1, "one failing draw in:\n%s", out1)
			draw := string(draws[0])
			if tt.wantDraw != "" {
				assert.Equal(t, tt.wantDraw, draw, "the iteration that failed")
			}

			for i := range tt.reruns {
				again := exec.Command("sh", "-c", command+" -v")
				again.Dir = root
				out2, err := again.CombinedOutput()
				require.Error(t, err, "rerun %d must fail too:\n%s", i+1, out2)
				assert.Equal(t, []string{draw}, stringsOf(drawRe.FindAll(out2, -1)), "rerun %d: same randomness:\n%s", i+1, out2)
				// The failing case and its parents run, nothing beside.
				assert.Equal(t, strings.Count(tt.failing, "/")+1, strings.Count(string(out2), "=== RUN   "),
					"rerun %d: only the failing case runs:\n%s", i+1, out2)
			}

			if tt.controlPasses {
				// Without the pinned case seed the command replays
				// iteration 1, which passed.
				old := regexp.MustCompile(` -`+regexp.QuoteMeta(seed.CaseSeedFlagName)+`=\d+`).ReplaceAllString(command, "")
				control := exec.Command("sh", "-c", old)
				control.Dir = root
				out3, err := control.CombinedOutput()
				assert.NoError(t, err, "iteration 1 passes:\n%s", out3)
			}
		})
	}
}

func stringsOf(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}
