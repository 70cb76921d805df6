package server

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDataDirMatchIsAPath: the data folder counts only as a path of its
// own. Regression: with the container's data folder /data, every object
// key (collections/c/data/…) counted as a leak, so S3 errors lost the key
// and 4xx messages naming a key became generic.
func TestDataDirMatchIsAPath(t *testing.T) {
	cases := []struct {
		msg, dir string
		want     bool
	}{
		{"open /data/wal/wal-1.log: permission denied", "/data", true},
		{`read "/data": is a directory`, "/data", true},
		{"/data", "/data", true},
		{"put collections/c/data/1.parquet: connection reset", "/data", false},
		{"open /database/x: no such file", "/data", false},
		{"open /srv/data/x: no such file", "/data", false},
		{"open /tmp/t1/local/1/x.parquet: EIO", "/tmp/t1", true},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, containsPath(tc.msg, tc.dir), "%q in %q", tc.dir, tc.msg)
	}
}
