//go:build !linux

package harness

import (
	"errors"
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

// procStart fails: process start times in clock ticks come from Linux's
// /proc.
func procStart(pid int) (string, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat fails: process states come from Linux's /proc.
func procStat(pid int) (byte, string, error) {
	return 0, "", fmt.Errorf("harness: state of process %d: /proc is Linux only (GOOS=%s): %w", pid, runtime.GOOS, errors.ErrUnsupported)
}
