package harness

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mount mounts a tmpfs of size on a new folder name under the root and
// returns its path.
func (h *hostDirs) mount(name, size string) (string, error) {
	dir := filepath.Join(h.root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("harness: host tmpfs %s: %w", name, err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		hint := ""
		if errors.Is(err, syscall.EPERM) {
			hint = " (mounting a tmpfs needs root or CAP_SYS_ADMIN)"
		}
		return "", errors.Join(fmt.Errorf("harness: mount a %s tmpfs on %s%s: %w", size, dir, hint, err), os.Remove(dir))
	}
	h.mounts = append(h.mounts, dir)
	return dir, nil
}

// unmount unmounts dir, retrying briefly while it is busy (a container
// that has just been removed may still hold it) and then detaching it.
func unmount(dir string, log *slog.Logger) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = syscall.Unmount(dir, 0)
		if err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			return nil // EINVAL: not a mount point (any more)
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if derr := syscall.Unmount(dir, syscall.MNT_DETACH); derr == nil {
		log.Warn("host tmpfs was busy: detached it (freed once its last user lets go)", "dir", dir, "err", err)
		return nil
	}
	return fmt.Errorf("harness: unmount %s: %w", dir, err)
}

// mountPoints returns the mount points of this mount namespace under dir,
// deepest first.
func mountPoints(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMountinfo(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 and the like) of a
// path in /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procStart returns field 22 (starttime) of /proc/PID/stat.
func procStart(pid int) (string, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns fields 3 (state, 'Z' for a zombie) and 22 (starttime)
// of /proc/PID/stat.
func procStat(pid int) (byte, string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, "", fmt.Errorf("short /proc/%d/stat", pid)
	}
	return fields[0][0], fields[19], nil
}
