package httpop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
)

func TestDoStatusAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		case r.Method == http.MethodPost && r.Header.Get("X-Test") == "yes":
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ok"))
		}
	}))
	t.Cleanup(srv.Close)
	c := New(Options{MaxConns: 4, Timeout: 200 * time.Millisecond})
	t.Cleanup(c.Close)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		req  Request
		code string
	}{
		{"get ok", context.Background(), Request{URL: srv.URL}, ""},
		{"post with header", context.Background(), Request{Method: http.MethodPost, URL: srv.URL, Header: map[string]string{"X-Test": "yes"}, Body: []byte("x")}, ""},
		{"post 503", context.Background(), Request{Method: http.MethodPost, URL: srv.URL, Body: []byte("x")}, "http_503"},
		{"timeout", context.Background(), Request{URL: srv.URL + "/slow"}, load.CodeTimeout},
		{"empty url", context.Background(), Request{}, CodeBadRequest},
		{"cancelled", cancelled, Request{URL: srv.URL}, load.CodeCanceled},
		{"refused", context.Background(), Request{URL: "http://127.0.0.1:1/"}, load.CodeConnRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Op("x", 1, tt.req).Do(tt.ctx, 0)
			assert.Equal(t, tt.code, load.CodeOf(err), "err: %v", err)
		})
	}
}

func TestOpDrivesServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	c := New(Options{})
	t.Cleanup(c.Close)
	res, err := load.Run(context.Background(), load.Config{
		Ops: []load.Op{c.Op("get", 1, Request{URL: srv.URL})}, Rate: 500, Duration: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	assert.Equal(t, int64(100), res.Overall.OK)
}
