//go:build !resultsdemo && !e2e

package resultsdemo_test

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// junit is the part of JUnit XML this test reads.
type junit struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Classname string `xml:"classname,attr"`
			Name      string `xml:"name,attr"`
			Failure   *struct {
				Body string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestMakeTestKeepsWhatFailed runs the deliberately failing package through
// make test (one part, unit, with this package and its build tag) into a
// temporary results folder, as CI runs make test, and checks what a CI job
// keeps: make fails; test-results/junit.xml names the failing case with
// the artifact files of its checkers; those files lie in the case's folder
// under test-results/artifacts/unit/; and the summary for the job page
// shows the case with its rerun command and that folder.
func TestMakeTestKeepsWhatFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make test in a child process")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		requireInCI(t, "make is not installed")
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	if _, err := exec.LookPath("gotestsum"); err != nil {
		gopath, gerr := exec.Command(goBin, "env", "GOPATH").Output()
		require.NoError(t, gerr)
		if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(gopath)), "bin", "gotestsum")); err != nil {
			requireInCI(t, "gotestsum is not installed (go install gotest.tools/gotestsum@v1.13.0)")
		}
	}
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	results := t.TempDir()
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=", "TIERCHAOS_ARTIFACTS="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})

	mk := exec.Command(makeBin, "-C", root, "test", "PARTS=unit", "PKGS=./harness/internal/resultsdemo",
		"TAGS=resultsdemo", "RESULTS="+results)
	mk.Env = env
	out, err := mk.CombinedOutput()
	require.Error(t, err, "make test must fail:\n%s", out)
	assert.Contains(t, string(out), "junit: FAIL github.com/tierchaos/tierchaos/harness/internal/resultsdemo [unit] TestLostWriteDemo", "%s", out)

	b, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	require.NoError(t, err, "make test wrote no junit.xml:\n%s", out)
	var doc junit
	require.NoError(t, xml.Unmarshal(b, &doc))
	var body string
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			if c.Name == "TestLostWriteDemo" && c.Failure != nil {
				assert.Equal(t, "github.com/tierchaos/tierchaos/harness/internal/resultsdemo [unit]", c.Classname)
				body = c.Failure.Body
			}
		}
	}
	require.NotEmpty(t, body, "junit.xml names no failing TestLostWriteDemo:\n%s", b)

	caseDirs, err := filepath.Glob(filepath.Join(results, "artifacts", "unit", "harness", "internal", "resultsdemo", "TestLostWriteDemo-*"))
	require.NoError(t, err)
	require.Len(t, caseDirs, 1, "one artifact folder for the failing case")
	for _, f := range []string{"lost-writes-history.json", "lost-writes-violations.json", "lost-writes-timeline.html"} {
		p := filepath.Join(caseDirs[0], f)
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Positive(t, st.Size(), p)
		assert.Contains(t, body, p, "junit.xml names the artifact file")
	}

	sum := exec.Command(goBin, "run", "./cmd/tierchaos", "summary", "-artifacts", filepath.Join(results, "artifacts"),
		filepath.Join(results, "unit.json"))
	sum.Dir = root
	sum.Env = env
	md, err := sum.Output()
	require.NoError(t, err)
	assert.Contains(t, string(md), "### `TestLostWriteDemo` (unit, `github.com/tierchaos/tierchaos/harness/internal/resultsdemo`)")
	rerun := regexp.MustCompile("(?m)^(TIERCHAOS_[A-Z_]+=\\S+ )*go test -race -tags resultsdemo -run '\\^TestLostWriteDemo\\$' \\./harness/internal/resultsdemo -chaos\\.seed=\\d+ -chaos\\.case-seed=\\d+ -count=1$")
	assert.Regexp(t, rerun, string(md))
	assert.Contains(t, string(md), "- artifact: `"+filepath.Join(caseDirs[0], "lost-writes-history.json")+"`")
}

// requireInCI skips the test outside CI and fails it in CI (CI set).
func requireInCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and %s", why)
	}
	t.Skip(why)
}
