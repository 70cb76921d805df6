package s3fault

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testToken is the control API token of the package's tests.
const testToken = "test-control-token-0123456789abcdef"

// newTestControlHandler is the control API of p guarded by testToken.
func newTestControlHandler(t *testing.T, p *Proxy) http.Handler {
	t.Helper()
	h, err := NewControlHandler(p, testToken)
	require.NoError(t, err)
	return h
}

// TestControlNeedsToken sends every control endpoint without the token,
// with a wrong one and with the right one: only the last gets through, and
// nothing the others asked for happened.
func TestControlNeedsToken(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	srv := httptest.NewServer(newTestControlHandler(t, p))
	t.Cleanup(srv.Close)

	rule := `{"trigger":{"kind":"always"},"action":{"kind":"internal_error"}}`
	endpoints := []struct{ method, path, body string }{
		{"GET", PathHealth, ""},
		{"POST", PathRules, rule},
		{"GET", PathRules, ""},
		{"DELETE", PathRules, ""},
		{"GET", PathRules + "/r1", ""},
		{"DELETE", PathRules + "/r1", ""},
		{"GET", PathStats, ""},
		{"POST", PathStatsReset, ""},
		{"POST", PathReset, ""},
		{"GET", PathJournal, ""},
		{"GET", PathSeed, ""},
		{"PUT", PathSeed, `{"seed":7}`},
		{"POST", PathUpstreamCloseIdle, ""},
		{"GET", "/v2/unknown", ""},
	}
	headers := []struct{ name, value string }{
		{"none", ""},
		{"wrong token", "Bearer " + strings.Repeat("x", len(testToken))},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1]},
		{"token with suffix", "Bearer " + testToken + "x"},
		{"basic scheme", "Basic " + testToken},
		{"no scheme", testToken},
		{"empty bearer", "Bearer "},
	}
	for _, e := range endpoints {
		for _, h := range headers {
			t.Run(e.method+" "+e.path+"/"+h.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(t.Context(), e.method, srv.URL+e.path, strings.NewReader(e.body))
				require.NoError(t, err)
				if h.value != "" {
					req.Header.Set("Authorization", h.value)
				}
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
				assert.Equal(t, `Bearer realm="s3fault"`, resp.Header.Get("WWW-Authenticate"))
				var eb ErrorBody
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
				assert.Equal(t, CodeUnauthorized, eb.Error.Code)
			})
		}
	}
	assert.Empty(t, p.Rules(), "no refused request added a rule")
	assert.Equal(t, uint64(0), p.Seed(), "no refused request set the seed")

	// The right token, with the scheme in any case, gets through.
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+PathRules, strings.NewReader(rule))
		require.NoError(t, err)
		req.Header.Set("Authorization", scheme+" "+testToken)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusCreated, resp.StatusCode, scheme)
	}
	assert.Len(t, p.Rules(), 3)
}

// TestClientToken: the Client sends its token; without it, or with another,
// every call fails with an error matching ErrUnauthorized.
func TestClientToken(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	srv := httptest.NewServer(newTestControlHandler(t, p))
	t.Cleanup(srv.Close)

	for name, opts := range map[string][]ClientOption{
		"no token":    nil,
		"wrong token": {WithToken("another-token-of-enough-length")},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := NewClient(srv.URL, opts...)
			require.NoError(t, err)
			_, err = c.Health(t.Context())
			require.ErrorIs(t, err, ErrUnauthorized)
			var apiErr *APIError
			require.True(t, errors.As(err, &apiErr))
			assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
			require.ErrorIs(t, c.Reset(t.Context()), ErrUnauthorized)
			_, err = c.AddRule(t.Context(), Rule{Trigger: Always(), Action: InternalError()})
			require.ErrorIs(t, err, ErrUnauthorized)
		})
	}
	c, err := NewClient(srv.URL, WithToken(testToken))
	require.NoError(t, err)
	h, err := c.Health(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "ok", h.Status)
	_, err = c.AddRule(t.Context(), Rule{Trigger: Always(), Action: InternalError()})
	require.NoError(t, err)
	assert.Len(t, p.Rules(), 1)
}

func TestNewControlHandlerRefusesWeakToken(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	for _, tok := range []string{"", "short", strings.Repeat("x", MinTokenLen-1)} {
		_, err := NewControlHandler(p, tok)
		require.ErrorIs(t, err, ErrWeakToken, "%q", tok)
	}
	_, err = NewControlHandler(p, strings.Repeat("x", MinTokenLen))
	require.NoError(t, err)
}

// TestInsecureControlHandler serves without a token, as s3faultd does with
// -insecure-control.
func TestInsecureControlHandler(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	srv := httptest.NewServer(NewInsecureControlHandler(p))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL)
	require.NoError(t, err)
	_, err = c.Health(t.Context())
	require.NoError(t, err)
}

// ctlDo sends a raw control request with the test token, as curl would.
func ctlDo(t *testing.T, hc *http.Client, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	return resp
}
