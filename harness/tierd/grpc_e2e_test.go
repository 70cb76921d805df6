//go:build e2e

package tierd_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// TestCaseOverGRPC: a case WithAPI(APIGRPC) records its calls over gRPC,
// with tierd's codes as statuses and ErrorInfo, and its client follows
// tierd across a kill and a restart (in a container tierd's port changes).
func TestCaseOverGRPC(t *testing.T) {
	c := stack.NewCase(t, tierd.WithAPI(tierd.APIGRPC))
	require.Equal(t, tierd.APIGRPC, c.API)
	require.IsType(t, &grpcclient.Client{}, c.Client.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("grpc-case-%d", c.Seed.Seed%1e9)
	_, err := c.Client.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = c.Client.Insert(ctx, name, []api.Vector{{ID: "a", Values: []float32{1, 2}}})
	require.NoError(t, err)
	_, err = c.Client.Insert(ctx, name, []api.Vector{{ID: "b", Values: []float32{1}}})
	var ge *grpcclient.Error
	require.ErrorAs(t, err, &ge, "the error of a gRPC call")
	assert.Equal(t, api.CodeInvalidArgument, ge.Code)

	require.NoError(t, stack.KillTierd(ctx))
	require.NoError(t, stack.StartTierd(ctx))
	_, err = c.Client.Insert(ctx, name, []api.Vector{{ID: "c", Values: []float32{3, 4}}})
	require.NoError(t, err, "the gRPC client reaches the restarted tierd")
	res, err := c.Client.Search(ctx, name, []float32{1, 2}, 5)
	require.NoError(t, err)
	assert.Len(t, res, 2)
	require.NoError(t, c.Client.DeleteCollection(ctx, name))
	_, err = c.Client.GetCollection(ctx, name)
	require.Equal(t, api.CodeNotFound, client.CodeOf(err))

	ops := c.Rec.Ops()
	require.Len(t, ops, 7)
	assert.Equal(t, history.Failed, ops[2].Outcome)
	assert.Equal(t, 400, ops[2].Status, "invalid_argument's HTTP status")
	assert.Equal(t, history.Failed, ops[6].Outcome)
	assert.Equal(t, 404, ops[6].Status)
	assert.Equal(t, api.CodeNotFound, ops[6].Code)
	c.Check(ctx, t, check.Config{}, name)
}

// TestCaseRefusesAnUnknownAPI: a case cannot start on an API tierd does
// not have.
func TestCaseRefusesAnUnknownAPI(t *testing.T) {
	_, _, err := stack.APIClient("soap")
	require.ErrorIs(t, err, tierd.ErrUnknownAPI)
}
