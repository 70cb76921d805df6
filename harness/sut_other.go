//go:build !linux

package harness

import (
	"errors"
	"fmt"
	"runtime"
)

// errNoTmpfs is returned where the harness cannot mount a tmpfs.
var errNoTmpfs = errors.New("harness: tmpfs mounts need Linux")

// mountTmpfs fails: the harness mounts tmpfs file systems on Linux only.
func mountTmpfs(dir, size string) error {
	return fmt.Errorf("%w (GOOS=%s): cannot mount a %s tmpfs on %s", errNoTmpfs, runtime.GOOS, size, dir)
}

// unmountTmpfs fails: mountTmpfs never mounts anything here.
func unmountTmpfs(dir string) error {
	return fmt.Errorf("%w (GOOS=%s): cannot unmount %s", errNoTmpfs, runtime.GOOS, dir)
}
