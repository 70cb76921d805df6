package kv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFromEnv: defaults, and every bad or missing setting named in one
// error.
func TestFromEnv(t *testing.T) {
	full := map[string]string{
		"KVSTORE_S3_ENDPOINT": "s3fault:9000", "KVSTORE_S3_ACCESS_KEY": "a", "KVSTORE_S3_SECRET_KEY": "s", "KVSTORE_S3_BUCKET": "b",
	}
	for _, tc := range []struct {
		name   string
		change map[string]string
		want   []string
	}{
		{name: "defaults"},
		{name: "unsafe", change: map[string]string{"KVSTORE_UNSAFE_ACK": "true", "KVSTORE_S3_TIMEOUT": "500ms"}},
		{name: "bad values", change: map[string]string{"KVSTORE_UNSAFE_ACK": "maybe", "KVSTORE_S3_TIMEOUT": "-1s"},
			want: []string{"KVSTORE_UNSAFE_ACK", "KVSTORE_S3_TIMEOUT"}},
		{name: "missing", change: map[string]string{"KVSTORE_S3_BUCKET": "", "KVSTORE_S3_ENDPOINT": ""},
			want: []string{"KVSTORE_S3_BUCKET is not set", "KVSTORE_S3_ENDPOINT is not set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range full {
				env[k] = v
			}
			for k, v := range tc.change {
				env[k] = v
			}
			c, err := FromEnv(func(k string) string { return env[k] })
			if len(tc.want) > 0 {
				for _, w := range tc.want {
					require.ErrorContains(t, err, w)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, ":8080", c.Listen)
			require.Equal(t, tc.name == "unsafe", c.UnsafeAck)
			if tc.name == "unsafe" {
				require.Equal(t, 500*time.Millisecond, c.S3Timeout)
			} else {
				require.Equal(t, 2*time.Second, c.S3Timeout)
			}
		})
	}
}
