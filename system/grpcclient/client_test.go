package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcapi"
)

// TestWrap: how a call's error reaches the caller.
func TestWrap(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		code   string
		status codes.Code
	}{
		{"tierd status", grpcapi.Status(api.CodeNotFound, "gone").Err(), api.CodeNotFound, codes.NotFound},
		{"tierd status, shared gRPC code", grpcapi.Status(api.CodeQuotaExceeded, "full").Err(), api.CodeQuotaExceeded, codes.ResourceExhausted},
		{"message over the size limit", status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), api.CodePayloadTooLarge, codes.ResourceExhausted},
		{"library status without a code", status.Error(codes.Unavailable, "connection refused"), "", codes.Unavailable},
		{"foreign ErrorInfo domain", foreignInfo(t), "", codes.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := wrap("Get", tc.err)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.code, client.CodeOf(err))
			assert.Equal(t, tc.status, e.Status)
			assert.Equal(t, "Get", e.Method)
		})
	}
	require.NoError(t, wrap("Get", nil))
	cancelled := wrap("Get", status.FromContextError(context.Canceled).Err())
	assert.Empty(t, client.CodeOf(cancelled))
	plain := wrap("Get", errors.New("boom"))
	assert.ErrorContains(t, plain, "tierd gRPC Get: boom")
	assert.Empty(t, client.CodeOf(fmt.Errorf("x: %w", plain)))
}

// foreignInfo is a status whose ErrorInfo belongs to another domain.
func foreignInfo(t *testing.T) error {
	t.Helper()
	st := status.New(codes.NotFound, "elsewhere")
	withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: api.CodeNotFound, Domain: "other"})
	require.NoError(t, err)
	return withInfo.Err()
}
