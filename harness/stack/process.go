package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// ErrNotRunning is returned by process controls that need a running
// service.
var ErrNotRunning = errors.New("stack: the service is not running")

// process is the service under test, in a container or in the test
// process. Its controls keep the data volume (or directory) across
// restarts.
type process interface {
	// endpoint returns the host:port of the port p on the host.
	endpoint(ctx context.Context, p Port) (string, error)
	start(ctx context.Context) error
	// stop shuts the service down gracefully.
	stop(ctx context.Context) error
	// kill ends it abruptly: SIGKILL for a container; in process, the
	// instance is abandoned without closing it.
	kill(ctx context.Context) error
	pause(ctx context.Context) error
	unpause(ctx context.Context) error
	logs(ctx context.Context) (string, error)
	close(ctx context.Context) error
}

// containerProcess is the service as a Testcontainers container.
type containerProcess struct {
	name        string
	docker      client.APIClient
	c           testcontainers.Container
	stopTimeout time.Duration
}

func (p *containerProcess) endpoint(ctx context.Context, port Port) (string, error) {
	addr, err := p.c.PortEndpoint(ctx, port.Container, "")
	if err != nil {
		return "", fmt.Errorf("stack: %s's %s endpoint: %w", p.name, port.Name, err)
	}
	return addr, nil
}

func (p *containerProcess) start(ctx context.Context) error {
	// Start runs the readiness wait again.
	if err := p.c.Start(ctx); err != nil {
		return fmt.Errorf("stack: start %s: %w", p.name, err)
	}
	return nil
}

func (p *containerProcess) stop(ctx context.Context) error {
	timeout := p.stopTimeout
	if err := p.c.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stack: stop %s: %w", p.name, err)
	}
	return nil
}

func (p *containerProcess) kill(ctx context.Context) error {
	if _, err := p.docker.ContainerKill(ctx, p.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("stack: kill %s: %w", p.name, err)
	}
	// Wait until Docker reports the container exited.
	for {
		st, err := p.c.State(ctx)
		if err != nil {
			return fmt.Errorf("stack: %s's state: %w", p.name, err)
		}
		if !st.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: waiting for %s to exit: %w", p.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *containerProcess) pause(ctx context.Context) error {
	if _, err := p.docker.ContainerPause(ctx, p.c.GetContainerID(), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("stack: pause %s: %w", p.name, err)
	}
	return nil
}

func (p *containerProcess) unpause(ctx context.Context) error {
	if _, err := p.docker.ContainerUnpause(ctx, p.c.GetContainerID(), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("stack: unpause %s: %w", p.name, err)
	}
	return nil
}

func (p *containerProcess) logs(ctx context.Context) (string, error) {
	r, err := p.c.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("stack: %s's logs: %w", p.name, err)
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
func (p *containerProcess) close(context.Context) error { return nil }

// inProcess runs the service inside the test process through its
// Service.InProcess start function, on a data directory of the stack that
// survives kill and restart.
type inProcess struct {
	svc     Service
	log     *slog.Logger
	dataDir string
	gate    *Gate

	mu   sync.Mutex
	env  map[string]string
	inst Instance
	// abandoned keeps killed instances until close, which releases what
	// a dead process's kernel would (open files, idle connections).
	abandoned []Instance
}

func newInProcess(svc Service, log *slog.Logger, dataDir string) *inProcess {
	return &inProcess{svc: svc, log: log.With("sut", ModeInProcess, "service", svc.Name), dataDir: dataDir, gate: NewGate()}
}

// setEnv sets the environment of the next start.
func (p *inProcess) setEnv(env map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env = env
}

// instance returns the running instance, or nil.
func (p *inProcess) instance() Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inst
}

func (p *inProcess) endpoint(_ context.Context, port Port) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return "", ErrNotRunning
	}
	addr, ok := p.inst.Endpoints()[port.Name]
	if !ok {
		return "", &Error{Code: CodeUnknownPort, Field: "port", Msg: fmt.Sprintf("the in-process %s serves no port %q", p.svc.Name, port.Name)}
	}
	return addr, nil
}

func (p *inProcess) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst != nil {
		return nil
	}
	inst, err := p.svc.InProcess(ctx, InProcess{Env: p.env, DataDir: p.dataDir, Logger: p.log, Gate: p.gate})
	if err != nil {
		return fmt.Errorf("stack: start in-process %s: %w", p.svc.Name, err)
	}
	p.inst = inst
	return nil
}

func (p *inProcess) stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return nil
	}
	p.gate.Open()
	err := p.inst.Stop(ctx)
	p.inst = nil
	if err != nil {
		return fmt.Errorf("stack: stop in-process %s: %w", p.svc.Name, err)
	}
	return nil
}

func (p *inProcess) kill(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return nil
	}
	// Requests held by a pause go on, and fail on the dead instance.
	p.gate.Open()
	err := p.inst.Kill(ctx)
	p.abandoned = append(p.abandoned, p.inst)
	p.inst = nil
	if err != nil {
		return fmt.Errorf("stack: kill in-process %s: %w", p.svc.Name, err)
	}
	return nil
}

func (p *inProcess) pause(context.Context) error {
	p.gate.Shut()
	return nil
}

func (p *inProcess) unpause(context.Context) error {
	p.gate.Open()
	return nil
}

func (p *inProcess) logs(context.Context) (string, error) {
	return "(the in-process " + p.svc.Name + "'s logs go to the test's log output)", nil
}

func (p *inProcess) close(ctx context.Context) error {
	err := p.stop(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.abandoned {
		err = errors.Join(err, a.Release(ctx))
	}
	p.abandoned = nil
	return err
}

// Gate holds HTTP requests while an in-process service is paused, as
// SIGSTOP holds a container's. The stack shuts it on Pause and opens it
// on Unpause, Stop and Kill.
type Gate struct {
	mu     sync.Mutex
	closed chan struct{} // nil when open; closed to release waiters
}

// NewGate returns an open gate.
func NewGate() *Gate { return &Gate{} }

// Shut holds every request that arrives from now on until Open.
func (g *Gate) Shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

// Open releases the held requests.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

// Wrap returns h behind the gate: a request waits while the gate is shut
// (or until its client gives up).
func (g *Gate) Wrap(h http.Handler) http.Handler {
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
