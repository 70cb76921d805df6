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
	"go.uber.org/goleak"

	"github.com/tierchaos/tierchaos/internal/tmpfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "65536", want: 65536},
		{in: "4k", want: 4 << 10},
		{in: "1m", want: 1 << 20},
		{in: "256M", want: 256 << 20},
		{in: "1g", want: 1 << 30},
		{in: "", bad: true},
		{in: "0", bad: true},
		{in: "-1m", bad: true},
		{in: "1t", bad: true},
		{in: "1m,uid=0", bad: true},
		{in: "99999999999999999999", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tmpfs.ParseSize(tc.in)
			if tc.bad {
				require.ErrorIs(t, err, tmpfs.ErrBadSize)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNewRejectsBadSize(t *testing.T) {
	_, err := tmpfs.New(context.Background(), "1m,nr_inodes=1", tmpfs.ModeAuto)
	require.ErrorIs(t, err, tmpfs.ErrBadSize)
}

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

			// The caller's namespace sees an empty mount point.
			mountPoint := f.MountPoint()
			require.Equal(t, mountPoint, dir[len(dir)-len(mountPoint):])
			ents, err := os.ReadDir(mountPoint)
			require.NoError(t, err)
			require.Empty(t, ents, "nothing of the tmpfs on the host's file system")

			require.NoError(t, f.Close())
			_, err = os.Stat(dir)
			require.ErrorIs(t, err, os.ErrNotExist, "the tmpfs is gone with its helper")
			_, err = os.Stat(mountPoint)
			require.ErrorIs(t, err, os.ErrNotExist, "the mount point is removed")
			require.NoError(t, f.Close(), "Close twice")
		})
	}
}
