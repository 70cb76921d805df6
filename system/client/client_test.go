package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
)

func TestErrorAnswers(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		code   string
		msg    string
	}{
		{"api error", 409, `{"error":{"code":"transition_in_progress","message":"busy"}}`, api.CodeTransitionInProgress, "busy"},
		{"proxy error without a body", 502, "Bad Gateway", "", "Bad Gateway"},
		{"json without error", 500, `{"oops":1}`, "", `{"oops":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				require.Equal(t, "/v1/collections/a%2Fb/tier", r.URL.EscapedPath())
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			c := New(srv.URL+"/", WithHTTPClient(srv.Client()))
			_, err := c.SetTier(context.Background(), "a/b", api.TierCold)
			var ce *Error
			require.True(t, errors.As(err, &ce))
			require.Equal(t, tc.status, ce.StatusCode)
			require.Equal(t, tc.code, ce.Code)
			require.Equal(t, tc.msg, ce.Message)
			require.Equal(t, tc.code, CodeOf(err))
		})
	}
	require.Equal(t, "", CodeOf(errors.New("network")))
}
