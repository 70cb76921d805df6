package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/datavol"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want config
		err  string
	}{
		{"two-volumes", []string{"-listen", ":1", "-volume", "tierd=/v/tierd", "-volume", "minio=/v/minio"},
			config{listen: ":1", volumes: volumesFlag{"tierd": "/v/tierd", "minio": "/v/minio"}}, ""},
		{"default-listen", []string{"-volume", "tierd=/v"}, config{listen: ":9200", volumes: volumesFlag{"tierd": "/v"}}, ""},
		{"no-volume", nil, config{}, "no -volume"},
		{"relative-dir", []string{"-volume", "tierd=v"}, config{}, "absolute"},
		{"no-equals", []string{"-volume", "tierd"}, config{}, "name=/absolute/dir"},
		{"bad-name", []string{"-volume", "Tierd=/v"}, config{}, string(datavol.CodeBadPath)},
		{"duplicate", []string{"-volume", "tierd=/a", "-volume", "tierd=/b"}, config{}, "twice"},
		{"stray-argument", []string{"-volume", "tierd=/a", "x"}, config{}, "unexpected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, io.Discard)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRunRejectsMissingDirectory(t *testing.T) {
	require.Equal(t, 2, run([]string{"-volume", "tierd=/does/not/exist"}, io.Discard))
	require.Equal(t, 2, run([]string{"-bogus"}, io.Discard))
}
