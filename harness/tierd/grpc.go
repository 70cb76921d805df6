package tierd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcapi"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// API names the tierd API a case's (or a nemesis run's) traffic goes
// through.
type API string

// The APIs of tierd.
const (
	// APIREST is tierd's REST API (Stack.Tierd); the default.
	APIREST API = "rest"
	// APIGRPC is tierd's gRPC API (Stack.DialGRPC).
	APIGRPC API = "grpc"
)

// ErrUnknownAPI is wrapped by ParseAPI's error.
var ErrUnknownAPI = errors.New("harness: unknown API")

// ParseAPI parses "rest" or "grpc" ("" is rest).
func ParseAPI(s string) (API, error) {
	switch API(s) {
	case "", APIREST:
		return APIREST, nil
	case APIGRPC:
		return APIGRPC, nil
	}
	return "", fmt.Errorf("%w %q: want %q or %q", ErrUnknownAPI, s, APIREST, APIGRPC)
}

// grpcBackoff paces reconnects to tierd: tierd restarts in well under a
// second, and gRPC's default (1 s growing to 2 min) would keep a client
// away from it for long after.
var grpcBackoff = backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond}

// DialGRPC returns a client of tierd's gRPC API with the run's tokens that
// follows tierd across restarts: each connection dials wherever tierd
// listens then (TierdGRPC), and a call made while tierd is down waits for
// the next connection (gRPC's wait-for-ready) until its context ends,
// reconnecting at most 250 ms apart. Close it when done; its goroutines
// end with its connection.
func (s *Stack) DialGRPC() (*grpcclient.Client, error) {
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		addr, err := s.TierdGRPC()
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	// The target's host name is a placeholder, as Stack.Tierd's.
	return grpcclient.Dial("passthrough:///tierd",
		grpcclient.WithToken(s.APIToken), grpcclient.WithAdminToken(s.AdminToken),
		grpcclient.WithDialOptions(grpc.WithContextDialer(dial),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: grpcBackoff, MinConnectTimeout: 5 * time.Second}),
			grpc.WithDefaultCallOptions(grpc.WaitForReady(true))))
}

// APIClient returns a client of tierd over api and the function that
// releases it: Stack.Tierd and a no-op for APIREST, DialGRPC's client and
// its Close for APIGRPC.
func (s *Stack) APIClient(api API) (client.API, func() error, error) {
	switch api {
	case "", APIREST:
		return s.Tierd, func() error { return nil }, nil
	case APIGRPC:
		gc, err := s.DialGRPC()
		if err != nil {
			return nil, nil, err
		}
		return gc, gc.Close, nil
	}
	_, err := ParseAPI(string(api))
	return nil, nil, err
}

// RequireWireError checks that err is tierd's error answer with code as the
// case's API carries it: over REST an HTTP answer of api.HTTPStatus(code)
// whose body names code; over gRPC a status of grpcapi.StatusCode(code)
// whose google.rpc.ErrorInfo reason is code.
func (c *Case) RequireWireError(t testing.TB, err error, code string) {
	t.Helper()
	switch c.API {
	case APIGRPC:
		var ge *grpcclient.Error
		require.ErrorAs(t, err, &ge, "a gRPC status of tierd")
		require.Equal(t, []any{grpcapi.StatusCode(code), code}, []any{ge.Status, ge.Code}, "gRPC status and ErrorInfo reason: %v", err)
	default:
		var re *client.Error
		require.ErrorAs(t, err, &re, "an HTTP answer of tierd")
		require.Equal(t, []any{api.HTTPStatus(code), code}, []any{re.StatusCode, re.Code}, "HTTP status and error code: %v", err)
	}
}
