package profiling

import (
	"testing"

	"go.uber.org/goleak"
)

// Sessions run captures in goroutines; none may outlive Finish.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
