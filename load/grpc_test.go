package load

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"
)

func TestGRPCStatusErrorCode(t *testing.T) {
	tests := []struct {
		status codes.Code
		want   string
	}{
		{codes.Unavailable, "grpc_unavailable"},
		{codes.ResourceExhausted, "grpc_resource_exhausted"},
		{codes.Unknown, "grpc_unknown"},
		{codes.DeadlineExceeded, CodeTimeout},
		{codes.Canceled, CodeCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.status.String(), func(t *testing.T) {
			err := &GRPCStatusError{Status: tt.status}
			assert.Equal(t, tt.want, CodeOf(err))
			assert.Contains(t, err.Error(), tt.status.String())
		})
	}
}
