package cleanup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/tierchaos/tierchaos/harness/dockerenv"
)

// EnvWatchdog, when set in a process's environment, makes
// RunWatchdogIfRequested turn that process into the watchdog of the run
// whose id it holds.
const EnvWatchdog = "TIERCHAOS_WATCHDOG_RUN"

// Watchdog is a child process that removes a run's Docker objects when the
// test process that owns them dies for any reason (a test panic, a -timeout
// kill, Ctrl-C, SIGKILL). It is the harness's replacement for Ryuk: it
// watches a pipe from its parent and cleans up when the pipe closes.
//
// The watchdog writes what it does and every failure to a log file
// (LogPath, in the temporary folder). Stop copies a non-empty log to the
// test process's standard error and removes it; when the test process
// died instead, the file stays for the user to read.
type Watchdog struct {
	cmd     *exec.Cmd
	pipe    io.WriteCloser
	logPath string
	relay   io.Writer // where Stop copies the log: os.Stderr
}

// WatchdogLogPath is where the watchdog of run id logs.
func WatchdogLogPath(runID string) string {
	return filepath.Join(os.TempDir(), "tierchaos-watchdog-"+runID+".log")
}

// StartWatchdog re-executes the current binary as the watchdog of run. The
// child gets its own process group so that a Ctrl-C sent to the terminal's
// foreground group does not kill it before it has cleaned up.
func StartWatchdog(run Run) (*Watchdog, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cleanup: watchdog: %w", err)
	}
	logPath := WatchdogLogPath(run.ID)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cleanup: watchdog log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor once started
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvWatchdog+"="+run.ID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("cleanup: watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("cleanup: watchdog: %w", err), os.Remove(logPath))
	}
	return &Watchdog{cmd: cmd, pipe: pipe, logPath: logPath, relay: os.Stderr}, nil
}

// LogPath is the watchdog's log file.
func (w *Watchdog) LogPath() string { return w.logPath }

// Stop closes the pipe, which makes the watchdog remove whatever is left of
// the run, and waits for it to finish. What the watchdog logged is copied
// to standard error, then its log file is removed.
func (w *Watchdog) Stop() error {
	_ = w.pipe.Close()
	werr := w.cmd.Wait()
	b, rerr := os.ReadFile(w.logPath)
	if len(bytes.TrimSpace(b)) > 0 {
		fmt.Fprintf(w.relay, "tierchaos watchdog log (%s):\n%s", w.logPath, b)
	}
	if rerr == nil {
		rerr = os.Remove(w.logPath)
	}
	if werr != nil {
		return fmt.Errorf("cleanup: watchdog: %w", werr)
	}
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("cleanup: watchdog log: %w", rerr)
	}
	return nil
}

// WatchdogLogger is the watchdog process's logger: text lines on its
// standard error, which is its log file.
func WatchdogLogger(runID string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).
		With("component", "tierchaos-watchdog", "run", runID)
}

// RunWatchdogIfRequested returns false at once unless EnvWatchdog is set.
// When it is set, it blocks until standard input closes (the parent died or
// stopped the watchdog), removes the run's objects, and returns true; the
// caller then exits. It reaches Docker the way the harness does
// (dockerenv.Client: DOCKER_HOST, Docker contexts, Testcontainers'
// settings) and logs to its standard error (see Watchdog).
func RunWatchdogIfRequested() bool {
	runID := os.Getenv(EnvWatchdog)
	if runID == "" {
		return false
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	// Testcontainers' banner on every client would fill the log that Stop
	// shows; this process logs only what it does.
	tclog.SetDefault(tclog.NewNoopLogger())
	log := WatchdogLogger(runID)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := dockerenv.Client(ctx)
	if err != nil {
		log.Error("no Docker engine: the run's containers, networks and volumes are left behind", "err", err)
		return true
	}
	defer cli.Close()
	rep, err := RemoveRun(ctx, cli, runID)
	if err != nil {
		log.Error("removing the run's objects", "err", err)
	}
	if rep.Removed() > 0 {
		log.Info("removed the run's objects", "containers", rep.Containers, "networks", rep.Networks, "volumes", rep.Volumes)
	}
	return true
}
