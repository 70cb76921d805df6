// Package tmpfs gives any user a size-limited tmpfs, for tests that need a
// real ENOSPC, without mounting anything in the caller's mount namespace.
//
// On Linux, New re-executes the running binary as a helper child in a mount
// namespace of its own: for root a mount namespace alone, for any other
// user also a user namespace of its own that maps the caller's uid and gid
// to 0, which needs no privilege where user namespaces are enabled. The
// child mounts the tmpfs and waits; the caller,
// same uid, reaches the tmpfs through /proc/<child>/root/tmp, which FS.Dir
// returns. The mount exists only in the child's namespace, where it covers
// /tmp: nothing is created or mounted in the caller's file system, and when
// the child ends (Close, or the caller's death closing the child's stdin)
// the kernel frees the tmpfs, so nothing is ever left behind.
//
// The helper's entry point runs from this package's init function when the
// helper's environment variables are set, so every binary that links this
// package (test binaries included) serves as its own helper without a
// TestMain. On other systems New answers ErrUnavailable.
package tmpfs

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Errors. ErrUnavailable wraps every reason New cannot make a tmpfs on
// this machine (user namespaces disabled for a non-root user, no right to
// mount in them, a system other than Linux); ErrBadSize is a size New
// cannot parse.
var (
	ErrUnavailable = errors.New("tmpfs: no size-limited tmpfs can be made here")
	ErrBadSize     = errors.New("tmpfs: bad size")
)

// Mode is how the helper gets the right to mount.
type Mode int

// Modes. ModeAuto tries ModeMountNamespace first for root and
// ModeUserNamespace first for everyone else, then the other one.
const (
	ModeAuto Mode = iota
	// ModeUserNamespace: a new user namespace (the caller's uid and gid
	// mapped to 0) owning a new mount namespace; needs no privilege.
	ModeUserNamespace
	// ModeMountNamespace: a new mount namespace only; needs CAP_SYS_ADMIN
	// (root), and works where user namespaces are disabled.
	ModeMountNamespace
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case ModeUserNamespace:
		return "user namespace"
	case ModeMountNamespace:
		return "mount namespace"
	default:
		return "auto"
	}
}

var sizeRE = regexp.MustCompile(`^[1-9][0-9]*[kmgKMG]?$`)

// ParseSize returns the bytes of a tmpfs size: a positive number of bytes,
// optionally followed by k, m or g ("65536", "4m", "1g"). Errors wrap
// ErrBadSize.
func ParseSize(size string) (int64, error) {
	if !sizeRE.MatchString(size) {
		return 0, fmt.Errorf("%w %q: want a positive number of bytes, optionally followed by k, m or g", ErrBadSize, size)
	}
	mult := int64(1)
	switch strings.ToLower(size[len(size)-1:]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	n, err := strconv.ParseInt(strings.TrimRight(size, "kmgKMG"), 10, 64)
	if err != nil || n > (1<<50)/mult {
		return 0, fmt.Errorf("%w %q: too large", ErrBadSize, size)
	}
	return n * mult, nil
}

// FS is a tmpfs that a helper child process holds mounted.
type FS struct {
	dir    string // the tmpfs as this process reaches it
	mode   Mode
	size   int64
	helper *helperProc
}

// Dir returns the tmpfs's path as this process reaches it
// (/proc/<helper>/root/tmp). It exists until Close.
func (f *FS) Dir() string { return f.dir }

// Mode returns how the helper got the right to mount.
func (f *FS) Mode() Mode { return f.mode }

// Size returns the tmpfs's size in bytes.
func (f *FS) Size() int64 { return f.size }
