//go:build !linux

package harness

import (
	"fmt"
	"log/slog"
	"runtime"
)

// mount fails: host tmpfs mounts need Linux.
func (h *hostDirs) mount(name, size string) (string, error) {
	return "", fmt.Errorf("harness: host tmpfs %s of %s under %s: %w (GOOS=%s)", name, size, h.root, errNoTmpfs, runtime.GOOS)
}

// unmount fails: mount never mounts anything here.
func unmount(dir string, _ *slog.Logger) error {
	return fmt.Errorf("harness: unmount %s: %w (GOOS=%s)", dir, errNoTmpfs, runtime.GOOS)
}

// mountPoints returns no mount points: the harness mounts nothing here, so
// a leftover host folder holds plain files that os.RemoveAll removes.
func mountPoints(string) ([]string, error) { return nil, nil }
