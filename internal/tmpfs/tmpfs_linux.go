package tmpfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment variables that turn a process into the helper child.
const (
	envDir  = "TIERCHAOS_TMPFS_HELPER_DIR"
	envSize = "TIERCHAOS_TMPFS_HELPER_SIZE"
)

// mountPoint is where the helper mounts the tmpfs in its own namespace:
// a directory every Linux system has, so that nothing is created in the
// caller's file system.
const mountPoint = "/tmp"

// tmpfsMagic is statfs's f_type of a tmpfs (TMPFS_MAGIC).
const tmpfsMagic = 0x01021994

// The helper prints readyLine once the tmpfs is mounted, or a line
// starting with errorPrefix that says why it could not mount it.
const (
	readyLine   = "ready"
	errorPrefix = "error: "
)

// helperStartTimeout bounds the wait for the helper's first line.
const helperStartTimeout = 30 * time.Second

// helperProc is the running helper child.
type helperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// New mounts a tmpfs of size ("1m", "256m", "1g", or bytes) in a helper
// child and returns it once it is mounted and writable. ModeAuto tries the
// mode the caller's privileges suit first, then the other. Errors wrap
// ErrBadSize, or ErrUnavailable with every reason when this machine allows
// no mode.
func New(ctx context.Context, size string, mode Mode) (*FS, error) {
	bytes, err := ParseSize(size)
	if err != nil {
		return nil, err
	}
	modes := []Mode{mode}
	if mode == ModeAuto {
		modes = []Mode{ModeUserNamespace, ModeMountNamespace}
		if os.Geteuid() == 0 {
			modes = []Mode{ModeMountNamespace, ModeUserNamespace}
		}
	}
	var errs []error
	for _, m := range modes {
		f, err := newFS(ctx, size, bytes, m)
		if err == nil {
			return f, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, ErrUnavailable) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// newFS starts the helper in mode and checks its tmpfs.
func newFS(ctx context.Context, size string, bytes int64, mode Mode) (*FS, error) {
	f := &FS{mode: mode, size: bytes}
	var err error
	if f.helper, err = startHelper(ctx, mountPoint, size, mode); err != nil {
		return nil, err
	}
	f.dir = filepath.Join("/proc", strconv.Itoa(f.helper.cmd.Process.Pid), "root", mountPoint)
	if err := f.verify(); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}

// startHelper runs the helper child and waits for its first line.
func startHelper(ctx context.Context, mountPoint, size string, mode Mode) (*helperProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%w: the running binary: %w", ErrUnavailable, err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envDir+"="+mountPoint, envSize+"="+size)
	cmd.Stderr = os.Stderr // an *os.File is passed on: no copying goroutine
	cmd.SysProcAttr = sysProcAttr(mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("tmpfs: helper: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("tmpfs: helper: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start a helper in a new %s: %w%s", ErrUnavailable, mode, err, hint(mode))
	}
	h := &helperProc{cmd: cmd, stdin: stdin}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	ctx, cancel := context.WithTimeout(ctx, helperStartTimeout)
	defer cancel()
	select {
	case line := <-lines:
		if line == readyLine {
			return h, nil
		}
		werr := h.stop()
		reason, found := strings.CutPrefix(line, errorPrefix)
		if !found {
			reason = fmt.Sprintf("the helper ended without saying why (%v)", werr)
		}
		return nil, fmt.Errorf("%w: the helper in a new %s: %s%s", ErrUnavailable, mode, reason, hint(mode))
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err := h.stop()
		<-lines
		return nil, errors.Join(fmt.Errorf("tmpfs: waiting for the helper: %w", ctx.Err()), err)
	}
}

// sysProcAttr returns the helper's namespaces for mode. The helper gets a
// process group of its own, so a Ctrl-C meant for the test does not end it
// before the test has let go of the tmpfs; it ends when its stdin does.
func sysProcAttr(mode Mode) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Setpgid: true}
	if mode == ModeUserNamespace {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	return attr
}

// hint says what usually forbids mode.
func hint(mode Mode) string {
	if mode == ModeMountNamespace {
		return " (a mount namespace of its own needs CAP_SYS_ADMIN, that is root)"
	}
	return " (user namespaces may be disabled or restricted here: see the sysctls user.max_user_namespaces, " +
		"kernel.unprivileged_userns_clone and kernel.apparmor_restrict_unprivileged_userns, or the seccomp profile of a container)"
}

// verify checks that Dir is a tmpfs of the asked size that this process
// can write.
func (f *FS) verify() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(f.dir, &st); err != nil {
		return fmt.Errorf("%w: reach the helper's tmpfs at %s: %w", ErrUnavailable, f.dir, err)
	}
	if st.Type != tmpfsMagic {
		return fmt.Errorf("%w: %s is not a tmpfs (file system type %#x)", ErrUnavailable, f.dir, st.Type)
	}
	if total := int64(st.Blocks) * st.Bsize; total < f.size-st.Bsize || total > f.size+st.Bsize {
		return fmt.Errorf("tmpfs: %s holds %d bytes, want %d", f.dir, total, f.size)
	}
	probe, err := os.CreateTemp(f.dir, ".probe-")
	if err != nil {
		return fmt.Errorf("%w: write to the helper's tmpfs: %w", ErrUnavailable, err)
	}
	return errors.Join(probe.Close(), os.Remove(probe.Name()))
}

// Close ends the helper, which frees the tmpfs and everything in it.
// Files this process still holds open keep their content until it closes
// them. Close is idempotent.
func (f *FS) Close() error {
	if f.helper == nil {
		return nil
	}
	err := f.helper.stop()
	f.helper = nil
	return err
}

// stop closes the helper's stdin (it exits at EOF) and reaps it; a helper
// that has not ended 10 s later is killed.
func (h *helperProc) stop() error {
	_ = h.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // killed by a timeout: nothing more to report
		}
		if err != nil && !errors.As(err, &ee) {
			return fmt.Errorf("tmpfs: helper: %w", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
		return errors.New("tmpfs: the helper did not end within 10 s of its stdin closing: killed it")
	}
}

func init() {
	if dir := os.Getenv(envDir); dir != "" {
		os.Exit(helper(dir, os.Getenv(envSize), os.Stdin, os.Stdout))
	}
}

// helper is the child's body: make every mount private to its namespace,
// mount the tmpfs on dir, say so, and hold it until stdin ends.
func helper(dir, size string, in io.Reader, out io.Writer) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(out, errorPrefix+format+"\n", args...)
		return 2
	}
	if _, err := ParseSize(size); err != nil {
		return fail("%v", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fail("make the namespace's mounts private: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0755"); err != nil {
		return fail("mount a %s tmpfs on %s: %v", size, dir, err)
	}
	fmt.Fprintln(out, readyLine)
	_, _ = io.Copy(io.Discard, in)
	return 0
}
