// Package harness is tierd's adapter of the generic stack core
// (harness/stack): it describes tierd as a stack.Service (its image, ports
// 8080/9090/6060, TIERD_* settings, /readyz, its data directory, its
// in-process start), and adds what only tierd has: a tierd client with
// the run's tokens, planted defects and power cuts of an in-process tierd,
// and Cases that record tierd histories and check them.
package tierd

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/harness/cleanup"
	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/harness/stack"
	tierclient "github.com/tierchaos/tierchaos/system/client"
)

// Names of the core that tierd's suites know by these names.
const (
	// EnvSUT selects how tierd runs: "container" (default, a black box) or
	// "inprocess" (inside the test process, so -race sees its data races;
	// MinIO, Toxiproxy and the S3 fault layer still run in containers).
	EnvSUT = stack.EnvSUT
	// SUTContainer and SUTInProcess are the modes.
	SUTContainer = stack.ModeContainer
	SUTInProcess = stack.ModeInProcess
	// S3ProxyName is the Toxiproxy proxy in front of MinIO on tierd's path.
	S3ProxyName = stack.S3ProxyName
	// Bucket is the bucket tierd stores its cold tier in.
	Bucket = "tierd"
)

// Errors of the core, by the names tierd's suites know.
var (
	// ErrNotRunning is returned by process controls that need a running
	// tierd.
	ErrNotRunning = stack.ErrNotRunning
	// ErrNoDataDir: tierd's data is not what a call needs (stack.ErrNoDataDir).
	ErrNoDataDir = stack.ErrNoDataDir
	// ErrMinIONotRestartable: the MinIO controls need
	// Options.RestartableMinIO (stack.ErrMinIONotRestartable).
	ErrMinIONotRestartable = stack.ErrMinIONotRestartable
)

// Options configures Start.
type Options struct {
	// Logger receives the harness's own log lines; slog.Default when nil.
	Logger *slog.Logger
	// Progress receives image build progress; os.Stderr when nil.
	Progress io.Writer
	// TierdEnv adds or overrides environment variables of tierd.
	TierdEnv map[string]string
	// TierdDataTmpfs, when set (e.g. "4m", "256m"), puts tierd's data
	// directory on a tmpfs of that size (stack.Options.DataTmpfs), so
	// that a test can fill it (FillData, a real ENOSPC). Its content
	// survives KillTierd, StartTierd, RestartTierd and ReconfigureTierd.
	TierdDataTmpfs string
	// RestartableMinIO puts MinIO's /data on a Docker tmpfs volume that
	// the data sidecar keeps mounted, so that objects survive StopMinIO,
	// StartMinIO and RestartMinIO, which need it.
	RestartableMinIO bool
	// MinIODataTmpfs is the size of that volume; "1g" when empty.
	MinIODataTmpfs string
	// Seed seeds the S3 fault layer's probabilistic rules.
	Seed uint64
	// SUT is SUTContainer or SUTInProcess; from TIERCHAOS_SUT when empty,
	// else SUTContainer.
	SUT string
	// StartTimeout bounds the whole start; 2 minutes when zero (image builds
	// are done before and not counted).
	StartTimeout time.Duration
	// PowerLoss runs an in-process tierd on the power-loss layer
	// (system/fsutil/powerloss), so that CutPower can cut its power. It
	// has no effect with tierd in a container, where CutPower is refused.
	PowerLoss bool
}

// Stack is a running tierchaos stack with tierd as its service. The
// embedded core gives the S3, fault, data and MinIO controls
// (harness/stack); Stack adds tierd's.
type Stack struct {
	*stack.Stack

	// Tierd is a client of tierd's REST API, from the host, with the
	// run's tokens. It follows tierd across restarts.
	Tierd *tierclient.Client
	// APIToken and AdminToken are tierd's bearer tokens for this run
	// (random, from crypto/rand); clients of tierd built outside the stack
	// (load driver, fixtures) pass them with tierclient.WithToken and
	// tierclient.WithAdminToken.
	APIToken, AdminToken string

	log     *slog.Logger
	defects *defects
	power   *power
}

// Start ensures the images, removes leftovers of dead runs, and starts a
// stack with tierd owned by run. On error everything started is removed
// again.
func Start(ctx context.Context, run cleanup.Run, opts Options) (*Stack, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := newStack(opts.Logger, opts.PowerLoss)
	core, err := stack.Start(ctx, run, stack.Options{
		Service: s.service(), Env: opts.TierdEnv, Logger: opts.Logger, Progress: opts.Progress,
		Mode: opts.SUT, Bucket: Bucket, DataTmpfs: opts.TierdDataTmpfs,
		RestartableMinIO: opts.RestartableMinIO, MinIODataTmpfs: opts.MinIODataTmpfs,
		Seed: opts.Seed, StartTimeout: opts.StartTimeout,
	})
	if err != nil {
		return nil, err
	}
	s.attach(core)
	return s, nil
}

// newStack returns tierd's adapter state, before the core runs.
func newStack(log *slog.Logger, powerLoss bool) *Stack {
	return &Stack{
		log: log, defects: &defects{log: log}, power: &power{log: log, on: powerLoss},
		APIToken: randomToken(), AdminToken: randomToken(),
	}
}

// attach hands s the running core and builds the tierd client on it.
func (s *Stack) attach(core *stack.Stack) {
	s.Stack = core
	s.Images.Tierd = core.ServiceImage
	// The client's host name is a placeholder: the transport always dials
	// wherever tierd listens now, so the client survives restarts.
	s.Tierd = tierclient.New("http://tierd",
		tierclient.WithHTTPClient(&http.Client{Transport: core.Transport(portAPI), Timeout: 60 * time.Second}),
		tierclient.WithToken(s.APIToken), tierclient.WithAdminToken(s.AdminToken))
}

// randomToken returns 32 random bytes from crypto/rand, hex-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b) // crypto/rand.Read never returns an error (it crashes the program instead)
	return hex.EncodeToString(b)
}

// ReconfigureTierd stops tierd gracefully and starts it again, on the same
// data, with env added over the environment the stack started it with
// (an empty value removes a variable). In container mode this replaces the
// container. Settings tierd refuses leave it running with the ones it had.
func (s *Stack) ReconfigureTierd(ctx context.Context, env map[string]string) error {
	return s.Reconfigure(ctx, env)
}

// WorkerAction asks tierd's background worker to run one cycle now
// ("run_once"), pause ("pause") or resume ("resume"): the
// fault.WorkerController of harness/fault.
func (s *Stack) WorkerAction(ctx context.Context, action string) error {
	_, err := s.Tierd.Worker(ctx, action)
	return err
}

// TierdContainerID returns the id of tierd's container, or "" when tierd
// runs in the test process.
func (s *Stack) TierdContainerID() string { return s.ContainerID() }

// TierdURL returns the base URL of tierd's REST API on the host. It changes
// when tierd restarts; Stack.Tierd follows it by itself.
func (s *Stack) TierdURL() (string, error) { return s.URL(portAPI) }

// TierdGRPC returns the host:port of tierd's gRPC API on the host (for
// grpcclient.Dial). It changes when tierd restarts.
func (s *Stack) TierdGRPC() (string, error) { return s.Endpoint(portGRPC) }

// DebugURL returns the base URL of tierd's pprof and metrics listener.
func (s *Stack) DebugURL() (string, error) { return s.URL(portDebug) }

// KillTierd ends tierd abruptly (SIGKILL; in process: abandon the instance
// unclosed). Its data volume is kept for RestartTierd.
func (s *Stack) KillTierd(ctx context.Context) error { return s.KillService(ctx) }

// StopTierd stops tierd gracefully, keeping its data volume.
func (s *Stack) StopTierd(ctx context.Context) error { return s.StopService(ctx) }

// StartTierd starts a stopped or killed tierd on the same data and waits
// until it is ready.
func (s *Stack) StartTierd(ctx context.Context) error { return s.StartService(ctx) }

// RestartTierd kills tierd (or stops it when graceful) and starts it again.
func (s *Stack) RestartTierd(ctx context.Context, graceful bool) error {
	return s.RestartService(ctx, graceful)
}

// PauseTierd freezes tierd (SIGSTOP through the cgroup freezer; in process:
// API requests are held) until UnpauseTierd.
func (s *Stack) PauseTierd(ctx context.Context) error { return s.PauseService(ctx) }

// UnpauseTierd resumes a paused tierd.
func (s *Stack) UnpauseTierd(ctx context.Context) error { return s.UnpauseService(ctx) }

// TierdLogs returns tierd's log (stdout and stderr of its container).
func (s *Stack) TierdLogs(ctx context.Context) (string, error) { return s.ServiceLogs(ctx) }

// TierdData returns tierd's data directory as a datavol.Volume, in both
// modes (stack.Stack.ServiceData).
func (s *Stack) TierdData() (datavol.Volume, error) { return s.ServiceData() }

// WipeTierdData stops tierd, removes everything in its data directory and
// starts it again on the empty directory.
func (s *Stack) WipeTierdData(ctx context.Context) error { return s.WipeData(ctx) }

// inProcessTierd returns the running in-process tierd, or nil.
func (s *Stack) inProcessTierd() *tierdInstance {
	in, _ := s.Instance().(*tierdInstance)
	return in
}

// power is the power-loss state of an in-process tierd: whether new
// instances run on the power-loss layer, and a cut armed at a hook point.
type power struct {
	log *slog.Logger
	mu  sync.Mutex
	on  bool
	// armed is a cut to make when tierd passes a transition hook point
	// (ArmPowerCut); the hook runs on tierd's goroutines.
	armed *armedCut
}
