package tierd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/tierchaos/tierchaos/harness/images"
	"github.com/tierchaos/tierchaos/harness/stack"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
	"github.com/tierchaos/tierchaos/system/server"
)

// tierd's ports, by the names the core knows them.
const (
	portAPI   = "api"   // REST API, 8080
	portDebug = "debug" // pprof and metrics, 6060
	portGRPC  = "grpc"  // gRPC API, 9090
)

// service describes tierd to the core.
func (s *Stack) service() stack.Service {
	build := images.Tierd()
	return stack.Service{
		Name:  "tierd",
		Build: &build,
		Ports: []stack.Port{
			{Name: portAPI, Container: "8080/tcp"},
			{Name: portDebug, Container: "6060/tcp"},
			{Name: portGRPC, Container: "9090/tcp"},
		},
		Env:       s.tierdEnv,
		Ready:     stack.Probe{Port: portAPI, Path: "/readyz"},
		DataDir:   "/data",
		InProcess: s.startInProcess,
		BeforeClear: func(context.Context) error {
			s.defects.disarm()
			s.disarmPowerCut()
			return nil
		},
		AfterClear: s.restoreWorker,
	}
}

// tierdEnv returns tierd's environment: where it finds S3 and keeps its
// data from where it runs, and the run's tokens. The debug listener binds
// every interface: in the container the host reaches it through the
// published port (tierd's own default is loopback only). An in-process
// tierd listens where startInProcess says, whatever the addresses here.
func (s *Stack) tierdEnv(t stack.Target) map[string]string {
	return map[string]string{
		"TIERD_LISTEN_ADDR":   ":8080",
		"TIERD_DEBUG_ADDR":    "0.0.0.0:6060",
		"TIERD_GRPC_ADDR":     ":9090",
		"TIERD_DATA_DIR":      t.DataDir,
		"TIERD_S3_ENDPOINT":   t.S3Endpoint,
		"TIERD_S3_ACCESS_KEY": t.AccessKey,
		"TIERD_S3_SECRET_KEY": t.SecretKey,
		"TIERD_S3_BUCKET":     t.Bucket,
		"TIERD_S3_OP_TIMEOUT": "5s",
		// Block and mutex profiles for load runs (off in tierd's defaults).
		"TIERD_BLOCK_PROFILE_RATE":     "10000",
		"TIERD_MUTEX_PROFILE_FRACTION": "10",
		"TIERD_API_TOKEN":              s.APIToken,
		"TIERD_ADMIN_TOKEN":            s.AdminToken,
	}
}

// tierdInstance is tierd's server package running inside the test process
// on loopback listeners. The gRPC API is served beside the REST API; pause
// (the core's gate) and the defect layer act on the REST API only.
type tierdInstance struct {
	srv       *server.Server
	api, dbg  *http.Server
	grpc      *grpc.Server
	endpoints map[string]string
	// fs is the power-loss layer under the instance's data directory, or
	// nil without it.
	fs *powerloss.FS
}

// startInProcess starts one in-process tierd with the settings of p.Env on
// p.DataDir, on a new power-loss layer when that is on.
func (s *Stack) startInProcess(ctx context.Context, p stack.InProcess) (stack.Instance, error) {
	cfg, err := config.FromEnv(config.Default(), func(k string) string { return p.Env[k] })
	if err != nil {
		return nil, fmt.Errorf("harness: tierd config: %w", err)
	}
	cfg.ApplyProfileRates() // what tierd's main does; process-wide
	in := &tierdInstance{}
	var opts []server.Option
	if s.power.isOn() {
		if in.fs, err = powerloss.New(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("harness: power-loss layer: %w", err)
		}
		fs := in.fs
		opts = append(opts, server.WithFS(fs), server.WithHook(func(point string) { s.power.hook(fs, point) }))
	}
	if in.srv, err = server.New(ctx, cfg, p.Logger, opts...); err != nil {
		return nil, err
	}
	var lns []net.Listener
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				err = errors.Join(err, l.Close())
			}
			return nil, errors.Join(fmt.Errorf("harness: listen: %w", err), in.srv.Close(ctx))
		}
		lns = append(lns, ln)
	}
	in.grpc = in.srv.GRPCServer()
	in.api = &http.Server{Handler: p.Gate.Wrap(s.defects.wrap(in.srv.Handler(), cfg.Limits)), ReadHeaderTimeout: 10 * time.Second}
	in.dbg = &http.Server{Handler: in.srv.DebugHandler(), ReadHeaderTimeout: 10 * time.Second}
	in.endpoints = map[string]string{portAPI: lns[0].Addr().String(), portDebug: lns[1].Addr().String(), portGRPC: lns[2].Addr().String()}
	// The goroutines get their servers now: a stop right after this start
	// must not find fields cleared under them.
	api, dbg, gs := in.api, in.dbg, in.grpc
	go func() { _ = api.Serve(lns[0]) }()
	go func() { _ = dbg.Serve(lns[1]) }()
	go func() { _ = gs.Serve(lns[2]) }()
	return in, nil
}

// Endpoints implements stack.Instance.
func (in *tierdInstance) Endpoints() map[string]string { return in.endpoints }

// Stop shuts tierd down gracefully.
func (in *tierdInstance) Stop(ctx context.Context) error {
	return errors.Join(server.StopGRPC(ctx, in.grpc), in.api.Shutdown(ctx), in.dbg.Shutdown(ctx), in.srv.Close(ctx))
}

// Kill cuts every connection at once and abandons the instance the way
// SIGKILL ends a process: from Abandon's return it writes nothing to the
// data directory, sends no S3 request and runs no background work, and
// nothing is flushed; requests still running get errors.
func (in *tierdInstance) Kill(context.Context) error {
	in.grpc.Stop()
	err := errors.Join(in.api.Close(), in.dbg.Close())
	in.srv.Abandon()
	return err
}

// Release closes an abandoned instance, which releases its files and
// connections; its writes fail by design, so its error says nothing
// about the test.
func (in *tierdInstance) Release(ctx context.Context) error {
	_ = in.srv.Close(ctx)
	return nil
}
