package tmpfs

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHelperFailureIsUnavailable: a helper that cannot mount says why, and
// New's caller gets ErrUnavailable with that reason.
func TestHelperFailureIsUnavailable(t *testing.T) {
	mode := ModeUserNamespace
	if os.Geteuid() == 0 {
		mode = ModeMountNamespace
	}
	_, err := startHelper(context.Background(), "/nonexistent-tierchaos-mount-point", "1m", mode)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "mount a 1m tmpfs on /nonexistent-tierchaos-mount-point")
}

func TestHelperBody(t *testing.T) {
	cases := []struct {
		name, dir, size string
		code            int
		out             string
	}{
		{"bad-size", "/tmp", "1m,uid=0", 2, errorPrefix + "tmpfs: bad size"},
	}
	if os.Geteuid() != 0 {
		// Outside a namespace of its own a non-root helper may not mount.
		cases = append(cases, struct {
			name, dir, size string
			code            int
			out             string
		}{"no-privilege", t.TempDir(), "1m", 2, errorPrefix})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := helper(tc.dir, tc.size, strings.NewReader(""), &out)
			require.Equal(t, tc.code, code)
			require.True(t, strings.HasPrefix(out.String(), tc.out), "output %q", out.String())
		})
	}
}
