package grpcop

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/connectivity"

	"github.com/tierchaos/tierchaos/internal/tierdtest"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPoolSpreadsCallsOverItsConnections: calls take turns over the
// pool's connections (each of them ends up connected), answers and error
// codes are those of tierd, and Close releases every connection.
func TestPoolSpreadsCallsOverItsConnections(t *testing.T) {
	td := tierdtest.Start(t, nil)
	c, err := Dial(td.GRPCAddr, Options{Conns: 3})
	require.NoError(t, err)
	require.Equal(t, 3, c.Conns())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "p", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = c.Insert(ctx, "p", []api.Vector{{ID: "a", Values: []float32{1, 2}}})
	require.NoError(t, err)
	for range 4 {
		res, err := c.Search(ctx, "p", []float32{1, 2}, 1)
		require.NoError(t, err)
		require.Equal(t, "a", res[0].ID)
	}
	_, err = c.GetCollection(ctx, "missing")
	require.Equal(t, api.CodeNotFound, client.CodeOf(err))
	for i, conn := range c.pool.conns {
		assert.Equal(t, connectivity.Ready, conn.GetState(), "connection %d carried calls", i)
	}
	require.NoError(t, c.Close())
}

func TestDialRejectsBadOptions(t *testing.T) {
	_, err := Dial("127.0.0.1:1", Options{Conns: -1})
	require.ErrorIs(t, err, ErrOptions)
	_, err = Dial("", Options{})
	require.ErrorIs(t, err, ErrOptions)
	c, err := Dial("127.0.0.1:1", Options{})
	require.NoError(t, err, "connections are made by the first calls")
	assert.Equal(t, DefaultConns, c.Conns())
	require.NoError(t, c.Close())
}
