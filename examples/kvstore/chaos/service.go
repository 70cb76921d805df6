// Package chaos is the example key-value store's chaos suite
// (examples/kvstore): Service describes the store to the generic stack
// core (harness/stack), Recorder records what clients saw, and Check
// judges the history with a key-value linearizability model (porcupine).
// The suite itself (build tag e2e) uses only the core, never tierd's
// adapter.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tierchaos/tierchaos/examples/kvstore/kv"
	"github.com/tierchaos/tierchaos/harness/images"
	"github.com/tierchaos/tierchaos/harness/stack"
)

// PortAPI is the store's only port.
const PortAPI = "api"

// EnvUnsafeAck switches on the planted write-behind bug (kv.Config.UnsafeAck).
const EnvUnsafeAck = "KVSTORE_UNSAFE_ACK"

// Service describes the store: built from cmd/kvstore into a FROM
// scratch image, or started in the test process; S3 through the stack's
// fault layers; ready when /readyz answers.
func Service() stack.Service {
	return stack.Service{
		Name: "kvstore",
		Build: &images.Own{Name: "kvstore", EnvVar: "TIERCHAOS_KVSTORE_IMAGE",
			Package: "github.com/tierchaos/tierchaos/examples/kvstore/cmd/kvstore"},
		Ports: []stack.Port{{Name: PortAPI, Container: "8080/tcp"}},
		Env: func(t stack.Target) map[string]string {
			return map[string]string{
				"KVSTORE_LISTEN":        ":8080",
				"KVSTORE_S3_ENDPOINT":   t.S3Endpoint,
				"KVSTORE_S3_ACCESS_KEY": t.AccessKey,
				"KVSTORE_S3_SECRET_KEY": t.SecretKey,
				"KVSTORE_S3_BUCKET":     t.Bucket,
				"KVSTORE_S3_TIMEOUT":    "2s",
			}
		},
		Ready:     stack.Probe{Port: PortAPI, Path: "/readyz"},
		InProcess: startInProcess,
	}
}

// instance is the store in the test process.
type instance struct {
	srv  *kv.Server
	http *http.Server
	addr string
}

// startInProcess starts the store on a loopback listener, behind the
// stack's gate (so that a pause holds its requests).
func startInProcess(ctx context.Context, p stack.InProcess) (stack.Instance, error) {
	cfg, err := kv.FromEnv(func(k string) string { return p.Env[k] })
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	srv, err := kv.New(sctx, cfg, p.Logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Kill()
		srv.Release()
		return nil, fmt.Errorf("chaos: listen: %w", err)
	}
	hs := &http.Server{Handler: p.Gate.Wrap(srv.Handler()), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return &instance{srv: srv, http: hs, addr: ln.Addr().String()}, nil
}

// Endpoints implements stack.Instance.
func (in *instance) Endpoints() map[string]string { return map[string]string{PortAPI: in.addr} }

// Stop lets the requests in flight finish, then the writes behind.
func (in *instance) Stop(ctx context.Context) error {
	return errors.Join(in.http.Shutdown(ctx), in.srv.Close(ctx))
}

// Kill ends every S3 request and closes every connection at once.
func (in *instance) Kill(context.Context) error {
	err := in.http.Close()
	in.srv.Kill()
	return err
}

// Release closes the killed store's idle S3 connections.
func (in *instance) Release(context.Context) error {
	in.srv.Release()
	return nil
}
