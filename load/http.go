package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// StatusError is returned by HTTP ops for a response status of 400 or more.
// Its code is "http_<status>".
type StatusError struct {
	Status int
}

func (e *StatusError) Error() string     { return fmt.Sprintf("http status %d", e.Status) }
func (e *StatusError) ErrorCode() string { return "http_" + strconv.Itoa(e.Status) }

// NewHTTPClient returns a client tuned for load generation: keep-alive with
// an idle pool as large as maxConns, so an open-loop burst reuses
// connections instead of opening and closing one per request.
func NewHTTPClient(maxConns int) *http.Client {
	if maxConns <= 0 {
		maxConns = DefaultMaxInFlight
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr}
}

// HTTPRequest describes a fixed HTTP request for HTTPOp.
type HTTPRequest struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// HTTPOp returns an op that sends req with client, reads the whole response
// body and fails with a *StatusError for a status of 400 or more.
func HTTPOp(name string, weight float64, client *http.Client, req HTTPRequest) Op {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	return Op{Name: name, Weight: weight, Do: func(ctx context.Context, _ uint64) error {
		var body io.Reader
		if req.Body != nil {
			body = bytes.NewReader(req.Body)
		}
		r, err := http.NewRequestWithContext(ctx, method, req.URL, body)
		if err != nil {
			return WithCode("bad_request", err)
		}
		for k, v := range req.Header {
			r.Header[k] = v
		}
		return DoHTTP(client, r)
	}}
}

// DoHTTP sends r, drains and closes the response body (so the connection is
// reused), and returns a *StatusError for a status of 400 or more.
func DoHTTP(client *http.Client, r *http.Request) error {
	resp, err := client.Do(r)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	cerr := resp.Body.Close()
	if resp.StatusCode >= 400 {
		return &StatusError{Status: resp.StatusCode}
	}
	if err != nil {
		return err
	}
	return cerr
}
