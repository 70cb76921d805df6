package tierd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/seed"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
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
	// Collections are the collections a declarative row's traffic made
	// (nemesis.RowTraffic), which its checks read back.
	Collections []string
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

// NewCase prepares t on the shared stack (stack.Stack.NewCase): every
// fault left by an earlier case is cleared (Toxiproxy toxics removed and
// the proxy enabled, S3 fault rules and counters reset, tierd running and
// not paused), and the same clearing is registered to run when t ends,
// even when it fails. When t fails, the tail of tierd's log is attached
// and, for a tierd container, the whole log is written to the case's
// artifact folder.
func (s *Stack) NewCase(t *testing.T, opts ...CaseOption) *Case {
	t.Helper()
	o := caseOptions{api: APIREST}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := ParseAPI(string(o.api)); err != nil {
		t.Fatal(err)
	}
	c := s.Stack.NewCase(t)
	rec := history.NewRecorder()
	tc, release, err := s.APIClient(o.api)
	require.NoError(t, err, "tierd's %s client", o.api)
	t.Cleanup(func() {
		if err := release(); err != nil {
			t.Errorf("close tierd's %s client: %v", o.api, err)
		}
	})
	return &Case{Stack: s, Seed: c.Seed, Rand: c.Rand, Rec: rec, Client: history.NewRecordingClient(tc, rec), API: o.api, ArtifactDir: c.ArtifactDir}
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

// States of tierd's worker in api.WorkerState.
const (
	workerRunning = "running"
	workerPaused  = "paused"
)

// restoreWorker sets tierd's background worker to the state its settings
// give it (after ClearFaults, its start settings): running, or paused with
// TIERD_WORKER_PAUSED. It is the end of ClearFaults (Service.AfterClear),
// so whatever a case did to the worker (POST /v1/admin/worker) is undone.
func (s *Stack) restoreWorker(ctx context.Context) error {
	settings := s.Settings()
	cfg, err := config.FromEnv(config.Default(), func(k string) string { return settings[k] })
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

// FaultStack is the stack the case's faults go to (scenario.Target): tierd's
// adapter, whose worker and power controls the faults reach.
func (c *Case) FaultStack() fault.Stack { return c.Stack }

// CaseSeed is the case's seed (scenario.Seeded).
func (c *Case) CaseSeed() uint64 { return c.Seed.Seed }
