//go:build e2e

package uploader_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tierchaos/tierchaos/harness/tierd"
)

// TestMain runs the package's e2e tests against the harness stack's MinIO
// and Toxiproxy: it points the TIERCHAOS_S3_* and TIERCHAOS_TOXIPROXY_*
// variables the tests read at the stack (direct MinIO, and the Toxiproxy
// proxy in front of it), unless the caller set them already.
func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{}, func(s *tierd.Stack) {
		accessKey, secretKey := s.S3Credentials()
		for k, v := range map[string]string{
			"TIERCHAOS_S3_ENDPOINT":       s.S3Endpoint,
			"TIERCHAOS_S3_PROXY_ENDPOINT": s.S3ProxyEndpoint,
			"TIERCHAOS_S3_ACCESS_KEY":     accessKey,
			"TIERCHAOS_S3_SECRET_KEY":     secretKey,
			"TIERCHAOS_S3_BUCKET":         tierd.Bucket,
			"TIERCHAOS_TOXIPROXY_URL":     s.ToxiproxyURL,
			"TIERCHAOS_TOXIPROXY_PROXY":   tierd.S3ProxyName,
		} {
			if os.Getenv(k) != "" {
				continue
			}
			if err := os.Setenv(k, v); err != nil {
				fmt.Fprintf(os.Stderr, "uploader e2e: %v\n", err)
				os.Exit(1)
			}
		}
	}))
}
