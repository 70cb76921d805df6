//go:build linux

package tmpfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/internal/tmpfs"
)

// newFS makes a tmpfs in mode, or skips (outside CI) or fails (CI) when
// this machine allows none.
func newFS(t *testing.T, size string, mode tmpfs.Mode) *tmpfs.FS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := tmpfs.New(ctx, size, mode)
	if errors.Is(err, tmpfs.ErrUnavailable) && os.Getenv("CI") == "" {
		t.Skipf("no tmpfs in a %s here (set CI=true to make this a failure): %v", mode, err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	return f
}

// TestFillToENOSPC fills a 1 MiB tmpfs in each mode this process may use:
// writes stop with ENOSPC at the size, rename and link work, nothing shows
// at the mount point in this process's namespace, and Close frees it all.
func TestFillToENOSPC(t *testing.T) {
	modes := []tmpfs.Mode{tmpfs.ModeAuto, tmpfs.ModeUserNamespace}
	if os.Geteuid() == 0 {
		modes = append(modes, tmpfs.ModeMountNamespace)
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			f := newFS(t, "1m", mode)
			require.Equal(t, int64(1<<20), f.Size())
			if mode != tmpfs.ModeAuto {
				require.Equal(t, mode, f.Mode())
			}
			dir := f.Dir()
			var st syscall.Statfs_t
			require.NoError(t, syscall.Statfs(dir, &st))
			require.Equal(t, int64(1<<20), int64(st.Blocks)*st.Bsize, "size")

			w, err := os.Create(filepath.Join(dir, "filler"))
			require.NoError(t, err)
			var written int64
			buf := make([]byte, 4096)
			for {
				n, err := w.Write(buf)
				written += int64(n)
				if err != nil {
					require.ErrorIs(t, err, syscall.ENOSPC)
					break
				}
				require.Less(t, written, int64(2<<20), "writes never stop")
			}
			require.NoError(t, w.Close())
			require.Equal(t, int64(1<<20), written, "a real ENOSPC at the size")
			require.NoError(t, os.Rename(filepath.Join(dir, "filler"), filepath.Join(dir, "moved")))
			require.NoError(t, os.Link(filepath.Join(dir, "moved"), filepath.Join(dir, "linked")))

			// Nothing of the tmpfs shows in this process's own /tmp.
			_, err = os.Stat(filepath.Join("/tmp", "linked"))
			require.ErrorIs(t, err, os.ErrNotExist, "the tmpfs covers /tmp only in the helper's namespace")

			require.NoError(t, f.Close())
			_, err = os.Stat(dir)
			require.ErrorIs(t, err, os.ErrNotExist, "the tmpfs is gone with its helper")
			require.NoError(t, f.Close(), "Close twice")
		})
	}
}
