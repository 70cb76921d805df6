package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"google.golang.org/grpc"

	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
	"github.com/tierchaos/tierchaos/system/server"
)

// EnvSUT selects how tierd runs: "container" (default, a black box) or
// "inprocess" (inside the test process, so -race sees its data races; MinIO,
// Toxiproxy and the S3 fault layer still run in containers).
const EnvSUT = "TIERCHAOS_SUT"

// SUT modes.
const (
	SUTContainer = "container"
	SUTInProcess = "inprocess"
)

// ErrNotRunning is returned by process controls that need a running tierd.
var ErrNotRunning = errors.New("harness: tierd is not running")

// sut is tierd under test, in a container or in the test process. Its
// controls keep the data volume (or directory) across restarts.
type sut interface {
	// addrs returns the host:port of the API and of the debug listener.
	addrs() (api, debug string, err error)
	// grpcAddr returns the host:port of the gRPC API.
	grpcAddr() (string, error)
	start(ctx context.Context) error
	// stop shuts tierd down gracefully.
	stop(ctx context.Context) error
	// kill ends tierd abruptly: SIGKILL for a container; for an in-process
	// tierd, the instance is abandoned without closing it.
	kill(ctx context.Context) error
	pause(ctx context.Context) error
	unpause(ctx context.Context) error
	logs(ctx context.Context) (string, error)
	close(ctx context.Context) error
}

// containerSUT is tierd as a Testcontainers container.
type containerSUT struct {
	docker client.APIClient
	c      testcontainers.Container
}

func (s *containerSUT) addrs() (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api, err := s.c.PortEndpoint(ctx, tierdAPIPort, "")
	if err != nil {
		return "", "", fmt.Errorf("harness: tierd endpoint: %w", err)
	}
	debug, err := s.c.PortEndpoint(ctx, tierdDebugPort, "")
	if err != nil {
		return "", "", fmt.Errorf("harness: tierd debug endpoint: %w", err)
	}
	return api, debug, nil
}

func (s *containerSUT) grpcAddr() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, err := s.c.PortEndpoint(ctx, tierdGRPCPort, "")
	if err != nil {
		return "", fmt.Errorf("harness: tierd gRPC endpoint: %w", err)
	}
	return addr, nil
}

func (s *containerSUT) start(ctx context.Context) error {
	// Start runs the readiness wait (/readyz) again.
	if err := s.c.Start(ctx); err != nil {
		return fmt.Errorf("harness: start tierd: %w", err)
	}
	return nil
}

func (s *containerSUT) stop(ctx context.Context) error {
	timeout := 10 * time.Second
	if err := s.c.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("harness: stop tierd: %w", err)
	}
	return nil
}

func (s *containerSUT) kill(ctx context.Context) error {
	if _, err := s.docker.ContainerKill(ctx, s.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("harness: kill tierd: %w", err)
	}
	// Wait until Docker reports the container exited.
	for {
		st, err := s.c.State(ctx)
		if err != nil {
			return fmt.Errorf("harness: tierd state: %w", err)
		}
		if !st.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: waiting for tierd to exit: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *containerSUT) pause(ctx context.Context) error {
	if _, err := s.docker.ContainerPause(ctx, s.c.GetContainerID(), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("harness: pause tierd: %w", err)
	}
	return nil
}

func (s *containerSUT) unpause(ctx context.Context) error {
	if _, err := s.docker.ContainerUnpause(ctx, s.c.GetContainerID(), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("harness: unpause tierd: %w", err)
	}
	return nil
}

func (s *containerSUT) logs(ctx context.Context) (string, error) {
	r, err := s.c.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("harness: tierd logs: %w", err)
	}
	defer r.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

// close is a no-op: the run's cleanup removes the container.
func (s *containerSUT) close(context.Context) error { return nil }

// inProcessSUT runs tierd's server package inside the test process on
// loopback listeners, on a data directory of the stack that survives kill
// and restart. The gRPC API is served beside the REST API; pause and the
// defect layer act on the REST API only.
type inProcessSUT struct {
	cfg     config.Config
	log     *slog.Logger
	dataDir string
	defects *defects

	mu         sync.Mutex
	srv        *server.Server
	api, dbg   *http.Server
	grpc       *grpc.Server
	apiAddr    string
	debugAddr  string
	grpcListen string
	gate       *gate
	// abandoned keeps killed instances until close, which releases what
	// a dead process's kernel would (open files, idle connections).
	abandoned []*server.Server
	// powerLoss starts every instance on a new power-loss layer over
	// dataDir (fs, the current one), so that cutPower can cut it.
	powerLoss bool
	fs        *powerloss.FS
	// armMu guards armed, a cut to make when tierd passes a transition
	// hook point (ArmPowerCut); the hook runs on tierd's goroutines.
	armMu sync.Mutex
	armed *armedCut
}

// armedCut is a power cut waiting for a hook point.
type armedCut struct {
	point string
	co    powerloss.CutOptions
	fired chan PowerCutResult
}

// PowerCutResult is what an armed power cut did when it fired.
type PowerCutResult struct {
	Report powerloss.Report
	Err    error
}

// hook cuts fs's power if a cut is armed for point. It runs inside the
// transition, which then fails on the frozen file system.
func (s *inProcessSUT) hook(fs *powerloss.FS, point string) {
	s.armMu.Lock()
	a := s.armed
	if a == nil || a.point != point {
		s.armMu.Unlock()
		return
	}
	s.armed = nil
	s.armMu.Unlock()
	rep, err := fs.Cut(a.co)
	s.log.Info("power cut at a hook point", "point", point, "lost_bytes", rep.LostBytes, "undone_entries", len(rep.Undone), "err", err)
	a.fired <- PowerCutResult{Report: rep, Err: err}
}

// arm arms a cut at point, replacing any armed before. The point
// PowerCutBeforeWALSync is armed on the current layer (it fires inside
// it); the others at the store's hook points.
func (s *inProcessSUT) arm(point string, co powerloss.CutOptions) (<-chan PowerCutResult, error) {
	fired := make(chan PowerCutResult, 1)
	if point == PowerCutBeforeWALSync {
		s.mu.Lock()
		fs := s.fs
		s.mu.Unlock()
		if fs == nil {
			return nil, ErrNotRunning
		}
		walDir := filepath.Join(fs.Root(), "wal") + string(filepath.Separator)
		fs.CutBeforeSync(func(p string) bool {
			return strings.HasPrefix(p, walDir) && strings.HasSuffix(p, ".log")
		}, co, func(r powerloss.SyncCut) {
			fired <- PowerCutResult{Report: r.Report, Err: r.Err}
		})
		return fired, nil
	}
	s.armMu.Lock()
	defer s.armMu.Unlock()
	s.armed = &armedCut{point: point, co: co, fired: fired}
	return fired, nil
}

func (s *inProcessSUT) disarm() {
	s.armMu.Lock()
	defer s.armMu.Unlock()
	s.armed = nil
}

// newInProcessSUT prepares an in-process tierd on dataDir (the stack
// creates and removes it). Its API handler is wrapped with d.
func newInProcessSUT(cfg config.Config, log *slog.Logger, dataDir string, d *defects) *inProcessSUT {
	cfg.DataDir = dataDir
	return &inProcessSUT{cfg: cfg, log: log.With("sut", "inprocess"), dataDir: dataDir, defects: d, gate: newGate()}
}

func (s *inProcessSUT) addrs() (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return "", "", ErrNotRunning
	}
	return s.apiAddr, s.debugAddr, nil
}

func (s *inProcessSUT) grpcAddr() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return "", ErrNotRunning
	}
	return s.grpcListen, nil
}

func (s *inProcessSUT) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	var opts []server.Option
	s.fs = nil
	if s.powerLoss {
		fs, err := powerloss.New(s.dataDir)
		if err != nil {
			return fmt.Errorf("harness: start in-process tierd: %w", err)
		}
		s.fs = fs
		opts = append(opts, server.WithFS(fs), server.WithHook(func(point string) { s.hook(fs, point) }))
	}
	srv, err := server.New(ctx, s.cfg, s.log, opts...)
	if err != nil {
		return fmt.Errorf("harness: start in-process tierd: %w", err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return errors.Join(fmt.Errorf("harness: listen: %w", err), srv.Close(ctx))
	}
	dbgLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return errors.Join(fmt.Errorf("harness: listen: %w", err), apiLn.Close(), srv.Close(ctx))
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return errors.Join(fmt.Errorf("harness: listen: %w", err), apiLn.Close(), dbgLn.Close(), srv.Close(ctx))
	}
	s.srv = srv
	s.grpc, s.grpcListen = srv.GRPCServer(), grpcLn.Addr().String()
	s.api = &http.Server{Handler: s.gate.wrap(s.defects.wrap(srv.Handler(), s.cfg.Limits)), ReadHeaderTimeout: 10 * time.Second}
	s.dbg = &http.Server{Handler: srv.DebugHandler(), ReadHeaderTimeout: 10 * time.Second}
	s.apiAddr, s.debugAddr = apiLn.Addr().String(), dbgLn.Addr().String()
	// The goroutines get their servers now: a stop right after this start
	// clears the fields before they may run.
	api, dbg, gs := s.api, s.dbg, s.grpc
	go func() { _ = api.Serve(apiLn) }()
	go func() { _ = dbg.Serve(dbgLn) }()
	go func() { _ = gs.Serve(grpcLn) }()
	return nil
}

func (s *inProcessSUT) stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	s.gate.open()
	err := errors.Join(stopGRPC(ctx, s.grpc), s.api.Shutdown(ctx), s.dbg.Shutdown(ctx), s.srv.Close(ctx))
	s.srv, s.api, s.dbg, s.grpc = nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("harness: stop in-process tierd: %w", err)
	}
	return nil
}

func (s *inProcessSUT) kill(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

// cutPower cuts the power of tierd's data folder (the power-loss layer
// loses what was not fsynced and freezes, so tierd changes nothing more),
// then kills tierd as kill does. The caller starts it again.
func (s *inProcessSUT) cutPower(co powerloss.CutOptions) (powerloss.Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return powerloss.Report{}, ErrNotRunning
	}
	if s.fs == nil {
		return powerloss.Report{}, fmt.Errorf("harness: tierd runs without the power-loss layer (Options.PowerLoss): %w", ErrPowerLossUnsupported)
	}
	rep, err := s.fs.Cut(co)
	s.fs = nil
	return rep, errors.Join(err, s.killLocked())
}

func (s *inProcessSUT) killLocked() error {
	if s.srv == nil {
		return nil
	}
	// Cut every connection at once and abandon the instance the way
	// SIGKILL ends a process: from Abandon's return it writes nothing to
	// the data directory, sends no S3 request and runs no background work,
	// and nothing is flushed; requests still running get errors.
	s.gate.open()
	s.grpc.Stop()
	err := errors.Join(s.api.Close(), s.dbg.Close())
	s.srv.Abandon()
	s.abandoned = append(s.abandoned, s.srv)
	s.srv, s.api, s.dbg, s.grpc = nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("harness: kill in-process tierd: %w", err)
	}
	return nil
}

func (s *inProcessSUT) pause(context.Context) error {
	s.gate.shut()
	return nil
}

func (s *inProcessSUT) unpause(context.Context) error {
	s.gate.open()
	return nil
}

func (s *inProcessSUT) logs(context.Context) (string, error) {
	return "(in-process tierd logs go to the test's log output)", nil
}

func (s *inProcessSUT) close(ctx context.Context) error {
	err := s.stop(ctx)
	s.mu.Lock()
	for _, a := range s.abandoned {
		// An abandoned instance's Close releases files and connections; its
		// writes fail by design, so its error says nothing about the test.
		_ = a.Close(ctx)
	}
	s.abandoned = nil
	s.mu.Unlock()
	return err
}

// stopGRPC stops gs gracefully (the running calls finish) until ctx
// ends, then at once.
func stopGRPC(ctx context.Context, gs *grpc.Server) error {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		gs.Stop()
		<-done
		return fmt.Errorf("harness: gRPC graceful stop: %w", ctx.Err())
	}
}

// gate holds API requests while an in-process tierd is "paused", as
// SIGSTOP holds a container's.
type gate struct {
	mu     sync.Mutex
	closed chan struct{} // nil when open; closed to release waiters
}

func newGate() *gate { return &gate{} }

func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		wait := g.closed
		g.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
