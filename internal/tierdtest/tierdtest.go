// Package tierdtest runs tierd in the test process for unit tests of its
// clients: the REST API on an httptest server and the gRPC API on a
// loopback port, over a temporary data folder and an in-memory cold tier,
// both stopped and the server closed when the test ends.
package tierdtest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

// Tierd is one in-process tierd serving both APIs.
type Tierd struct {
	// Server is the tierd server.
	Server *server.Server
	// URL is the REST API's base URL.
	URL string
	// GRPCAddr is the gRPC API's host:port.
	GRPCAddr string
}

// Start runs tierd with config.Default() (no S3 endpoint: the cold tier is
// uploader.NewMemStore()), changed by mod when it is not nil, until t ends.
func Start(t testing.TB, mod func(*config.Config)) *Tierd {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.S3.Endpoint = ""
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), cfg, log, server.WithObjectStore(uploader.NewMemStore()))
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := srv.GRPCServer()
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.Stop() // ends open streams and connections at once
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("tierdtest: gRPC server: %v", err)
		}
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("tierdtest: close tierd: %v", err)
		}
	})
	return &Tierd{Server: srv, URL: hs.URL, GRPCAddr: ln.Addr().String()}
}
