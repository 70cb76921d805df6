package harness

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/seed"
)

// Main runs a test package against one stack shared by its tests; call it
// from TestMain as os.Exit(harness.Main(m, opts, func(s *harness.Stack) { stack = s })).
// It also serves as the entry point of the run's cleanup watchdog (the test
// binary re-executes itself for that), so it must be the first thing
// TestMain does.
//
// Without a Docker engine the package fails when CI is set and is skipped
// (exit 0 with a message) otherwise.
func Main(m *testing.M, opts Options, use func(*Stack)) int {
	if runID := os.Getenv(cleanup.EnvWatchdog); runID != "" {
		return watchdog(runID)
	}
	runSeed := seed.Init(os.Stderr) // registers -chaos.seed and parses the flags
	if opts.Seed == 0 {
		opts.Seed = runSeed
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if testing.Short() {
		fmt.Fprintln(os.Stderr, "harness: -short: skipping the container suites")
		return 0
	}
	ctx := context.Background()
	if err := probeDocker(ctx); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "harness: FAIL: CI is set and no Docker engine answers: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "harness: SKIP: no Docker engine answers (%v); set CI=true to make this a failure\n", err)
		return 0
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
			opts.Logger.Warn("watchdog", "err", err)
		}
	}()
	stack, err := Start(ctx, run, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: FAIL: start stack: %v\n", err)
		return 1
	}
	use(stack)
	code := m.Run()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := stack.Close(cctx); err != nil {
		fmt.Fprintf(os.Stderr, "harness: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// watchdog is the body of the run's cleanup watchdog: it notes the test
// process (its parent) before that can die, waits for it to end or to stop
// the watchdog, and removes the run's Docker objects. When the test process
// died, it also removes the Docker objects of the other stacks that process
// started (runs of their own, started by tests) and of other dead runs of
// this origin. Then it unmounts and removes the host tmpfs folders of the
// run and of that process. It logs to its standard error, the log file
// cleanup.StartWatchdog gave it.
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
	n, err := removeHostDirs(log, func(o hostOwner) bool {
		return o.run == runID || (o.pid == ppid && pstart != "" && o.pidStart == pstart)
	})
	if err != nil {
		log.Error("removing host tmpfs folders", "err", err)
	}
	if n > 0 {
		log.Info("removed host tmpfs folders", "folders", n)
	}
	return 0
}

// parentDied reports whether the process pid that started at start has
// ended; it waits up to 5 s for a zombie to be reaped, because cleanup
// counts a zombie's runs as live.
func parentDied(pid int, start string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, now, err := procStat(pid)
		if err != nil || now != start {
			return true
		}
		if state != 'Z' || time.Now().After(deadline) {
			return state == 'Z'
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
