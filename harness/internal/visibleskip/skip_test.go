//go:build unix && !visibleskip

package visibleskip_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSkipIsVisible runs a package whose TestMain is tierd.Main with
// -short in a child go test, in package list mode as a user types it, and
// checks what go test prints: outside CI the package passes and its ok line
// says that no test ran (-v also shows the reason); with CI set it fails
// and says why. A missing Docker engine takes the same two paths.
func TestSkipIsVisible(t *testing.T) {
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	root, err := filepath.Abs("../../..")
	require.NoError(t, err)
	const pkg = "./harness/internal/visibleskip"
	tests := []struct {
		name     string
		ci       bool
		args     []string
		wantFail bool
		want     []*regexp.Regexp
	}{
		{name: "short-outside-ci", args: []string{"-short"},
			want: []*regexp.Regexp{regexp.MustCompile(`(?m)^ok\s+github\.com/tierchaos/tierchaos/harness/internal/visibleskip\s+\S+\s+\[no tests to run\]$`)}},
		{name: "short-outside-ci-verbose", args: []string{"-short", "-v"},
			want: []*regexp.Regexp{
				regexp.MustCompile(`(?m)^harness: SKIP \./harness/internal/visibleskip: -short skips the container suites$`),
				regexp.MustCompile(`(?m)^ok\s+\S+/visibleskip\s+\S+\s+\[no tests to run\]$`),
			}},
		{name: "short-in-ci", ci: true, args: []string{"-short"}, wantFail: true,
			want: []*regexp.Regexp{
				regexp.MustCompile(`(?m)^harness: FAIL: CI is set and -short would skip the container suites$`),
				regexp.MustCompile(`(?m)^FAIL\s+github\.com/tierchaos/tierchaos/harness/internal/visibleskip\s`),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"test", "-tags", "visibleskip", "-count=1", pkg}, tt.args...)
			cmd := exec.Command(goBin, args...)
			cmd.Dir = root
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CI=") })
			if tt.ci {
				cmd.Env = append(cmd.Env, "CI=true")
			}
			// No controlling terminal: tierd.Main would write a hidden
			// skip's reason to the terminal of whoever runs this test.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			out, err := cmd.CombinedOutput()
			if tt.wantFail {
				require.Error(t, err, "%s", out)
			} else {
				require.NoError(t, err, "%s", out)
			}
			for _, re := range tt.want {
				assert.Regexp(t, re, string(out))
			}
			assert.NotContains(t, string(out), "--- PASS: TestNeedsTheStack", "the suite's test never runs")
		})
	}
}
