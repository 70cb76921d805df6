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
	if cleanup.RunWatchdogIfRequested() {
		return 0
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

func probeDocker(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cli, err := dockerenv.Client(ctx)
	if err != nil {
		return err
	}
	return cli.Close()
}
