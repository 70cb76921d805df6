package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f.bin")
	require.NoError(t, WriteAtomic(p, func(w io.Writer) error { _, err := w.Write([]byte("one")); return err }))
	// A failing writer leaves the old content and no temporary file.
	boom := errors.New("boom")
	err := WriteAtomic(p, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "one", string(b))
	ents, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, ents, 1)
	// ENOSPC is recognisable.
	err = WriteAtomic(p, func(io.Writer) error { return syscall.ENOSPC })
	require.ErrorIs(t, err, ErrNoSpace)
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	for _, f := range []string{"keep.parquet", "a/x.parquet.123.tmp", "a/b/y.tmp", "a/b/keep"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	removed, err := RemoveTemps(dir)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{filepath.Join(dir, "a/x.parquet.123.tmp"), filepath.Join(dir, "a/b/y.tmp")}, removed)
	_, err = os.Stat(filepath.Join(dir, "a/b/keep"))
	require.NoError(t, err)
	removed, err = RemoveTemps(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	require.Empty(t, removed)
}
