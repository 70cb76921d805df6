package tierd

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAPI(t *testing.T) {
	tests := []struct {
		in   string
		want API
		ok   bool
	}{
		{"", APIREST, true},
		{"rest", APIREST, true},
		{"grpc", APIGRPC, true},
		{"GRPC", "", false},
		{"http", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAPI(tt.in)
			if !tt.ok {
				require.ErrorIs(t, err, ErrUnknownAPI)
				assert.ErrorContains(t, err, `want "rest" or "grpc"`)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
