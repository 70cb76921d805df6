package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tierchaos/tierchaos/system/server"
)

// TestStopGRPC: with no call running the graceful stop returns nil; a
// stream that never ends (a health Watch) holds it until ctx ends, and then
// the server stops at once and says why.
func TestStopGRPC(t *testing.T) {
	tests := []struct {
		name    string
		stream  bool
		wantErr error
	}{
		{name: "idle server stops gracefully"},
		{name: "a running stream past the deadline stops it at once", stream: true, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			gs := grpc.NewServer()
			healthpb.RegisterHealthServer(gs, health.NewServer())
			served := make(chan error, 1)
			go func() { served <- gs.Serve(lis) }()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			t.Cleanup(func() { _ = conn.Close() })
			// One answered call: the server is serving before it is
			// stopped (a stop before Serve makes Serve fail).
			_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			if tt.stream {
				w, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
				require.NoError(t, err)
				_, err = w.Recv() // the stream is open on the server
				require.NoError(t, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err = server.StopGRPC(ctx, gs)
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
			}
			require.NoError(t, <-served)
		})
	}
}
