package stack

import (
	"fmt"
	"net/http"

	"go.uber.org/goleak"
)

// leakIgnores are the goroutines the leak check of an in-process run
// leaves alone: none. Everything a package's tests or the stack start
// (the service's goroutines, the HTTP keep-alive connections of the
// stack's clients) must be gone once the stack is closed; what runs for the whole process (the runtime's, the testing
// package's) runs before the stack starts, so the baseline covers it.
func leakIgnores() []goleak.Option { return nil }

// findLeaks reports the goroutines running now that were not running when
// base was taken (goleak.IgnoreCurrent) and are not in leakIgnores. goleak
// retries for a while, so goroutines that are ending get the time to.
func findLeaks(base goleak.Option) error {
	if err := goleak.Find(append(leakIgnores(), base)...); err != nil {
		return fmt.Errorf("stack: goroutines leaked by the tests or the stack: %w", err)
	}
	return nil
}

// closeIdleClients closes the idle keep-alive connections of the stack's
// HTTP clients, whose read and write loops are goroutines: the service's
// transports (Transport) and MinIO's, and http.DefaultTransport, which the
// Toxiproxy, S3 fault layer and data sidecar clients use.
func (s *Stack) closeIdleClients() {
	s.closeServiceIdle()
	if s.s3Transport != nil {
		s.s3Transport.CloseIdleConnections()
	}
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}
