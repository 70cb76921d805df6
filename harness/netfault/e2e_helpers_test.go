//go:build e2e

package netfault_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/harness/tierd"
)

// stack is the package's shared stack, set once by TestMain.
var stack *tierd.Stack

func TestMain(m *testing.M) {
	os.Exit(tierd.Main(m, tierd.Options{}, func(s *tierd.Stack) { stack = s }))
}

// env is one test's view of the stack: the fault API on the S3 proxy and
// host-side clients whose traffic runs through that proxy.
type env struct {
	t     *testing.T
	proxy *netfault.Proxy
	// hc keeps connections alive, like tierd's S3 client does.
	hc *http.Client
	// fresh dials a new connection for every request, so that each
	// request draws the toxicity anew.
	fresh *http.Client
	// s3 is a minio-go client through the proxy.
	s3       *minio.Client
	endpoint string
}

// newEnv wraps the S3 proxy and checks, after all the test's own cleanups
// have run, that no toxic is left and the proxy lets traffic through.
func newEnv(t *testing.T) *env {
	t.Helper()
	p, err := netfault.New(stack.S3Proxy)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ts, err := p.Toxics(ctx)
		if !t.Failed() {
			// Every fault of the test must be gone by now.
			if err == nil && len(ts) > 0 {
				t.Errorf("toxics left on the proxy after the test: %+v", ts)
			}
		}
		// Leave a clean proxy to the next test in any case.
		if err := p.Clear(ctx); err != nil {
			t.Errorf("clear: %v", err)
		}
	})
	accessKey, secretKey := stack.S3Credentials()
	s3, err := minio.New(stack.S3ProxyEndpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:     "us-east-1",
		MaxRetries: 1,
	})
	require.NoError(t, err)
	e := &env{
		t:        t,
		proxy:    p,
		hc:       &http.Client{Transport: transport(false)},
		fresh:    &http.Client{Transport: transport(true)},
		s3:       s3,
		endpoint: stack.S3ProxyEndpoint,
	}
	t.Cleanup(e.hc.CloseIdleConnections)
	// The proxy works before the test starts.
	e.ok(e.health(e.hc, 10*time.Second))
	return e
}

func transport(noKeepAlive bool) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		DisableKeepAlives:   noKeepAlive,
		DisableCompression:  true,
	}
}

// result is the outcome of one request as the client saw it.
type result struct {
	elapsed time.Duration
	status  int
	n       int64 // body bytes read
	reused  bool  // the (last) connection used was a kept-alive one
	err     error
}

// do sends one request with a deadline and reads the whole response.
func (e *env) do(hc *http.Client, method, url string, body []byte, timeout time.Duration) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), timeout)
	defer cancel()
	var r result
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { r.reused = ci.Reused },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(e.t, err)
	if method == http.MethodPut {
		// An S3 PUT is idempotent. Saying so (a nil header is not sent)
		// lets Go's transport retry a PUT that raced the close of its idle
		// connection, which Apply causes on purpose, as it does for GETs.
		req.Header["Idempotency-Key"] = nil
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err == nil {
		r.status = resp.StatusCode
		r.n, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	r.elapsed, r.err = time.Since(start), err
	return r
}

func (e *env) healthURL() string { return "http://" + e.endpoint + "/minio/health/live" }

func (e *env) health(hc *http.Client, timeout time.Duration) result {
	e.t.Helper()
	return e.do(hc, http.MethodGet, e.healthURL(), nil, timeout)
}

// ok requires a successful 2xx exchange.
func (e *env) ok(r result) result {
	e.t.Helper()
	require.NoError(e.t, r.err, "after %v, on a reused connection: %v", r.elapsed, r.reused)
	require.True(e.t, r.status >= 200 && r.status < 300, "status %d", r.status)
	return r
}

// fastest runs fn n times, requires every run to succeed and returns the
// shortest time: used to show a delay is gone after removal, with margin
// against a slow machine.
func (e *env) fastest(n int, fn func() result) time.Duration {
	e.t.Helper()
	best := time.Duration(1<<63 - 1)
	for range n {
		best = min(best, e.ok(fn()).elapsed)
	}
	return best
}

// object stores size random bytes under a key unique to the test, directly
// in MinIO (bypassing the proxy), and returns key and data.
func (e *env) object(name string, size int) (string, []byte) {
	e.t.Helper()
	data := make([]byte, size)
	_, err := rand.Read(data)
	require.NoError(e.t, err)
	key := "netfault-test/" + strings.ReplaceAll(e.t.Name(), "/", "_") + "/" + name
	_, err = stack.S3.PutObject(e.t.Context(), tierd.Bucket, key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{})
	require.NoError(e.t, err)
	return key, data
}

// getURL and putURL are presigned URLs through the proxy.
func (e *env) getURL(key string) string {
	e.t.Helper()
	u, err := e.s3.PresignedGetObject(e.t.Context(), tierd.Bucket, key, time.Hour, nil)
	require.NoError(e.t, err)
	return u.String()
}

func (e *env) putURL(key string) string {
	e.t.Helper()
	u, err := e.s3.PresignedPutObject(e.t.Context(), tierd.Bucket, key, time.Hour)
	require.NoError(e.t, err)
	return u.String()
}

// noToxics requires that the proxy carries none of the given toxic names
// (none at all when names is empty).
func (e *env) noToxics(names ...string) {
	e.t.Helper()
	ts, err := e.proxy.Toxics(e.t.Context())
	require.NoError(e.t, err)
	for _, tx := range ts {
		if len(names) == 0 || slices.Contains(names, tx.Name) {
			e.t.Fatalf("toxic %s (%s) still on the proxy", tx.Name, tx.Type)
		}
	}
}

// errClass is how a client-side failure looks, independent of its text.
type errClass string

const (
	classNone    errClass = "none"
	classTimeout errClass = "timeout" // the client's deadline passed
	classClosed  errClass = "closed"  // the connection was closed or reset under the exchange
	classRefused errClass = "refused" // nothing accepted the connection
	classOther   errClass = "other"
)

func classify(err error) errClass {
	var ne net.Error
	switch {
	case err == nil:
		return classNone
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return classTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return classRefused
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return classClosed
	}
	// minio-go replaces an EOF from the transport with an untyped
	// "Connection closed by foreign host" error; its own classifier is the
	// way to recognise that (timeouts and refusals were sorted out above).
	if minio.IsNetworkOrHostDown(err, false) {
		return classClosed
	}
	// net/http's error for a kept-alive connection closed before its
	// request was answered is unexported; only its text names it.
	if strings.Contains(err.Error(), "server closed idle connection") {
		return classClosed
	}
	return classOther
}

// atLeast requires d >= want minus a 5% margin for clock granularity.
func atLeast(t *testing.T, d, want time.Duration, what string) {
	t.Helper()
	require.GreaterOrEqualf(t, d, want*95/100, "%s took %v, the fault should make it take at least %v", what, d, want)
}

// rawExchange sends one HTTP/1.1 health request over a new TCP connection
// and reads the answer. With connectionClose the request asks MinIO to
// close after answering; with halfClose the client then closes its sending
// side (MinIO closes on seeing that). It reads on until the connection's
// far side closes and returns the time from the client's last action (the
// request, or the half-close) to that close.
func (e *env) rawExchange(connectionClose, halfClose bool) (time.Duration, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 10*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.endpoint)
	require.NoError(e.t, err)
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	require.NoError(e.t, conn.SetDeadline(deadline))
	req := "GET /minio/health/live HTTP/1.1\r\nHost: " + e.endpoint + "\r\n"
	if connectionClose {
		req += "Connection: close\r\n"
	}
	start := time.Now()
	_, err = io.WriteString(conn, req+"\r\n")
	require.NoError(e.t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	if halfClose {
		start = time.Now()
		require.NoError(e.t, conn.(*net.TCPConn).CloseWrite())
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		return 0, err
	}
	if len(rest) > 0 {
		return 0, fmt.Errorf("%d unexpected bytes after the response", len(rest))
	}
	return time.Since(start), nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// readAll reads r into *buf and returns how much it read.
func readAll(r io.Reader, buf *[]byte) (int64, error) {
	b := bytes.NewBuffer(*buf)
	n, err := b.ReadFrom(r)
	*buf = b.Bytes()
	return n, err
}
