// Package datavol reads and fills a data directory wherever it is: Dir
// works on a directory of this machine (tierd in the test process), and
// Client reaches one that only the Docker engine mounts (a volume of
// tierd's or MinIO's container) through the data sidecar, a tiny HTTP
// server (cmd/datavold) that runs in a container of its own with those
// volumes mounted. Both implement Volume: a listing of the regular files
// with their sizes, one file's content, the file system's size and free
// space, filling it to ENOSPC and freeing that again, and clearing it.
//
// The sidecar's API (JSON unless noted; an error is {"code", "message"}
// with a stable code, see Code):
//
//	GET  /healthz                          200 "ok"
//	GET  /volumes/{name}/files             {"files": {"wal/wal-1.log": 4096, ...}}
//	GET  /volumes/{name}/file?path=P       the file's bytes (application/octet-stream)
//	GET  /volumes/{name}/statfs            {"total": B, "free": B, "tmpfs": bool}
//	POST /volumes/{name}/fill              {"bytes": B}: filled to ENOSPC (tmpfs only)
//	POST /volumes/{name}/free              {"removed": N}: the filler files removed
//	POST /volumes/{name}/clear             {}: everything in the volume removed
package datavol

import (
	"context"
	"errors"
	"io/fs"
)

// FillerPrefix names the files Fill writes in the root of a volume: a
// dot-file that tierd never reads, sweeps or counts (it removes only *.tmp
// files anywhere, unreferenced files under local/ and WAL segments under
// wal/).
const FillerPrefix = ".tierchaos-fill-"

// Code is a stable error code of the sidecar's API and of Dir.
type Code string

// Error codes.
const (
	// CodeBadPath: a file path that is empty, absolute, or leaves the
	// volume (".." elements), or a malformed volume name.
	CodeBadPath Code = "bad_path"
	// CodeNotFound: no such file, or an unknown route.
	CodeNotFound Code = "not_found"
	// CodeUnknownVolume: the sidecar serves no volume of that name.
	CodeUnknownVolume Code = "unknown_volume"
	// CodeNotTmpfs: Fill refused a file system that is not a tmpfs (it
	// would fill a real disk).
	CodeNotTmpfs Code = "not_tmpfs"
	// CodeMethodNotAllowed: a route called with the wrong HTTP method.
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeIO: the file system failed.
	CodeIO Code = "io_error"
)

// Sentinel errors, one per code that a caller may want to test for; a
// not_found error also matches fs.ErrNotExist.
var (
	ErrBadPath       = errors.New("datavol: bad path")
	ErrUnknownVolume = errors.New("datavol: unknown volume")
	ErrNotTmpfs      = errors.New("datavol: not a tmpfs")
)

// Error is a failed operation, with its stable code.
type Error struct {
	Code Code
	// Op is the operation ("list", "read", "statfs", "fill", "free",
	// "clear") and Msg what went wrong.
	Op, Msg string
	// Err is the cause, when known.
	Err error
}

// Error describes the failure.
func (e *Error) Error() string {
	return "datavol: " + e.Op + ": " + e.Msg + " (" + string(e.Code) + ")"
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's code.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeBadPath:
		return target == ErrBadPath
	case CodeNotFound:
		return target == fs.ErrNotExist
	case CodeUnknownVolume:
		return target == ErrUnknownVolume
	case CodeNotTmpfs:
		return target == ErrNotTmpfs
	}
	return false
}

// CodeOf returns the code of err ("" when it carries none).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Listing maps the slash-separated path of every regular file under a
// volume's root to its size in bytes.
type Listing map[string]int64

// Space is a file system's size and free space in bytes (free: what an
// unprivileged writer may still use).
type Space struct {
	Total int64 `json:"total"`
	Free  int64 `json:"free"`
	// Tmpfs: the file system is a tmpfs (Fill fills only those).
	Tmpfs bool `json:"tmpfs"`
}

// Volume is a data directory a test may read and fill.
type Volume interface {
	// List returns every regular file under the root with its size.
	List(ctx context.Context) (Listing, error)
	// ReadFile returns the content of the file at a slash-separated path
	// relative to the root.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Statfs returns the size and free space of the file system.
	Statfs(ctx context.Context) (Space, error)
	// Fill writes a filler file (FillerPrefix) in the root until the file
	// system answers ENOSPC and returns the bytes written; it refuses a
	// file system that is not a tmpfs (ErrNotTmpfs).
	Fill(ctx context.Context) (int64, error)
	// Free removes Fill's filler files and returns how many it removed.
	Free(ctx context.Context) (int, error)
	// Clear removes everything under the root (the root stays).
	Clear(ctx context.Context) error
}
