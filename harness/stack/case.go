package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/artifacts"
	"github.com/tierchaos/tierchaos/harness/seed"
)

// Case is one test case on the shared stack: its seeded randomness, its
// artifact folder, and the guarantee that it starts and ends with no
// fault in effect.
type Case struct {
	// Stack is the shared stack.
	Stack *Stack
	// Seed is the case's seed (derived from -chaos.seed, the test name and
	// the iteration, or pinned by -chaos.case-seed).
	Seed *seed.Case
	// Rand is the case's main random stream; use Seed.Stream(name) for one
	// per goroutine.
	Rand *rand.Rand
	// ArtifactDir is the case's folder for the files that explain a
	// failure (artifacts.Dir): checker artifacts and, when the service
	// runs in a container, its whole log. It is removed at the end if
	// empty.
	ArtifactDir string
}

// NewCase prepares t on the shared stack: every fault left by an earlier
// case is cleared (ClearFaults), and the same clearing is registered to
// run when t ends, even when it fails. When t fails, the tail of the
// service's log is attached and, for a service container, the whole log
// is written to the case's artifact folder as <service>.log.
func (s *Stack) NewCase(t *testing.T) *Case {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := artifacts.Dir(t) // registered first: its cleanup runs last
	require.NoError(t, err)
	require.NoError(t, s.ClearFaults(ctx), "clear faults before the case")
	// Containers removed before the case are not part of its log.
	s.forgetRetiredLogs()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			s.keepLog(ctx, t, dir)
		}
		if err := s.ClearFaults(ctx); err != nil {
			t.Errorf("clear faults after the case: %v", err)
		}
	})
	// Under go test -count=N the same test names run again in this
	// process against this stack: seed.For gives each iteration its own
	// case seed.
	sc := seed.For(t)
	return &Case{Stack: s, Seed: sc, Rand: sc.Rand(), ArtifactDir: dir}
}

// keepLog attaches the tail of the service's log to t and, when it runs
// in a container, writes the case's whole log (CaseLog) to
// dir/<service>.log. (An in-process service logs into the test's own
// output.)
func (s *Stack) keepLog(ctx context.Context, t *testing.T, dir string) {
	t.Helper()
	name := s.svc.Name
	logs, err := s.ServiceLogs(ctx)
	if err != nil {
		t.Logf("%s log: %v", name, err)
	} else {
		t.Logf("%s log (last 4 KiB):\n%s", name, tail(logs, 4<<10))
	}
	if s.Mode != ModeContainer {
		return
	}
	logs, err = s.CaseLog(ctx)
	if err != nil {
		t.Logf("%s log: %v", name, err)
	}
	if logs == "" {
		return
	}
	file := filepath.Join(dir, name+".log")
	if err := os.WriteFile(file, []byte(logs), 0o644); err != nil {
		t.Logf("%s log: %v", name, err)
		return
	}
	t.Logf("%s log: %s", name, file)
}

// ClearFaults gives the next case the stack as it started: it runs
// Service.BeforeClear, removes every network and S3 fault, resets the
// fault layer's counters, starts MinIO if it is stopped
// (RestartableMinIO), removes FillData's fillers (the service's data on a
// tmpfs of the harness) and MinIO's (RestartableMinIO), makes sure the
// service runs unpaused and ready, restarts it with its start settings
// (Options.Env) when a case reconfigured it (Reconfigure), and runs
// Service.AfterClear. It goes on after an error and returns them all.
func (s *Stack) ClearFaults(ctx context.Context) error { return s.clearFaults(ctx, true) }

// ClearFaultsKeepSettings is ClearFaults without restarting the service
// to give it back its start settings: for a caller in the middle of a run
// that restores them itself later, so that no extra restart falls in its
// recovery window (the nemesis, harness/tierd/nemesis).
func (s *Stack) ClearFaultsKeepSettings(ctx context.Context) error { return s.clearFaults(ctx, false) }

func (s *Stack) clearFaults(ctx context.Context, restoreSettings bool) error {
	var errs []error
	if s.svc.BeforeClear != nil {
		errs = append(errs, s.svc.BeforeClear(ctx))
	}
	if s.Net != nil {
		if err := s.Net.Clear(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clear network faults: %w", err))
		}
	}
	if s.S3Faults != nil {
		if err := s.S3Faults.Reset(ctx); err != nil {
			errs = append(errs, fmt.Errorf("reset S3 faults: %w", err))
		}
	}
	if s.restartableMinIO {
		if running, err := s.minioRunning(ctx); err != nil {
			errs = append(errs, err)
		} else if !running {
			if err := s.StartMinIO(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if v, err := s.MinIOData(); err == nil {
			if _, err := v.Free(ctx); err != nil {
				errs = append(errs, fmt.Errorf("free MinIO's data: %w", err))
			}
		}
	}
	if s.DataTmpfs() == nil {
		if err := s.FreeData(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.current() != nil {
		if err := s.current().unpause(ctx); err != nil && !isNotPaused(err) {
			errs = append(errs, err)
		}
		if s.Ready(ctx) != nil { // down (ErrNotRunning), killed, or stopped
			if err := s.StartService(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if restoreSettings && !maps.Equal(s.settings, s.base) {
			s.log.Info("restoring the service's settings", "service", s.svc.Name, "had", s.settings, "start", s.base)
			if err := s.restartWith(ctx, maps.Clone(s.base)); err != nil {
				errs = append(errs, fmt.Errorf("restore %s's settings: %w", s.svc.Name, err))
			}
		}
		if s.svc.AfterClear != nil {
			errs = append(errs, s.svc.AfterClear(ctx))
		}
	}
	return errors.Join(errs...)
}

// isNotPaused reports whether an unpause failed only because the container
// was not paused.
func isNotPaused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not paused")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Core is the case's stack, so that the case itself is a stack faults
// are injected into (harness/fault's Stack, which scenario rows use).
func (c *Case) Core() *Stack { return c.Stack }

// CaseSeed is the case's seed (scenario.Seeded).
func (c *Case) CaseSeed() uint64 { return c.Seed.Seed }
