package grpcclient_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/tierchaos/tierchaos/internal/tierdtest"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// TestDialOptionsReachTheConnection: WithDialOptions' context dialer is
// the one that connects (the target's name is only a placeholder), and
// Conn is the connection Dial opened.
func TestDialOptionsReachTheConnection(t *testing.T) {
	td := tierdtest.Start(t, nil)
	var dials atomic.Int32
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", td.GRPCAddr)
	}
	c, err := grpcclient.Dial("passthrough:///nowhere", grpcclient.WithDialOptions(grpc.WithContextDialer(dial)))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Readyz(ctx))
	assert.Positive(t, dials.Load())
	require.NotNil(t, c.Conn())
	assert.Nil(t, grpcclient.New(c.Conn()).Conn(), "New does not own the connection")
	require.NoError(t, c.Close())
}
