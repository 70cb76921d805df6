//go:build !linux

package datadir

import (
	"errors"
	"fmt"
	"runtime"
)

// statfs fails: tierd's data directory is read from the host on Linux only.
func statfs(dir string) (Space, error) {
	return Space{}, fmt.Errorf("datadir: statfs %s (GOOS=%s, Linux only): %w", dir, runtime.GOOS, errors.ErrUnsupported)
}
