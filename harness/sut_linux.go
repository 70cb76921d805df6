package harness

import "syscall"

// mountTmpfs mounts a tmpfs of size (e.g. "64m") on dir; it needs root.
func mountTmpfs(dir, size string) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size)
}

// unmountTmpfs unmounts the tmpfs mountTmpfs mounted on dir.
func unmountTmpfs(dir string) error {
	return syscall.Unmount(dir, 0)
}
