package kvclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIndeterminate: only errors after which the operation may have taken
// effect are indeterminate.
func TestIndeterminate(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", ErrNotFound, false},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
		{"bad key", &Error{Status: 400, Code: "bad_key"}, false},
		{"s3 unavailable", &Error{Status: 503, Code: "s3_unavailable"}, true},
		{"timeout", context.DeadlineExceeded, true},
		{"reset", errors.New("connection reset by peer"), true},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, Indeterminate(tc.err)) })
	}
}

// TestErrorAnswers: the client maps the store's error bodies.
func TestErrorAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"not_found","message":"no key a"}`))
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"code":"s3_unavailable","message":"put: timeout"}`))
		}
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, nil)
	_, err := c.Get(context.Background(), "a")
	require.ErrorIs(t, err, ErrNotFound)
	err = c.Put(context.Background(), "a", "1")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "s3_unavailable", e.Code)
	require.True(t, Indeterminate(err))
}
