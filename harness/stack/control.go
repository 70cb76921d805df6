package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// serviceEnv returns the service's environment where it runs: its own
// (Service.Env, pointed at the stack) with settings over it.
func (s *Stack) serviceEnv(settings map[string]string) map[string]string {
	t := Target{Mode: s.Mode, AccessKey: s.secrets.accessKey, SecretKey: s.secrets.secretKey, Bucket: s.Bucket}
	if s.Mode == ModeContainer {
		t.S3Endpoint = s3faultAlias + ":" + strings.TrimSuffix(s3faultS3Port, "/tcp")
		t.DataDir = s.svc.DataDir
	} else {
		t.S3Endpoint = s.S3FaultEndpoint
		t.DataDir = s.data.dir
	}
	env := map[string]string{}
	if s.svc.Env != nil {
		maps.Copy(env, s.svc.Env(t))
	}
	maps.Copy(env, settings)
	return env
}

// launch starts the service with settings (a new container, or an
// in-process instance with that environment) and waits until it is ready.
func (s *Stack) launch(ctx context.Context, settings map[string]string) error {
	env := s.serviceEnv(settings)
	switch s.Mode {
	case ModeContainer:
		req := testcontainers.ContainerRequest{
			Image: s.ServiceImage,
			Cmd:   s.svc.Cmd,
			Env:   env,
		}
		for _, p := range s.svc.Ports {
			req.ExposedPorts = append(req.ExposedPorts, p.Container)
		}
		if s.svc.Ready.Path != "" {
			port, _ := s.svc.port(s.svc.Ready.Port) // checked by validate
			req.WaitingFor = wait.ForHTTP(s.svc.Ready.Path).WithPort(port.Container).
				WithStartupTimeout(s.readyTimeout()).WithPollInterval(50 * time.Millisecond)
		}
		if s.data.volume != "" {
			// A plain volume, or a tmpfs volume with DataTmpfs; the
			// sidecar keeps either mounted across restarts.
			req.Mounts = testcontainers.Mounts(testcontainers.VolumeMount(s.data.volume, testcontainers.ContainerMountTarget(s.svc.DataDir)))
		}
		c, err := s.run(ctx, s.svc.Name, req)
		if err != nil {
			return err
		}
		stopTimeout := s.svc.StopTimeout
		if stopTimeout == 0 {
			stopTimeout = 10 * time.Second
		}
		s.setProc(&containerProcess{name: s.svc.Name, docker: s.docker, c: c, stopTimeout: stopTimeout})
	case ModeInProcess:
		s.inproc.setEnv(env)
		s.setProc(s.inproc)
		if err := s.inproc.start(ctx); err != nil {
			return err
		}
	}
	s.settings = settings
	s.closeServiceIdle()
	if err := s.waitReady(ctx); err != nil {
		if s.Mode == ModeContainer {
			// Leave no container behind that a relaunch would collide with.
			err = errors.Join(err, s.removeContainer(context.WithoutCancel(ctx)))
		}
		return err
	}
	return nil
}

// removeContainer removes the service's container (in container mode).
func (s *Stack) removeContainer(ctx context.Context) error {
	cp, ok := s.current().(*containerProcess)
	if !ok {
		return nil
	}
	s.retireLog(ctx, cp)
	if err := cp.c.Terminate(ctx); err != nil {
		return fmt.Errorf("stack: remove %s: %w", s.svc.Name, err)
	}
	s.mu.Lock()
	delete(s.containers, s.svc.Name)
	s.mu.Unlock()
	return nil
}

// retireLog keeps the log of the container about to be removed for the
// case's log artifact (keepLog). A log that cannot be read is kept as the
// reason it could not.
func (s *Stack) retireLog(ctx context.Context, cp *containerProcess) {
	logs, err := cp.logs(ctx)
	if err != nil {
		logs = fmt.Sprintf("(log unreadable: %v)\n", err)
	}
	head := fmt.Sprintf("===== %s container %.12s, removed at %s =====\n",
		s.svc.Name, cp.c.GetContainerID(), time.Now().UTC().Format(time.RFC3339Nano))
	s.mu.Lock()
	s.retiredLogs = append(s.retiredLogs, head+logs)
	s.mu.Unlock()
}

// forgetRetiredLogs drops the logs retireLog kept: a new case begins.
func (s *Stack) forgetRetiredLogs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retiredLogs = nil
}

// CaseLog returns the service's whole log since the current case began
// (NewCase): first the logs of the containers the case replaced
// (Reconfigure, or ClearFaults giving back the start settings), oldest
// first, each under a header line, then the current container's. A
// kill and start keep the container, so its log runs on across them. In
// process the service logs into the test's output and CaseLog returns
// ServiceLogs' answer. When the current log cannot be read, the error
// comes with the replaced containers' logs.
func (s *Stack) CaseLog(ctx context.Context) (string, error) {
	s.mu.Lock()
	retired := strings.Join(s.retiredLogs, "")
	s.mu.Unlock()
	logs, err := s.ServiceLogs(ctx)
	if retired == "" {
		return logs, err
	}
	if err != nil {
		return retired, err
	}
	return retired + fmt.Sprintf("===== %s container %.12s, current =====\n", s.svc.Name, s.ContainerID()) + logs, nil
}

func (s *Stack) readyTimeout() time.Duration {
	if s.svc.ReadyTimeout > 0 {
		return s.svc.ReadyTimeout
	}
	return time.Minute
}

// Reconfigure stops the service gracefully and starts it again, on the
// same data, with env added over the settings it runs with (an empty
// value removes a variable). In container mode this replaces the
// container. When the service does not start with them, it is brought
// back with the settings it had, and the error says so. ClearFaults gives
// it back its start settings (Options.Env).
func (s *Stack) Reconfigure(ctx context.Context, env map[string]string) error {
	merged := maps.Clone(s.settings)
	if merged == nil {
		merged = map[string]string{}
	}
	for k, v := range env {
		if v == "" {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	return s.restartWith(ctx, merged)
}

// Settings returns the settings the service runs with now: Options.Env
// plus Reconfigure's.
func (s *Stack) Settings() map[string]string { return maps.Clone(s.settings) }

// restartWith stops the service gracefully and starts it again on the
// same data with exactly the settings given; when it does not start with
// them, it brings it back with the ones it had.
func (s *Stack) restartWith(ctx context.Context, settings map[string]string) error {
	if err := s.current().stop(ctx); err != nil {
		return err
	}
	if err := s.removeContainer(ctx); err != nil {
		return err
	}
	old := s.settings
	if err := s.launch(ctx, settings); err != nil {
		// The service refused the settings (or did not start): bring it
		// back with the ones it had, so the stack stays usable.
		if rerr := s.launch(ctx, old); rerr != nil {
			return errors.Join(err, fmt.Errorf("stack: restart %s with its previous settings: %w", s.svc.Name, rerr))
		}
		return err
	}
	return nil
}

// Endpoint returns host:port of the service's port named port, on the
// host. It changes when the service restarts; Transport follows it.
func (s *Stack) Endpoint(port string) (string, error) {
	p, err := s.svc.port(port)
	if err != nil {
		return "", err
	}
	proc := s.current()
	if proc == nil {
		return "", ErrNotRunning
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return proc.endpoint(ctx, p)
}

// URL returns "http://" + Endpoint(port).
func (s *Stack) URL(port string) (string, error) {
	ep, err := s.Endpoint(port)
	return "http://" + ep, err
}

// Transport returns an HTTP transport that always dials the service's
// current endpoint of port, whatever the request's host, so that a client
// built on it survives restarts. Its idle connections are closed after
// every start and when the stack closes. It panics on a port the service
// does not have (a programming error).
func (s *Stack) Transport(port string) *http.Transport {
	if _, err := s.svc.port(port); err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.transports[port]; t != nil {
		return t
	}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			addr, err := s.Endpoint(port)
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	s.transports[port] = t
	return t
}

// closeServiceIdle closes the idle connections of the service's
// transports: they lead to an instance that is gone.
func (s *Stack) closeServiceIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.transports {
		t.CloseIdleConnections()
	}
}

// ContainerID returns the id of the service's container, or "" when the
// service runs in the test process.
func (s *Stack) ContainerID() string {
	if cp, ok := s.current().(*containerProcess); ok {
		return cp.c.GetContainerID()
	}
	return ""
}

// Instance returns the running in-process instance (what
// Service.InProcess returned), or nil in container mode or while the
// service is down.
func (s *Stack) Instance() Instance {
	if s.inproc == nil {
		return nil
	}
	return s.inproc.instance()
}

// KillService ends the service abruptly (SIGKILL; in process: the
// instance is abandoned unclosed). Its data is kept for StartService.
func (s *Stack) KillService(ctx context.Context) error { return s.current().kill(ctx) }

// StopService stops the service gracefully, keeping its data.
func (s *Stack) StopService(ctx context.Context) error { return s.current().stop(ctx) }

// StartService starts a stopped or killed service on the same data and
// waits until it is ready.
func (s *Stack) StartService(ctx context.Context) error {
	if err := s.current().start(ctx); err != nil {
		return err
	}
	s.closeServiceIdle()
	return s.waitReady(ctx)
}

// RestartService kills the service (or stops it when graceful) and
// starts it again.
func (s *Stack) RestartService(ctx context.Context, graceful bool) error {
	var err error
	if graceful {
		err = s.StopService(ctx)
	} else {
		err = s.KillService(ctx)
	}
	if err != nil {
		return err
	}
	return s.StartService(ctx)
}

// PauseService freezes the service (SIGSTOP through the cgroup freezer;
// in process: requests through InProcess.Gate are held) until
// UnpauseService.
func (s *Stack) PauseService(ctx context.Context) error { return s.current().pause(ctx) }

// UnpauseService resumes a paused service.
func (s *Stack) UnpauseService(ctx context.Context) error { return s.current().unpause(ctx) }

// ServiceLogs returns the service's log (stdout and stderr of its
// container; in process it logs into the test's output).
func (s *Stack) ServiceLogs(ctx context.Context) (string, error) {
	if s.current() == nil {
		return "", ErrNotRunning
	}
	return s.current().logs(ctx)
}

// Ready probes the service once (Service.Ready).
func (s *Stack) Ready(ctx context.Context) error {
	if s.svc.Ready.Func != nil {
		return s.svc.Ready.Func(ctx, s.Endpoint)
	}
	url, err := s.URL(s.svc.Ready.Port)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+s.svc.Ready.Path, nil)
	if err != nil {
		return fmt.Errorf("stack: readiness probe: %w", err)
	}
	resp, err := s.probeHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("stack: readiness probe: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("stack: readiness probe: GET %s answered %s", s.svc.Ready.Path, resp.Status)
	}
	return nil
}

// waitReady polls Ready until it passes or the deadline (ReadyTimeout)
// passes.
func (s *Stack) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.readyTimeout())
	defer cancel()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.Ready(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stack: %s not ready: %w (last: %w)", s.svc.Name, ctx.Err(), err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// current returns the service as it runs now.
func (s *Stack) current() process {
	s.procMu.RLock()
	defer s.procMu.RUnlock()
	return s.proc
}

// setProc installs a new process of the service.
func (s *Stack) setProc(p process) {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	s.proc = p
}
