package datavol

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// Dir is a Volume on a directory of this machine: its root.
type Dir string

var _ Volume = Dir("")

func ioError(op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &Error{Code: CodeNotFound, Op: op, Msg: err.Error(), Err: err}
	}
	return &Error{Code: CodeIO, Op: op, Msg: err.Error(), Err: err}
}

// open opens the root; every access goes through it, so no path (nor a
// symbolic link) leads out of the directory.
func (d Dir) open(op string) (*os.Root, error) {
	r, err := os.OpenRoot(string(d))
	if err != nil {
		return nil, ioError(op, err)
	}
	return r, nil
}

// List returns every regular file under the root with its size. Files
// removed while it walks are left out.
func (d Dir) List(ctx context.Context) (Listing, error) {
	r, err := d.open("list")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	l := Listing{}
	err = fs.WalkDir(r.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != "." {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		l[p] = info.Size()
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("datavol: list: %w", err)
		}
		return nil, ioError("list", err)
	}
	return l, nil
}

// checkPath validates a slash-separated path relative to the root.
func checkPath(op, p string) error {
	if p == "" || p == "." || !fs.ValidPath(p) {
		return &Error{Code: CodeBadPath, Op: op, Msg: fmt.Sprintf("path %q: want a slash-separated path inside the volume, without . or .. elements", p)}
	}
	return nil
}

// ReadFile returns the content of the file at path.
func (d Dir) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := checkPath("read", path); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("datavol: read: %w", err)
	}
	r, err := d.open("read")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(path)
	if err != nil {
		return nil, ioError("read", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, ioError("read", err)
	}
	return b, nil
}

// Statfs returns the size and free space of the root's file system.
func (d Dir) Statfs(ctx context.Context) (Space, error) {
	if err := ctx.Err(); err != nil {
		return Space{}, fmt.Errorf("datavol: statfs: %w", err)
	}
	sp, err := statfs(string(d))
	if err != nil {
		return Space{}, ioError("statfs", err)
	}
	return sp, nil
}

// Fill writes a filler file in the root until ENOSPC, in 1 MiB, then 4 KiB,
// then 1-byte writes, and returns the bytes written (0 when not even a new
// file fits). It refuses a file system that is not a tmpfs.
func (d Dir) Fill(ctx context.Context) (int64, error) {
	sp, err := d.Statfs(ctx)
	if err != nil {
		return 0, err
	}
	if !sp.Tmpfs {
		return 0, &Error{Code: CodeNotTmpfs, Op: "fill", Msg: "refusing to fill a file system that is not a tmpfs", Err: ErrNotTmpfs}
	}
	r, err := d.open("fill")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	f, name, err := createFiller(r)
	if isNoSpace(err) {
		return 0, nil // already full: not even an inode left
	}
	if err != nil {
		return 0, ioError("fill", err)
	}
	defer f.Close()
	var total int64
	buf := make([]byte, 1<<20)
	for _, chunk := range []int{1 << 20, 4096, 1} {
		for {
			if err := ctx.Err(); err != nil {
				return total, fmt.Errorf("datavol: fill %s: %w", name, err)
			}
			n, err := f.Write(buf[:chunk])
			total += int64(n)
			if err == nil {
				continue
			}
			if isNoSpace(err) {
				break
			}
			return total, ioError("fill", err)
		}
	}
	if err := f.Close(); err != nil && !isNoSpace(err) {
		return total, ioError("fill", err)
	}
	return total, nil
}

// createFiller creates a new filler file in the root.
func createFiller(r *os.Root) (*os.File, string, error) {
	name := FillerPrefix + strings.ToLower(rand.Text())
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	return f, name, err
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Free removes the filler files in the root.
func (d Dir) Free(ctx context.Context) (int, error) {
	r, err := d.open("free")
	if err != nil {
		return 0, err
	}
	defer r.Close()
	ents, err := fs.ReadDir(r.FS(), ".")
	if err != nil {
		return 0, ioError("free", err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), FillerPrefix) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("datavol: free: %w", err)
		}
		if err := r.Remove(e.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, ioError("free", err)
		}
		n++
	}
	return n, nil
}

// Clear removes everything under the root; the root itself stays.
func (d Dir) Clear(ctx context.Context) error {
	r, err := d.open("clear")
	if err != nil {
		return err
	}
	defer r.Close()
	ents, err := fs.ReadDir(r.FS(), ".")
	if err != nil {
		return ioError("clear", err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("datavol: clear: %w", err)
		}
		if err := r.RemoveAll(e.Name()); err != nil {
			return ioError("clear", err)
		}
	}
	return nil
}
