package seed_test

import (
	"flag"
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

	for _, bad := range []string{"-1", "abc", "1.5", ""} {
		err := fs.Parse([]string{"-chaos.seed=" + bad})
		assert.Error(t, err, bad)
	}
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
	assert.Equal(t, seed.Derive(run, t.Name()), c.Seed)
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

func TestEnvironmentKnowsThePackage(t *testing.T) {
	t.Setenv("TIERCHAOS_SUT", "inprocess")
	b := seed.Environment()
	assert.Equal(t, "./harness/seed", b.Package)
	assert.Contains(t, b.Env, "TIERCHAOS_SUT=inprocess")
}

// TestReproCommandReproduces runs a deliberately failing case (build tag
// seeddemo) in a child go test, takes the rerun command it prints, runs that
// command as printed, and requires the same failure with the same random
// draws.
func TestReproCommandReproduces(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs child test binaries")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)

	first := exec.Command(goBin, "test", "-tags", "seeddemo", "-run", "^TestDemo$", "./harness/seed", "-count=1", "-v")
	first.Dir = root
	first.Env = append(os.Environ(), "TIERCHAOS_DEMO=1")
	out1, err := first.CombinedOutput()
	require.Error(t, err, "the demo must fail:\n%s", out1)

	cmdRe := regexp.MustCompile(`(?m)reproduce this case with:\s*\n\s*(.+)$`)
	m := cmdRe.FindSubmatch(out1)
	require.NotNil(t, m, "no rerun command in:\n%s", out1)
	command := strings.TrimSpace(string(m[1]))
	t.Logf("printed: %s", command)
	assert.Contains(t, command, "TIERCHAOS_DEMO=1")
	assert.Contains(t, command, "-run '^TestDemo$/^unlucky$'")

	drawRe := regexp.MustCompile(`unlucky draw \d+`)
	draw1 := drawRe.Find(out1)
	require.NotNil(t, draw1)

	second := exec.Command("sh", "-c", command+" -v")
	second.Dir = root
	out2, err := second.CombinedOutput()
	require.Error(t, err, "the rerun must fail too:\n%s", out2)
	assert.Equal(t, string(draw1), string(drawRe.Find(out2)), "same randomness")
	assert.NotContains(t, string(out2), "=== RUN   TestDemo/lucky", "only the failing case reruns")
}
