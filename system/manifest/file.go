package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// File names in the data folder. FileName is the manifest: JSON padded
// with trailing whitespace to a fixed capacity. SpareName is a
// preallocated file of the same kind that the next commit writes into
// before renaming it over FileName; KeepName exists only during a commit.
const (
	FileName  = "manifest.json"
	SpareName = "manifest.json.spare"
	KeepName  = "manifest.json.old"
)

// MinCapacity is the smallest size of the manifest and spare files.
const MinCapacity = 32 << 10

const pageSize = 4096

// A commit never updates the manifest in place and needs no free space:
//
//  1. write the new JSON, padded with spaces to the spare's size, over the
//     spare's already allocated bytes, and fsync it;
//  2. hard-link the current manifest as KeepName (its blocks stay
//     allocated; a KeepName left by an earlier failed step is removed
//     first: it is never read);
//  3. rename the spare over FileName (atomic: readers and a crash see the
//     old or the new manifest, never a mix);
//  4. rename KeepName to SpareName: the old manifest is the next spare;
//  5. fsync the folder. If that fails, steps 2-4 are undone (the old
//     manifest is FileName again, the new one the spare) and the commit
//     fails, so that the caller's view (the commit did not happen) and
//     the folder agree; the next commit first retries the folder fsync
//     and fails if it still fails, so that no spare whose inode might
//     still be the durable manifest is overwritten.
//
// Links and renames only change directory entries, and overwriting
// allocated bytes allocates nothing, so commits work on a full volume:
// above all the deletes and demotions that free space. A crash between
// the steps leaves at most KeepName beside FileName (Open makes it the
// spare again) or garbage in the spare (never read). Only a manifest that
// outgrows the spare needs space: it is then written through a new
// temporary file (fsutil.WriteAtomic) with twice the needed capacity, and
// the spare is regrown when there is room. (On copy-on-write file systems
// an overwrite allocates too.)

// File is the open manifest of a data folder. Its methods are safe for
// one caller at a time (the store serializes commits).
type File struct {
	mu        sync.Mutex
	fs        fsutil.FS
	dir       string
	manSize   int64 // size of FileName
	spareSize int64 // size of SpareName, 0 if there is none
	closed    bool
	// unsynced: a folder fsync failed and its retry too; the next Save
	// must see one succeed before it changes anything.
	unsynced bool
	// failed: an undo after a failed folder fsync failed too, so which
	// manifest is in place is unknown; every later Save fails.
	failed error
	// syncDir fsyncs the data folder (fs.SyncDir; tests fail it).
	syncDir func(dir string) error
}

func (mf *File) path(name string) string { return filepath.Join(mf.dir, name) }

// Open recovers an interrupted commit, reads the manifest in dir (a
// missing one is created empty) and makes sure a spare exists (best
// effort: without room for it, commits write a new file until there is).
func Open(dir string) (*File, *Manifest, error) { return OpenFS(fsutil.OS, dir) }

// OpenFS is Open on the file system fsys.
func OpenFS(fsys fsutil.FS, dir string) (*File, *Manifest, error) {
	fsys = fsutil.Or(fsys)
	mf := &File{fs: fsys, dir: dir, syncDir: fsys.SyncDir}
	if err := mf.recoverKeep(); err != nil {
		return nil, nil, err
	}
	b, err := mf.fs.ReadFile(mf.path(FileName))
	var m *Manifest
	switch {
	case errors.Is(err, os.ErrNotExist):
		m = New()
		body, err := encode(m)
		if err != nil {
			return nil, nil, err
		}
		if err := mf.writeNew(body); err != nil {
			return nil, nil, err
		}
	case err != nil:
		return nil, nil, fmt.Errorf("manifest: %w", err)
	default:
		if m, err = decode(mf.path(FileName), b); err != nil {
			return nil, nil, err
		}
		mf.manSize = int64(len(b))
	}
	if st, err := mf.fs.Stat(mf.path(SpareName)); err == nil {
		mf.spareSize = st.Size()
	}
	if mf.spareSize < mf.manSize {
		_ = mf.makeSpare(mf.manSize)
	}
	return mf, m, nil
}

// recoverKeep finishes or undoes a commit a crash interrupted.
func (mf *File) recoverKeep() error {
	keep := mf.path(KeepName)
	if _, err := mf.fs.Lstat(keep); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var err error
	if _, serr := mf.fs.Lstat(mf.path(SpareName)); errors.Is(serr, os.ErrNotExist) {
		err = mf.fs.Rename(keep, mf.path(SpareName))
	} else {
		err = mf.fs.Remove(keep)
	}
	if err != nil {
		return fmt.Errorf("manifest: recover %s: %w", keep, err)
	}
	if err := mf.fs.SyncDir(mf.dir); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// Load reads the current manifest in dir without opening it for commits
// (for readers such as tests; tierd itself uses Open). A missing file is
// an empty manifest.
func Load(dir string) (*Manifest, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return New(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return decode(path, b)
}

// Capacity returns the sizes of the manifest file and of its spare (0:
// none).
func (mf *File) Capacity() (manifest, spare int64) {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	return mf.manSize, mf.spareSize
}

// Save makes m the current manifest durably (see the commit steps above).
// On error the previous manifest stays current.
func (mf *File) Save(m *Manifest) error {
	body, err := encode(m)
	if err != nil {
		return err
	}
	mf.mu.Lock()
	defer mf.mu.Unlock()
	if mf.closed {
		return errors.New("manifest: file is closed")
	}
	if mf.failed != nil {
		return fmt.Errorf("manifest: an earlier commit could not be undone, restart tierd: %w", mf.failed)
	}
	if mf.unsynced {
		if err := mf.syncDir(mf.dir); err != nil {
			return fmt.Errorf("manifest: the folder fsync still fails: %w", err)
		}
		mf.unsynced = false
	}
	if int64(len(body)) < mf.spareSize {
		return mf.swap(body)
	}
	// Outgrown (or no spare): a new file, then a spare as large, if there is room.
	if err := mf.writeNew(body); err != nil {
		return err
	}
	_ = mf.makeSpare(mf.manSize)
	return nil
}

// swap commits body through the spare.
func (mf *File) swap(body []byte) error {
	f, err := mf.fs.OpenFile(mf.path(SpareName), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("manifest: %w", classify(err))
	}
	_, err = f.WriteAt(padded(body, mf.spareSize), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("manifest: write %s: %w", SpareName, classify(err))
	}
	return mf.install(mf.path(SpareName), mf.spareSize)
}

// install makes src, a complete manifest file of size bytes in the
// folder, the manifest (steps 2-5 above); the old manifest becomes the
// spare.
func (mf *File) install(src string, size int64) error {
	keep := mf.path(KeepName)
	if err := mf.fs.Remove(keep); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("manifest: remove a stale %s: %w", KeepName, classify(err))
	}
	if err := mf.fs.Link(mf.path(FileName), keep); err != nil {
		return fmt.Errorf("manifest: %w", classify(err))
	}
	if err := mf.fs.Rename(src, mf.path(FileName)); err != nil {
		_ = mf.fs.Remove(keep)
		return fmt.Errorf("manifest: %w", classify(err))
	}
	oldSize := mf.manSize
	mf.manSize, mf.spareSize = size, 0
	// Without a spare (the rename failed), the next Save writes a new
	// file and removes KeepName first.
	spared := mf.fs.Rename(keep, mf.path(SpareName)) == nil
	if spared {
		mf.spareSize = oldSize
	}
	if err := mf.syncDir(mf.dir); err != nil {
		return mf.undo(spared, oldSize, size, err)
	}
	return nil
}

// undo puts the old manifest back in place after the folder fsync that
// ended a commit failed (cause); the new one becomes the spare. It
// returns the error for Save.
func (mf *File) undo(spared bool, oldSize, newSize int64, cause error) error {
	keep, man, spare := mf.path(KeepName), mf.path(FileName), mf.path(SpareName)
	var err error
	if spared {
		// FileName is the new manifest, SpareName the old one.
		if err = mf.fs.Link(man, keep); err == nil {
			if err = mf.fs.Rename(spare, man); err == nil {
				mf.manSize, mf.spareSize = oldSize, 0
				if mf.fs.Rename(keep, spare) == nil {
					mf.spareSize = newSize
				}
			}
		}
	} else if err = mf.fs.Rename(keep, man); err == nil {
		// KeepName was the old manifest; the new one is gone.
		mf.manSize, mf.spareSize = oldSize, 0
	}
	if err != nil {
		mf.failed = fmt.Errorf("fsync of %s failed (%w) and undoing the commit failed: %w", mf.dir, cause, err)
		return fmt.Errorf("manifest: %w", mf.failed)
	}
	if mf.syncDir(mf.dir) != nil {
		mf.unsynced = true
	}
	return fmt.Errorf("manifest: fsync of %s after the commit failed, the previous manifest is back in place: %w", mf.dir, cause)
}

// writeNew replaces the manifest through a new temporary file with twice
// the capacity body needs (the first manifest: a plain atomic write).
func (mf *File) writeNew(body []byte) error {
	size := capacityFor(len(body))
	fill := func(w io.Writer) error {
		_, err := w.Write(padded(body, size))
		return err
	}
	if _, err := mf.fs.Lstat(mf.path(FileName)); errors.Is(err, os.ErrNotExist) {
		if err := fsutil.WriteAtomicFS(mf.fs, mf.path(FileName), fill); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		mf.manSize = size
		return nil
	}
	f, err := mf.fs.CreateTemp(mf.dir, FileName+".*"+fsutil.TempSuffix)
	if err != nil {
		return fmt.Errorf("manifest: %w", classify(err))
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = mf.install(tmp, size)
	} else {
		err = fmt.Errorf("manifest: write %s: %w", tmp, classify(err))
	}
	if err != nil {
		_ = mf.fs.Remove(tmp)
	}
	return err
}

// makeSpare (re)creates the spare with size bytes, every one written so
// that none needs allocating later.
func (mf *File) makeSpare(size int64) error {
	if err := fsutil.WriteAtomicFS(mf.fs, mf.path(SpareName), func(w io.Writer) error {
		_, err := w.Write(padded(nil, size))
		return err
	}); err != nil {
		return fmt.Errorf("manifest: spare: %w", err)
	}
	mf.spareSize = size
	return nil
}

// Close ends the use of the file; later saves fail.
func (mf *File) Close() error {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	mf.closed = true
	return nil
}

func capacityFor(n int) int64 {
	return max(MinCapacity, (2*int64(n)+1+pageSize-1)/pageSize*pageSize)
}

// padded returns body followed by spaces and a newline, size bytes in all
// (body must be shorter than size).
func padded(body []byte, size int64) []byte {
	b := bytes.Repeat([]byte{' '}, int(size))
	copy(b, body)
	b[size-1] = '\n'
	return b
}

// classify marks ENOSPC and EDQUOT with fsutil.ErrNoSpace.
func classify(err error) error {
	if fsutil.IsNoSpace(err) && !errors.Is(err, fsutil.ErrNoSpace) {
		return fmt.Errorf("%w: %w", fsutil.ErrNoSpace, err)
	}
	return err
}
