package artifacts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/artifacts"
)

func TestName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TestX", "TestX"},
		{"TestX/a_b", "TestX_a_b"},
		{"TestFailure/503_(x5)_on_put.object#01", "TestFailure_503__x5__on_put.object_01"},
		{"TestX/../..", "TestX"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := artifacts.Name(tt.in)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, string(filepath.Separator))
		})
	}
}

// TestDirUnderTheRoot: with TIERCHAOS_ARTIFACTS set, the folder lies under
// <root>/<package>/, is kept when a file was written into it, and removed
// when it stayed empty.
func TestDirUnderTheRoot(t *testing.T) {
	root := t.TempDir()
	t.Setenv(artifacts.EnvRoot, root)
	var kept, dropped string
	t.Run("writes", func(t *testing.T) {
		dir, err := artifacts.Dir(t)
		require.NoError(t, err)
		kept = dir
		require.NoError(t, os.WriteFile(filepath.Join(dir, "history.json"), []byte("[]"), 0o644))
	})
	t.Run("writes-nothing", func(t *testing.T) {
		dir, err := artifacts.Dir(t)
		require.NoError(t, err)
		dropped = dir
		assert.DirExists(t, dir)
	})
	parent := filepath.Join(root, "harness", "artifacts")
	assert.Equal(t, parent, filepath.Dir(kept))
	assert.True(t, strings.HasPrefix(filepath.Base(kept), "TestDirUnderTheRoot_writes-"), kept)
	assert.FileExists(t, filepath.Join(kept, "history.json"))
	assert.NoDirExists(t, dropped)
}

func TestDirWithoutRootIsTemporary(t *testing.T) {
	t.Setenv(artifacts.EnvRoot, "")
	dir, err := artifacts.Dir(t)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(dir, os.TempDir()), dir)
	assert.Contains(t, filepath.Base(dir), "tierchaos-TestDirWithoutRootIsTemporary-")
}

func TestDirReportsAnUnusableRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	t.Setenv(artifacts.EnvRoot, file)
	_, err := artifacts.Dir(t)
	assert.ErrorIs(t, err, artifacts.ErrDir)
}
