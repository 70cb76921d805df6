package datadir

import (
	"fmt"
	"syscall"
)

// statfs reports the size and free space of the file system holding dir.
func statfs(dir string) (Space, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Space{}, fmt.Errorf("datadir: statfs %s: %w", dir, err)
	}
	return Space{Total: int64(st.Blocks) * st.Bsize, Free: int64(st.Bavail) * st.Bsize}, nil
}
