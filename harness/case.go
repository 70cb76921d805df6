package harness

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
	"github.com/tierchaos/tierchaos/harness/check"
	"github.com/tierchaos/tierchaos/harness/history"
	"github.com/tierchaos/tierchaos/harness/seed"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
)

// Case is one scenario case on the shared stack: its seeded randomness, a
// history recorder with a recording tierd client, and the guarantee that it
// starts and ends with no fault in effect.
type Case struct {
	// Stack is the shared stack.
	Stack *Stack
	// Seed is the case's seed (derived from -chaos.seed, the test name and
	// the iteration, or pinned by -chaos.case-seed).
	Seed *seed.Case
	// Rand is the case's main random stream; use Seed.Stream(name) for one
	// per goroutine.
	Rand *rand.Rand
	// Rec records every operation made through Client.
	Rec *history.Recorder
	// Client is tierd's client, recording into Rec, over API.
	Client *history.RecordingClient
	// API is the API Client speaks: APIREST unless WithAPI chose another.
	API API
	// ArtifactDir is the case's folder for the files that explain a
	// failure (artifacts.Dir): Check's checker artifacts and, when tierd
	// runs in a container, its whole log. It is removed at the end if
	// empty.
	ArtifactDir string
}

// CaseOption customises NewCase.
type CaseOption func(*caseOptions)

type caseOptions struct {
	api API
}

// WithAPI makes the case's Client speak api: over APIGRPC it records gRPC
// calls through a connection of its own (DialGRPC), closed when the case
// ends. The stack's own clients (Stack.Tierd, the clearing of faults) stay
// on REST.
func WithAPI(api API) CaseOption {
	return func(o *caseOptions) { o.api = api }
}

// NewCase prepares t on the shared stack: every fault left by an earlier
// case is cleared (Toxiproxy toxics removed and the proxy enabled, S3 fault
// rules and counters reset, tierd running and not paused), and the same
// clearing is registered to run when t ends, even when it fails. When t
// fails, the tail of tierd's log is attached and, for a tierd container,
// the whole log is written to the case's artifact folder.
func (s *Stack) NewCase(t *testing.T, opts ...CaseOption) *Case {
	t.Helper()
	o := caseOptions{api: APIREST}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := ParseAPI(string(o.api)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := artifacts.Dir(t) // registered first: its cleanup runs last
	require.NoError(t, err)
	require.NoError(t, s.ClearFaults(ctx), "clear faults before the case")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			s.keepTierdLog(ctx, t, dir)
		}
		if err := s.ClearFaults(ctx); err != nil {
			t.Errorf("clear faults after the case: %v", err)
		}
	})
	// Under go test -count=N the same test names run again in this
	// process against this stack: seed.For gives each iteration its own
	// case seed (and so its own collection names).
	sc := seed.For(t)
	rec := history.NewRecorder()
	tc, release, err := s.APIClient(o.api)
	require.NoError(t, err, "tierd's %s client", o.api)
	t.Cleanup(func() {
		if err := release(); err != nil {
			t.Errorf("close tierd's %s client: %v", o.api, err)
		}
	})
	return &Case{Stack: s, Seed: sc, Rand: sc.Rand(), Rec: rec, Client: history.NewRecordingClient(tc, rec), API: o.api, ArtifactDir: dir}
}

// keepTierdLog attaches the tail of tierd's log to t and, when tierd runs
// in a container, writes the whole log to dir/tierd.log. (An in-process
// tierd logs into the test's own output.)
func (s *Stack) keepTierdLog(ctx context.Context, t *testing.T, dir string) {
	t.Helper()
	logs, err := s.TierdLogs(ctx)
	if err != nil {
		t.Logf("tierd log: %v", err)
		return
	}
	t.Logf("tierd log (last 4 KiB):\n%s", tail(logs, 4<<10))
	if _, inContainer := s.currentSUT().(*containerSUT); !inContainer {
		return
	}
	file := filepath.Join(dir, "tierd.log")
	if err := os.WriteFile(file, []byte(logs), 0o644); err != nil {
		t.Logf("tierd log: %v", err)
		return
	}
	t.Logf("tierd log: %s", file)
}

// Check reads the final state of the named collections through the
// recording client and runs every checker (no acknowledged write lost,
// searches equal the oracle, tier histories linearizable) on the case's
// history. It marks t failed with a readable report naming the artifact
// files, and reports whether the history passed.
func (c *Case) Check(ctx context.Context, t *testing.T, cfg check.Config, names ...string) bool {
	t.Helper()
	final, err := c.Client.ReadFinal(ctx, names...)
	if err != nil {
		t.Errorf("read final state: %v", err)
		return false
	}
	if cfg.ArtifactDir == "" {
		cfg.ArtifactDir = c.ArtifactDir
	}
	return check.All(t, c.Rec.Ops(), final, cfg)
}

// ClearFaults gives the next case the stack as it started: it removes
// every network and S3 fault, resets the fault layer's counters, disarms a
// defect, starts MinIO if it is stopped (RestartableMinIO), removes
// FillData's fillers (tierd's data on a tmpfs of the harness) and
// MinIO's (RestartableMinIO), makes sure tierd runs unpaused, restarts it
// with the settings it started with (Options.TierdEnv) when a case
// reconfigured it (ReconfigureTierd), and sets tierd's background worker
// running, or paused when those settings start it paused
// (TIERD_WORKER_PAUSED), whatever a case did to it (POST
// /v1/admin/worker). It goes on after an error and returns them all.
func (s *Stack) ClearFaults(ctx context.Context) error { return s.clearFaults(ctx, true) }

// ClearFaultsKeepSettings is ClearFaults without restarting tierd to give
// it back its start settings: for a caller in the middle of a run that
// restores them itself later, so that no extra restart falls in its
// recovery window (the nemesis, harness/nemesis).
func (s *Stack) ClearFaultsKeepSettings(ctx context.Context) error { return s.clearFaults(ctx, false) }

func (s *Stack) clearFaults(ctx context.Context, restoreSettings bool) error {
	var errs []error
	if s.defects != nil {
		s.defects.disarm()
	}
	s.disarmPowerCut()
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
	if s.currentSUT() != nil {
		if err := s.currentSUT().unpause(ctx); err != nil && !isNotPaused(err) {
			errs = append(errs, err)
		}
		if _, _, err := s.currentSUT().addrs(); errors.Is(err, ErrNotRunning) || s.Tierd.Readyz(ctx) != nil {
			if err := s.StartTierd(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if restoreSettings && !maps.Equal(s.tierdExtra, s.tierdBase) {
			s.log.Info("restoring tierd's settings", "had", s.tierdExtra, "start", s.tierdBase)
			if err := s.restartTierdWith(ctx, maps.Clone(s.tierdBase)); err != nil {
				errs = append(errs, fmt.Errorf("restore tierd's settings: %w", err))
			}
		}
		if err := s.restoreWorker(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// States of tierd's worker in api.WorkerState.
const (
	workerRunning = "running"
	workerPaused  = "paused"
)

// restoreWorker sets tierd's background worker to the state its settings
// give it (after ClearFaults, its start settings): running, or paused with
// TIERD_WORKER_PAUSED.
func (s *Stack) restoreWorker(ctx context.Context) error {
	cfg, err := config.FromEnv(config.Default(), func(k string) string { return s.tierdExtra[k] })
	if err != nil {
		return fmt.Errorf("restore tierd's worker: tierd's settings: %w", err)
	}
	st, err := s.Tierd.WorkerState(ctx)
	if err != nil {
		return fmt.Errorf("restore tierd's worker: %w", err)
	}
	want, action := workerRunning, api.WorkerResume
	if cfg.Worker.Paused {
		want, action = workerPaused, api.WorkerPause
	}
	if st.State == want {
		return nil
	}
	s.log.Info("restoring tierd's worker", "state", st.State, "want", want)
	if st, err = s.Tierd.Worker(ctx, action); err != nil {
		return fmt.Errorf("restore tierd's worker: %w", err)
	}
	if st.State != want {
		return fmt.Errorf("restore tierd's worker: %s answered state %q, want %q", action, st.State, want)
	}
	return nil
}

// isNotPaused reports whether an unpause failed only because the container
// was not paused.
func isNotPaused(err error) bool {
	return err != nil && containsAny(err.Error(), "is not paused", "not paused")
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
