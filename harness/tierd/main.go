package tierd

import (
	"cmp"
	"context"
	"testing"

	"github.com/tierchaos/tierchaos/harness/stack"
)

// Main runs a test package against one tierd stack shared by its tests;
// call it from TestMain as os.Exit(tierd.Main(m, opts, func(s *tierd.Stack) { stack = s })).
// It is stack.Run with Start: the run's cleanup watchdog (so it must be
// the first thing TestMain does), the skip or failure without a Docker
// engine or with -short (a failure when CI is set), the teardown, and,
// with tierd in the test process, the goroutine leak check.
func Main(m *testing.M, opts Options, use func(*Stack)) int {
	return stack.Run(m, opts.Logger, func(ctx context.Context, env stack.MainEnv) (*stack.Stack, error) {
		opts.Logger, opts.Seed = env.Logger, cmp.Or(opts.Seed, env.Seed)
		s, err := Start(ctx, env.Run, opts)
		if err != nil {
			return nil, err
		}
		use(s)
		return s.Stack, nil
	})
}
