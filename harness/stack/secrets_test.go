package stack

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewSecrets(t *testing.T) {
	a, err := newSecrets()
	require.NoError(t, err)
	b, err := newSecrets()
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		got, two string
		min, max int
	}{
		{"access key", a.accessKey, b.accessKey, 3, 20},
		{"secret key", a.secretKey, b.secretKey, 8, 40},
		{"s3fault token", a.s3faultToken, b.s3faultToken, 32, 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.GreaterOrEqual(t, len(tc.got), tc.min)
			require.LessOrEqual(t, len(tc.got), tc.max)
			_, err := hex.DecodeString(tc.got)
			require.NoError(t, err, "hex only: %q", tc.got)
			require.NotEqual(t, tc.got, tc.two, "two draws differ")
		})
	}
	require.NotEqual(t, a.accessKey, "tierchaos")
}
