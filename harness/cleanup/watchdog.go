package cleanup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// EnvWatchdog, when set in a process's environment, makes
// RunWatchdogIfRequested turn that process into the watchdog of the run
// whose id it holds.
const EnvWatchdog = "TIERCHAOS_WATCHDOG_RUN"

// Watchdog is a child process that removes a run's Docker objects when the
// test process that owns them dies for any reason (a test panic, a -timeout
// kill, Ctrl-C, SIGKILL). It is the harness's replacement for Ryuk: it
// watches a pipe from its parent and cleans up when the pipe closes.
type Watchdog struct {
	cmd  *exec.Cmd
	pipe io.WriteCloser
}

// StartWatchdog re-executes the current binary as the watchdog of run. The
// child gets its own process group so that a Ctrl-C sent to the terminal's
// foreground group does not kill it before it has cleaned up.
func StartWatchdog(run Run) (*Watchdog, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cleanup: watchdog: %w", err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvWatchdog+"="+run.ID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("cleanup: watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cleanup: watchdog: %w", err)
	}
	return &Watchdog{cmd: cmd, pipe: pipe}, nil
}

// Stop closes the pipe, which makes the watchdog remove whatever is left of
// the run, and waits for it to finish.
func (w *Watchdog) Stop() error {
	_ = w.pipe.Close()
	if err := w.cmd.Wait(); err != nil {
		return fmt.Errorf("cleanup: watchdog: %w", err)
	}
	return nil
}

// RunWatchdogIfRequested returns false at once unless EnvWatchdog is set.
// When it is set, it blocks until standard input closes (the parent died or
// stopped the watchdog), removes the run's objects, and returns true; the
// caller then exits.
func RunWatchdogIfRequested() bool {
	runID := os.Getenv(EnvWatchdog)
	if runID == "" {
		return false
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tierchaos watchdog: %v\n", err)
		return true
	}
	defer cli.Close()
	if rep, err := RemoveRun(ctx, cli, runID); err != nil {
		fmt.Fprintf(os.Stderr, "tierchaos watchdog: run %s: %v\n", runID, err)
	} else if rep.Containers+rep.Networks+rep.Volumes > 0 {
		fmt.Fprintf(os.Stderr, "tierchaos watchdog: run %s: removed %d containers, %d networks, %d volumes\n",
			runID, rep.Containers, rep.Networks, rep.Volumes)
	}
	return true
}
