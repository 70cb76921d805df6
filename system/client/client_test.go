package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
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

func TestAllPages(t *testing.T) {
	pages := map[string]api.VectorPage{
		"":  {Vectors: []api.Vector{{ID: "a"}}, Next: "a"},
		"a": {Vectors: []api.Vector{{ID: "b"}}, Next: "b"},
		"b": {Vectors: []api.Vector{{ID: "c"}}},
	}
	tests := []struct {
		name    string
		pages   map[string]api.VectorPage
		want    []string
		wantErr string
	}{
		{name: "walks to the page without a cursor", pages: pages, want: []string{"a", "b", "c"}},
		{name: "a cursor going back is an error", pages: map[string]api.VectorPage{
			"":  {Vectors: []api.Vector{{ID: "a"}}, Next: "m"},
			"m": {Vectors: []api.Vector{{ID: "n"}}, Next: "b"},
		}, want: []string{"a", "n"}, wantErr: `cursor went from "m" back to "b"`},
		{name: "a cursor standing still is an error", pages: map[string]api.VectorPage{
			"":  {Vectors: []api.Vector{{ID: "a"}}, Next: "a"},
			"a": {Next: "a"},
		}, want: []string{"a"}, wantErr: `cursor went from "a" back to "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := func(_ context.Context, name, after string, limit int) (api.VectorPage, error) {
				assert.Equal(t, "c", name)
				assert.Equal(t, 7, limit)
				return tt.pages[after], nil
			}
			got, err := AllPages(context.Background(), "c", 7, list)
			var ids []string
			for _, v := range got {
				ids = append(ids, v.ID)
			}
			assert.Equal(t, tt.want, ids)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
			}
		})
	}
}
