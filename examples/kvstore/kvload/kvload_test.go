package kvload

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"gets only", Config{Get: 1}, true},
		{"no keys", Config{Keys: -1}, false},
		{"negative weight", Config{Get: 1, Put: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrConfig)
		})
	}
}

func TestOpsFollowTheWeights(t *testing.T) {
	s, err := New("http://127.0.0.1:1", Config{Get: 3, CAS: 1}, 0)
	require.NoError(t, err)
	var names []string
	for _, op := range (&workload{s: s}).Ops() {
		names = append(names, op.Name)
	}
	require.Equal(t, []string{OpGet, OpCAS}, names, "an op of weight 0 is left out")
}
