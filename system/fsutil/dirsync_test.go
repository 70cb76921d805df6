package fsutil

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteAtomicSyncsEveryCreatedFolder: every folder WriteAtomic
// creates is fsynced into its parent, so that after a power loss a
// committed file cannot vanish with a folder whose entry was never made
// durable. Regression: only the file's own folder was fsynced.
func TestWriteAtomicSyncsEveryCreatedFolder(t *testing.T) {
	root := t.TempDir()
	var synced []string
	record := func(d string) error {
		synced = append(synced, d)
		return SyncDir(d)
	}
	write := func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }
	a := filepath.Join(root, "a")
	b := filepath.Join(a, "b")
	c := filepath.Join(b, "c")
	require.NoError(t, writeAtomic(OS, filepath.Join(c, "f"), write, record))
	for _, d := range []string{root, a, b, c} {
		require.Contains(t, synced, d, "the entry in %s is made durable", d)
	}
	require.Equal(t, c, synced[len(synced)-1], "the file's folder last, after the rename")
	// Folders that exist already are not synced again.
	synced = nil
	require.NoError(t, writeAtomic(OS, filepath.Join(c, "g"), write, record))
	require.Equal(t, []string{c}, synced)
	_, err := os.Stat(filepath.Join(c, "g"))
	require.NoError(t, err)
}
