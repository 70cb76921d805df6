package fsutil

import (
	"io"
	"os"
)

// FS is the file-system operations tierd performs on its data folder.
// OS, the default, calls the operating system directly; a test layer
// (system/fsutil/powerloss) records what is durable to simulate a power
// loss. Paths are ordinary OS paths.
type FS interface {
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// CreateTemp creates a new file in dir like os.CreateTemp.
	CreateTemp(dir, pattern string) (File, error)
	// ReadFile reads a whole file like os.ReadFile.
	ReadFile(name string) ([]byte, error)
	// ReadDir lists a folder like os.ReadDir.
	ReadDir(name string) ([]os.DirEntry, error)
	// Stat describes a file like os.Stat.
	Stat(name string) (os.FileInfo, error)
	// Lstat describes a file like os.Lstat.
	Lstat(name string) (os.FileInfo, error)
	// Mkdir creates one folder like os.Mkdir.
	Mkdir(name string, perm os.FileMode) error
	// Rename renames a file like os.Rename.
	Rename(oldpath, newpath string) error
	// Link makes newname a hard link to oldname like os.Link.
	Link(oldname, newname string) error
	// Remove removes a file or an empty folder like os.Remove.
	Remove(name string) error
	// SyncDir fsyncs a folder so that the entries created, renamed and
	// removed in it are durable.
	SyncDir(dir string) error
}

// File is an open file of an FS; *os.File is one.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Seeker
	io.Closer
	// Name is the name the file was opened with.
	Name() string
	// Stat describes the open file.
	Stat() (os.FileInfo, error)
	// Sync makes the file's data durable (fsync).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
}

// OS is the FS of the operating system: every method is the os package's
// function of the same name (SyncDir opens the folder and fsyncs it).
var OS FS = osFS{}

// Or returns fsys, or OS when fsys is nil (the zero value of an option).
func Or(fsys FS) FS {
	if fsys == nil {
		return OS
	}
	return fsys
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil File
	}
	return f, nil
}

func (osFS) CreateTemp(dir, pattern string) (File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }
func (osFS) Stat(name string) (os.FileInfo, error)      { return os.Stat(name) }
func (osFS) Lstat(name string) (os.FileInfo, error)     { return os.Lstat(name) }
func (osFS) Mkdir(name string, perm os.FileMode) error  { return os.Mkdir(name, perm) }
func (osFS) Rename(oldpath, newpath string) error       { return os.Rename(oldpath, newpath) }
func (osFS) Link(oldname, newname string) error         { return os.Link(oldname, newname) }
func (osFS) Remove(name string) error                   { return os.Remove(name) }
func (osFS) SyncDir(dir string) error                   { return syncDirOS(dir) }
