package stack

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingTB records how a test ended instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

// TestRequireDataTmpfs: a stack with its data on a tmpfs lets the test go
// on; one that fell back to a plain directory skips it with the reason,
// or fails it in CI; one that never asked for a tmpfs fails it.
func TestRequireDataTmpfs(t *testing.T) {
	noNamespace := errors.New("tmpfs: no size-limited tmpfs can be made here: user namespaces disabled")
	cases := []struct {
		name     string
		stack    func() *Stack
		ci       string
		wantSkip string
		wantFail string
	}{
		{name: "tmpfs", stack: func() *Stack { return &Stack{data: dataDir{tmpfsSize: "4m"}} }},
		{name: "tmpfs-ci", stack: func() *Stack { return &Stack{data: dataDir{tmpfsSize: "4m"}} }, ci: "true"},
		{name: "fallback", stack: func() *Stack { return &Stack{data: dataDir{tmpfsSize: "4m", tmpfsErr: noNamespace}} },
			wantSkip: "only with the service in a container (TIERCHAOS_SUT=container)"},
		{name: "fallback-ci", stack: func() *Stack { return &Stack{data: dataDir{tmpfsSize: "4m", tmpfsErr: noNamespace}} }, ci: "true",
			wantFail: "user namespaces disabled"},
		{name: "not-asked", stack: func() *Stack { return &Stack{} }, wantFail: "start the stack with Options.DataTmpfs"},
		{name: "not-asked-ci", stack: func() *Stack { return &Stack{} }, ci: "true", wantFail: "start the stack with Options.DataTmpfs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			rec := &recordingTB{TB: t}
			s := tc.stack()
			s.RequireDataTmpfs(rec)
			err := s.DataTmpfs()
			if tc.wantSkip == "" && tc.wantFail == "" {
				require.NoError(t, err)
				require.Empty(t, rec.skipped+rec.failed)
				return
			}
			require.ErrorIs(t, err, ErrNoDataDir)
			if tc.wantSkip != "" {
				require.Contains(t, rec.skipped, tc.wantSkip)
				require.Empty(t, rec.failed)
			} else {
				require.Contains(t, rec.failed, tc.wantFail)
				require.Empty(t, rec.skipped)
			}
		})
	}
}
