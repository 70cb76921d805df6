//go:build !e2e

package uploader

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (a batch flusher, an
// upload, a connection of a store) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
