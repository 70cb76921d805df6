package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// TestSaveOnAFullVolume fills a 1 MiB tmpfs to the last byte: saves that
// fit the spare still succeed (they overwrite allocated pages and only
// link and rename); one that must grow the file fails with ErrNoSpace and
// keeps the last commit.
// Mounting needs root; without it the test skips.
func TestSaveOnAFullVolume(t *testing.T) {
	vol := filepath.Join(t.TempDir(), "vol")
	require.NoError(t, os.MkdirAll(vol, 0o755))
	if err := syscall.Mount("tmpfs", vol, "tmpfs", 0, "size=1m"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skip("mounting a tmpfs needs root")
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(vol, syscall.MNT_DETACH) })
	f, m := openFile(t, vol)
	fill, err := os.Create(filepath.Join(vol, "filler"))
	require.NoError(t, err)
	t.Cleanup(func() { fill.Close() })
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			require.True(t, fsutil.IsNoSpace(err), "%v", err)
			break
		}
	}
	for i := range 3 {
		m.NextID = uint64(100 + i)
		require.NoError(t, f.Save(m), "a save within the spare needs no space")
	}
	big := m.Clone()
	big.PendingDeletes = []string{strings.Repeat("k", 2*MinCapacity)}
	err = f.Save(big)
	require.ErrorIs(t, err, fsutil.ErrNoSpace)
	got, err := Load(vol)
	require.NoError(t, err)
	require.Equal(t, m, got, "the last commit stays")
	ents, err := os.ReadDir(vol)
	require.NoError(t, err)
	require.Len(t, ents, 3, "manifest, spare and filler, no temporary file")
}
