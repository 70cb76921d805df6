// Package fsutil writes files atomically: a temporary file in the same
// folder, fsync, rename over the target, fsync of the folder. A failure
// (including ENOSPC) removes the temporary file, so no partial file is
// left behind under any name. Folders it creates are fsynced into their
// parents, so a committed file cannot vanish with its folder after a
// power loss.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TempSuffix marks temporary files; stray ones are removed at start.
const TempSuffix = ".tmp"

// ErrNoSpace wraps ENOSPC and EDQUOT.
var ErrNoSpace = errors.New("no space left on the data volume")

// WriteAtomic writes the output of fill to path atomically, creating its
// folder (see MkdirAll) if needed. An error after the rename (the folder
// fsync) leaves the new file in place.
func WriteAtomic(path string, fill func(w io.Writer) error) error {
	return WriteAtomicFS(OS, path, fill)
}

// WriteAtomicFS is WriteAtomic on fsys.
func WriteAtomicFS(fsys FS, path string, fill func(w io.Writer) error) error {
	return writeAtomic(fsys, path, fill, fsys.SyncDir)
}

// writeAtomic is WriteAtomic with the folder fsync passed in (tests
// record or fail it).
func writeAtomic(fsys FS, path string, fill func(w io.Writer) error, syncDir func(dir string) error) (err error) {
	dir := filepath.Dir(path)
	if err := mkdirAll(fsys, dir, syncDir); err != nil {
		return err
	}
	f, err := fsys.CreateTemp(dir, filepath.Base(path)+".*"+TempSuffix)
	if err != nil {
		return wrap("create temp", dir, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			fsys.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return wrap("write", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return wrap("fsync", tmp, err)
	}
	if err := f.Close(); err != nil {
		return wrap("close", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return wrap("rename", tmp, err)
	}
	return syncDir(dir)
}

// MkdirAll creates dir and its missing parents like os.MkdirAll, and
// fsyncs the parent of every folder it creates, top down, so that each
// new folder's entry is durable before anything is written into it.
func MkdirAll(dir string) error { return MkdirAllFS(OS, dir) }

// MkdirAllFS is MkdirAll on fsys.
func MkdirAllFS(fsys FS, dir string) error { return mkdirAll(fsys, dir, fsys.SyncDir) }

func mkdirAll(fsys FS, dir string, syncDir func(string) error) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; {
		info, err := fsys.Stat(d)
		if err == nil {
			if !info.IsDir() {
				return wrap("mkdir", dir, fmt.Errorf("%s is not a folder", d))
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return wrap("mkdir", d, err)
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := fsys.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return wrap("mkdir", d, err)
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// SyncDir fsyncs a folder so that renames and removals in it are durable.
func SyncDir(dir string) error { return syncDirOS(dir) }

func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return wrap("open dir", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return wrap("fsync dir", dir, err)
	}
	return nil
}

// IsNoSpace reports whether err is (or wraps) ENOSPC, EDQUOT or ErrNoSpace.
func IsNoSpace(err error) bool {
	return errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func wrap(op, path string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s %s: %w: %w", op, path, ErrNoSpace, err)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

// RemoveTemps deletes every file ending in TempSuffix under root and
// returns their paths.
func RemoveTemps(root string) ([]string, error) { return RemoveTempsFS(OS, root) }

// RemoveTempsFS is RemoveTemps on fsys.
func RemoveTempsFS(fsys FS, root string) ([]string, error) {
	var removed []string
	err := Walk(fsys, root, func(p string, d os.DirEntry) error {
		if !d.IsDir() && strings.HasSuffix(d.Name(), TempSuffix) {
			if err := fsys.Remove(p); err != nil {
				return err
			}
			removed = append(removed, p)
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("remove temp files: %w", err)
	}
	return removed, nil
}

// Walk calls fn for every entry under root (not root itself), parents
// before their contents, each folder's entries in name order. A root
// that does not exist is empty; a folder that vanishes during the walk
// is skipped.
func Walk(fsys FS, root string, fn func(path string, d os.DirEntry) error) error {
	ents, err := fsys.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if err := fn(p, e); err != nil {
			return err
		}
		if e.IsDir() {
			if err := Walk(fsys, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
