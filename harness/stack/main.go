package stack

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/seed"
)

// Main runs a test package against one stack shared by its tests; call it
// from TestMain as os.Exit(stack.Main(m, opts, func(s *stack.Stack) { env = s })).
// It also serves as the entry point of the run's cleanup watchdog (the test
// binary re-executes itself for that), so it must be the first thing
// TestMain does. Options.Seed defaults to the run seed (-chaos.seed).
//
// Without a Docker engine, or with -short, the package fails when CI is set
// and is skipped otherwise (exit 0). A skip prints its reason and the
// testing package's "no tests to run" warning, so that go test marks the
// package "ok ... [no tests to run]" even where it hides a passing
// package's output (package list mode without -v); when that output is
// hidden and a terminal is at hand, the reason is also written to it.
// With the service in the test process, the package fails when a
// goroutine started by its tests or the stack still runs after teardown.
func Main(m *testing.M, opts Options, use func(*Stack)) int {
	return Run(m, opts.Logger, func(ctx context.Context, env MainEnv) (*Stack, error) {
		opts.Logger, opts.Seed = env.Logger, cmp.Or(opts.Seed, env.Seed)
		s, err := Start(ctx, env.Run, opts)
		if err == nil {
			use(s)
		}
		return s, err
	})
}

// MainEnv is what Run hands its start function.
type MainEnv struct {
	// Run owns the stack's Docker objects; its watchdog runs.
	Run cleanup.Run
	// Seed is the run seed (-chaos.seed).
	Seed uint64
	// Logger is the logger Run was given, or one to stderr at info level.
	Logger *slog.Logger
}

// Run is Main for an adapter whose stack wraps this package's (as package
// harness wraps it for tierd): start starts the stack and hands it to the
// package's tests; Run does everything around it (watchdog, skips, leak
// check, teardown with Stack.Close).
func Run(m *testing.M, logger *slog.Logger, start func(ctx context.Context, env MainEnv) (*Stack, error)) int {
	if runID := os.Getenv(cleanup.EnvWatchdog); runID != "" {
		return watchdog(runID)
	}
	runSeed := seed.Init(os.Stderr) // registers -chaos.seed and parses the flags
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ci := os.Getenv("CI") != ""
	if testing.Short() {
		if ci {
			fmt.Fprintln(os.Stderr, "harness: FAIL: CI is set and -short would skip the container suites")
			return 1
		}
		return skip("-short skips the container suites")
	}
	ctx := context.Background()
	if err := probeDocker(ctx); err != nil {
		if ci {
			fmt.Fprintf(os.Stderr, "harness: FAIL: CI is set and no Docker engine answers: %v\n", err)
			return 1
		}
		return skip(fmt.Sprintf("no Docker engine answers (%v); set CI=true to make this a failure", err))
	}
	run, err := cleanup.NewRun()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 1
	}
	wd, err := cleanup.StartWatchdog(run)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "harness: run %s: the cleanup watchdog logs to %s\n", run.ID, wd.LogPath())
	defer func() {
		if err := wd.Stop(); err != nil {
			logger.Warn("watchdog", "err", err)
		}
	}()
	// Goroutines running before the stack: whatever runs beyond them once
	// the tests are done and the stack is closed leaked.
	before := goleak.IgnoreCurrent()
	stack, err := start(ctx, MainEnv{Run: run, Seed: runSeed, Logger: logger})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: FAIL: start stack: %v\n", err)
		return 1
	}
	code := m.Run()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := stack.Close(cctx); err != nil {
		fmt.Fprintf(os.Stderr, "harness: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	// With the service in the test process its goroutines live here too:
	// after the tests and the teardown none of them, nor any of the
	// tests', may be left.
	if stack.Mode == ModeInProcess {
		if err := findLeaks(before); err != nil {
			fmt.Fprintf(os.Stderr, "harness: FAIL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// watchdog is the body of the run's cleanup watchdog: it notes the test
// process (its parent) before that can die, waits for it to end or to stop
// the watchdog, and removes the run's Docker objects. When the test process
// died, it also removes the Docker objects of the other stacks that process
// started (runs of their own, started by tests) and of other dead runs of
// this origin. Nothing is mounted on the host: tmpfs data lives in Docker
// volumes (removed with the run's objects) or in a helper child's mount
// namespace, which ends with the test process. It logs to its standard
// error, the log file cleanup.StartWatchdog gave it.
func watchdog(runID string) int {
	ppid := os.Getppid()
	pstart, _ := procStart(ppid)
	if !cleanup.RunWatchdogIfRequested() {
		return 0
	}
	log := cleanup.WatchdogLogger(runID)
	if parentDied(ppid, pstart) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cli, err := dockerenv.Client(ctx); err != nil {
			log.Error("no Docker engine: leftovers of other stacks stay", "err", err)
		} else {
			rep, err := cleanup.RemoveDead(ctx, cli)
			if err != nil {
				log.Error("removing the objects of other stacks", "err", err)
			}
			if rep.Removed() > 0 {
				log.Info("removed the objects of other stacks", "containers", rep.Containers, "networks", rep.Networks, "volumes", rep.Volumes)
			}
			_ = cli.Close()
		}
	}
	return 0
}

// parentDied reports whether the process pid that started at start has
// ended; it waits up to 5 s for a zombie to be reaped, because cleanup
// counts a zombie's runs as live.
func parentDied(pid int, start string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		zombie, now, err := procStat(pid)
		if err != nil || now != start {
			return true
		}
		if !zombie || time.Now().After(deadline) {
			return zombie
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func probeDocker(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cli, override, err := dockerenv.Open(ctx)
	if err != nil {
		return err
	}
	if override.Set {
		fmt.Fprintf(os.Stderr, "harness: %s=%s (%s)\n", dockerenv.EnvHostOverride, override.Value, override.Reason)
	}
	return cli.Close()
}

// noTestsWarning is the line the testing package prints when a test binary
// ran no test; go test then adds "[no tests to run]" to the package's ok
// line.
const noTestsWarning = "testing: warning: no tests to run"

// skip reports that the package's container tests do not run, and why, and
// returns the exit code 0. go test shows a passing package's output only
// with -v, -json, or in local directory mode; otherwise only its ok line,
// which the warning marks "[no tests to run]". When the output is hidden
// that way (stdout is not a terminal, -v is off) and the process has a
// controlling terminal, the reason is also written there.
func skip(reason string) int {
	pkg := seed.Environment().Package
	fmt.Fprintf(os.Stdout, "harness: SKIP %s: %s\n%s\n", pkg, reason, noTestsWarning)
	if outputShown() {
		return 0
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintf(tty, "harness: SKIP %s: %s\n", pkg, reason)
		_ = tty.Close()
	}
	return 0
}

// outputShown reports whether the test binary's output reaches the user as
// it is: -test.v is on (also under -json), or stdout is a terminal (go test
// in local directory mode).
func outputShown() bool {
	if f := flag.Lookup("test.v"); f != nil && f.Value.String() != "false" {
		return true
	}
	st, err := os.Stdout.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
