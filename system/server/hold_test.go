package server_test

import (
	"sync"
	"testing"
	"time"
)

// hold is a server hook that stops every goroutine reaching one hook point
// until Release. It is released at t's cleanup too (registered before the
// server's own cleanup when holdAt is called first), so a failing test
// never leaves a transition parked.
type hold struct {
	point   string
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

// holdAt returns a hold at point that can count up to n parked goroutines.
func holdAt(t *testing.T, point string, n int) *hold {
	t.Helper()
	h := &hold{point: point, reached: make(chan struct{}, n), release: make(chan struct{})}
	t.Cleanup(h.Release)
	return h
}

// Hook is the function to give server.WithHook.
func (h *hold) Hook(point string) {
	if point == h.point {
		h.reached <- struct{}{}
		<-h.release
	}
}

// Wait blocks until n goroutines have reached the hold point, failing t
// after a minute.
func (h *hold) Wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.reached:
		case <-time.After(time.Minute):
			t.Fatalf("%d goroutines did not reach the hook point %q", n, h.point)
		}
	}
}

// Release lets every parked and future goroutine through.
func (h *hold) Release() { h.once.Do(func() { close(h.release) }) }
