// Package datadir reads tierd's data directory from the test process, in
// both harness modes: in process it is the directory the in-process tierd
// has its write-ahead log open in; in a container it is /data seen through
// /proc/<pid>/root of tierd's process (this also sees a tmpfs mounted in the
// container, which `docker cp` does not). Both need the Docker engine on
// this host and root, as the harness's tmpfs support does.
package datadir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/client"

	"github.com/tierchaos/tierchaos/harness"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/system/fsutil"
	"github.com/tierchaos/tierchaos/system/manifest"
)

// containerDataDir is TIERD_DATA_DIR inside the harness's tierd container.
const containerDataDir = "/data"

// ErrNotFound is returned when tierd's data directory cannot be located.
var ErrNotFound = errors.New("datadir: tierd's data directory not found")

// Dir returns a host path of tierd's current data directory.
func Dir(ctx context.Context, s *harness.Stack) (string, error) {
	if s.Mode == harness.SUTInProcess {
		return inProcessDir()
	}
	cli, err := dockerenv.Client(ctx)
	if err != nil {
		return "", err
	}
	defer cli.Close()
	name := "tierchaos-" + s.Run.ID + "-tierd"
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("%w: inspect %s: %w", ErrNotFound, name, err)
	}
	st := res.Container.State
	if st == nil || !st.Running || st.Pid <= 0 {
		return "", fmt.Errorf("%w: container %s is not running", ErrNotFound, name)
	}
	dir := filepath.Join("/proc", strconv.Itoa(st.Pid), "root", containerDataDir)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%w: %s (the Docker engine must run on this host, and the test as root): %w", ErrNotFound, dir, err)
	}
	return dir, nil
}

// inProcessDir finds the data directory through the write-ahead log
// segment the in-process tierd keeps open (<data>/wal/wal-<lsn>.log).
// Instances abandoned by a simulated kill use the same directory.
func inProcessDir() (string, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	found := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || strings.HasSuffix(target, " (deleted)") {
			continue
		}
		walDir := filepath.Dir(target)
		if filepath.Base(walDir) == "wal" && strings.HasPrefix(filepath.Base(target), "wal-") && strings.HasSuffix(target, ".log") {
			found[filepath.Dir(walDir)] = true
		}
	}
	dirs := make([]string, 0, len(found))
	for d := range found {
		dirs = append(dirs, d)
	}
	if len(dirs) != 1 {
		sort.Strings(dirs)
		return "", fmt.Errorf("%w: want exactly one open write-ahead log directory, found %v", ErrNotFound, dirs)
	}
	return dirs[0], nil
}

// Listing is what the data directory holds: every regular file, by path
// relative to the directory (slash-separated), with its size.
type Listing struct {
	// Dir is the host path the listing was read from.
	Dir string
	// Files maps relative path to size in bytes.
	Files map[string]int64
}

// List reads every regular file under tierd's data directory.
func List(ctx context.Context, s *harness.Stack) (Listing, error) {
	dir, err := Dir(ctx, s)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Dir: dir, Files: map[string]int64{}}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		l.Files[filepath.ToSlash(rel)] = info.Size()
		return nil
	})
	if err != nil {
		return Listing{}, fmt.Errorf("datadir: list %s: %w", dir, err)
	}
	return l, nil
}

// Parquet returns the local Parquet files (warm copies and hot
// checkpoints, under local/) with their sizes.
func (l Listing) Parquet() map[string]int64 {
	out := map[string]int64{}
	for p, n := range l.Files {
		if strings.HasPrefix(p, "local/") && strings.HasSuffix(p, ".parquet") {
			out[p] = n
		}
	}
	return out
}

// ParquetBytes is the total size of the local Parquet files, what tierd
// counts against its warm quota.
func (l Listing) ParquetBytes() int64 {
	var n int64
	for _, s := range l.Parquet() {
		n += s
	}
	return n
}

// Partial returns files a write left behind: temporary files (fsutil's
// *.tmp) and
// anything under local/ that is not a Parquet file.
func (l Listing) Partial() []string {
	var out []string
	for p := range l.Files {
		if strings.HasSuffix(p, fsutil.TempSuffix) ||
			(strings.HasPrefix(p, "local/") && !strings.HasSuffix(p, ".parquet")) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Manifest reads tierd's manifest from its data directory.
func Manifest(ctx context.Context, s *harness.Stack) (*manifest.Manifest, error) {
	dir, err := Dir(ctx, s)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	return m, nil
}

// Space is the file system's view of the data volume, in bytes.
type Space struct {
	Total, Free int64
}

// Statfs reports the size and free space of the file system holding
// tierd's data directory.
func Statfs(ctx context.Context, s *harness.Stack) (Space, error) {
	dir, err := Dir(ctx, s)
	if err != nil {
		return Space{}, err
	}
	return statfs(dir)
}
