package stack

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestFindLeaks shows the check failing on a goroutine started after the
// baseline and passing once it ended.
func TestFindLeaks(t *testing.T) {
	base := goleak.IgnoreCurrent()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	err := findLeaks(base)
	require.Error(t, err, "a goroutine still runs")
	require.Contains(t, err.Error(), "TestFindLeaks")
	close(stop)
	<-done
	require.NoError(t, findLeaks(base))
}

// TestCloseIdleClients: an idle keep-alive connection of the default
// transport is a pair of goroutines the leak check sees, and
// closeIdleClients ends them.
func TestCloseIdleClients(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	base := goleak.IgnoreCurrent()
	resp, err := http.Get("http://" + ln.Addr().String())
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Error(t, findLeaks(base), "the idle connection's goroutines run")
	(&Stack{}).closeIdleClients()
	require.NoError(t, findLeaks(base), "closed")
}
