package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoDataDir is returned when tierd's data directory is not on the host
// (tierd in a container with its data in a Docker volume or a container
// tmpfs), or, for FillData, not on a tmpfs the harness mounted.
var ErrNoDataDir = errors.New("harness: tierd's data directory is not a host directory the harness may use")

// Host tmpfs mounts live under os.TempDir()/tierchaos-host-<run id>-<random>/,
// which holds an "owner" file naming the owning process, so that the
// watchdog and later runs can unmount what a dead run left behind.
const (
	hostDirPrefix = "tierchaos-host-"
	hostOwnerFile = "owner"
	// fillerPrefix names FillData's files in the root of tierd's data
	// directory: tierd removes only *.tmp files anywhere, unreferenced files
	// under local/ and WAL segments under wal/, and leaves other files in
	// the root alone.
	fillerPrefix = ".tierchaos-fill-"
	// minioHostTmpfsDefault is the size of MinIO's host tmpfs when
	// Options.MinIODataHostTmpfs is empty.
	minioHostTmpfsDefault = "1g"
)

// hostDirs is the stack's folder of host tmpfs mount points.
type hostDirs struct {
	root   string
	mounts []string
}

// newHostDirs creates the stack's host folder and its owner file.
func newHostDirs(runID string, pid int, pidStart string) (*hostDirs, error) {
	root, err := os.MkdirTemp("", hostDirPrefix+runID+"-")
	if err != nil {
		return nil, fmt.Errorf("harness: host data folder: %w", err)
	}
	owner := fmt.Sprintf("%d %s %s\n", pid, pidStart, runID)
	if err := os.WriteFile(filepath.Join(root, hostOwnerFile), []byte(owner), 0o644); err != nil {
		return nil, errors.Join(fmt.Errorf("harness: host data folder: %w", err), os.RemoveAll(root))
	}
	return &hostDirs{root: root}, nil
}

// close unmounts every mount and removes the folder. A mount still busy
// is detached (lazily unmounted) and reported.
func (h *hostDirs) close(log *slog.Logger) error {
	var errs []error
	for _, m := range h.mounts {
		errs = append(errs, unmount(m, log))
	}
	h.mounts = nil
	if err := os.RemoveAll(h.root); err != nil {
		errs = append(errs, fmt.Errorf("harness: remove host data folder: %w", err))
	}
	return errors.Join(errs...)
}

// hostOwner is the content of a host folder's owner file.
type hostOwner struct {
	pid      int
	pidStart string
	run      string
}

func readHostOwner(root string) (hostOwner, error) {
	b, err := os.ReadFile(filepath.Join(root, hostOwnerFile))
	if err != nil {
		return hostOwner{}, err
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return hostOwner{}, fmt.Errorf("malformed owner file in %s", root)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return hostOwner{}, fmt.Errorf("malformed owner file in %s: %w", root, err)
	}
	return hostOwner{pid: pid, pidStart: f[1], run: f[2]}, nil
}

// alive reports whether the owning process still exists (same PID and
// start time).
func (o hostOwner) alive() bool {
	start, err := procStart(o.pid)
	return err == nil && start == o.pidStart
}

// removeHostDirs unmounts and removes the host folders of runs that match
// (a folder without a readable owner file matches when it is more than a
// minute old: its creator died before writing it) and returns how many it
// removed.
func removeHostDirs(log *slog.Logger, match func(hostOwner) bool) (int, error) {
	ents, err := os.ReadDir(os.TempDir())
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), hostDirPrefix) {
			continue
		}
		root := filepath.Join(os.TempDir(), e.Name())
		o, err := readHostOwner(root)
		if err != nil {
			info, ierr := e.Info()
			if ierr != nil || time.Since(info.ModTime()) < time.Minute {
				continue
			}
		} else if !match(o) {
			continue
		}
		mps, err := mountPoints(root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var failed bool
		for _, mp := range mps {
			if err := unmount(mp, log); err != nil {
				errs = append(errs, err)
				failed = true
			}
		}
		if failed {
			continue
		}
		if err := os.RemoveAll(root); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// removeDeadHostDirs removes the host tmpfs folders of runs whose owning
// process is gone.
func removeDeadHostDirs(log *slog.Logger) {
	n, err := removeHostDirs(log, func(o hostOwner) bool { return !o.alive() })
	if err != nil {
		log.Warn("removing host tmpfs mounts of dead runs", "err", err)
	}
	if n > 0 {
		log.Info("removed host tmpfs mounts of dead runs", "folders", n)
	}
}

// DataDir returns the host path of tierd's data directory: always in
// process mode, and in container mode only with Options.TierdDataHostTmpfs
// (else an error wrapping ErrNoDataDir). The path stays the same across
// tierd restarts.
func (s *Stack) DataDir() (string, error) {
	if in, ok := s.currentSUT().(*inProcessSUT); ok {
		return in.dataDir, nil
	}
	if s.tierdHostData != "" {
		return s.tierdHostData, nil
	}
	return "", fmt.Errorf("harness: tierd's data is in its container (set Options.TierdDataHostTmpfs for a host directory): %w", ErrNoDataDir)
}

// fillableDataDir returns DataDir when it is a size-limited tmpfs the
// harness mounted (so that filling it cannot fill the host's disk).
func (s *Stack) fillableDataDir() (string, error) {
	dir, err := s.DataDir()
	if err != nil {
		return "", err
	}
	in, inProcess := s.currentSUT().(*inProcessSUT)
	if s.tierdHostData == "" && !(inProcess && in.mounted) {
		return "", fmt.Errorf("harness: tierd's data directory %s is not a tmpfs of the harness (set Options.TierdDataHostTmpfs, or TierdDataTmpfs in process mode): %w", dir, ErrNoDataDir)
	}
	return dir, nil
}

// FillData fills the file system of tierd's data directory until it is
// full (ENOSPC) by writing a filler file in the root of the data directory
// (a dot-file that tierd never reads, sweeps or counts), and returns the
// bytes it wrote. It needs DataDir on a tmpfs of the harness:
// Options.TierdDataHostTmpfs, or TierdDataTmpfs in process mode; otherwise
// the error wraps ErrNoDataDir. On a full tmpfs a write that fits in the
// last, partly used page of an existing file still succeeds, so a tiny
// insert may still pass. FreeData removes the fillers.
func (s *Stack) FillData(ctx context.Context) (int64, error) {
	dir, err := s.fillableDataDir()
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(dir, fillerPrefix+"*")
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return 0, nil // already full: not even an inode left
		}
		return 0, fmt.Errorf("harness: fill data: %w", err)
	}
	defer f.Close()
	var total int64
	buf := make([]byte, 1<<20)
	for _, chunk := range []int{1 << 20, 4096, 1} {
		for {
			if err := ctx.Err(); err != nil {
				return total, fmt.Errorf("harness: fill data: %w", err)
			}
			n, err := f.Write(buf[:chunk])
			total += int64(n)
			if err == nil {
				continue
			}
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				break
			}
			return total, fmt.Errorf("harness: fill data: %w", err)
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		return total, fmt.Errorf("harness: fill data: %w", err)
	}
	s.log.Info("filled tierd's data file system", "dir", dir, "bytes", total)
	return total, nil
}

// FreeData removes FillData's filler files.
func (s *Stack) FreeData(ctx context.Context) error {
	dir, err := s.fillableDataDir()
	if err != nil {
		return err
	}
	matches, err := filepath.Glob(filepath.Join(dir, fillerPrefix+"*"))
	if err != nil {
		return fmt.Errorf("harness: free data: %w", err)
	}
	var errs []error
	for _, m := range matches {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("harness: free data: %w", err)
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("harness: free data: %w", err))
		}
	}
	return errors.Join(errs...)
}
