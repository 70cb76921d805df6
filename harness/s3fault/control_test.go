package s3fault

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientRuleLifecycle(t *testing.T) {
	s := newTestStack(t, WithSeed(77))
	ctx := t.Context()

	h, err := s.ctl.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, Health{Status: "ok", Upstream: s.s3.URL(), Rules: 0}, h)

	rule := Rule{Name: "throttle", Ops: []Op{OpPutObject}, Key: "collections/*", Trigger: Next(5), Action: SlowDown(2 * time.Second)}
	st, err := s.ctl.AddRuleStatus(ctx, rule)
	require.NoError(t, err)
	assert.Equal(t, "r1", st.ID)
	assert.Equal(t, rule, st.Rule)
	assert.Equal(t, uint64(77), st.Seed, "no rule seed: the layer seed")

	id2, err := s.ctl.AddRule(ctx, Rule{Trigger: Probability(0.1), Seed: SeedOf(5), Action: Delay(time.Millisecond, 0)})
	require.NoError(t, err)
	assert.Equal(t, "r2", id2)

	rules, err := s.ctl.Rules(ctx)
	require.NoError(t, err)
	require.Len(t, rules, 2)
	assert.Equal(t, []string{"r1", "r2"}, []string{rules[0].ID, rules[1].ID})
	assert.Equal(t, uint64(5), rules[1].Seed)

	got, err := s.ctl.Rule(ctx, id2)
	require.NoError(t, err)
	assert.Equal(t, rules[1], got)

	require.NoError(t, s.ctl.DeleteRule(ctx, "r1"))
	err = s.ctl.DeleteRule(ctx, "r1")
	require.ErrorIs(t, err, ErrRuleNotFound)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)
	assert.Equal(t, CodeRuleNotFound, apiErr.Code)
	_, err = s.ctl.Rule(ctx, "r1")
	require.ErrorIs(t, err, ErrRuleNotFound)

	n, err := s.ctl.DeleteAllRules(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	rules, err = s.ctl.Rules(ctx)
	require.NoError(t, err)
	assert.Empty(t, rules)

	seed, err := s.ctl.Seed(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(77), seed)
	require.NoError(t, s.ctl.SetSeed(ctx, 1<<63+5))
	seed, err = s.ctl.Seed(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<63+5), seed, "full uint64 range survives JSON")
	st, err = s.ctl.AddRuleStatus(ctx, Rule{Trigger: Always(), Action: InternalError()})
	require.NoError(t, err)
	assert.Equal(t, "r3", st.ID, "ids are never reused")
	assert.Equal(t, uint64(1<<63+5), st.Seed)
}

func TestClientInvalidRule(t *testing.T) {
	s := newTestStack(t)
	tests := []struct {
		name      string
		rule      Rule
		wantCode  ErrorCode
		wantField string
	}{
		{"missing trigger", Rule{Action: InternalError()}, CodeInvalidTrigger, "trigger.kind"},
		{"bad op", Rule{Ops: []Op{"Put"}, Trigger: Always(), Action: InternalError()}, CodeInvalidOp, "ops[0]"},
		{"bad regexp", Rule{KeyRegexp: "(", Trigger: Always(), Action: InternalError()}, CodeInvalidKeyPattern, "key_regexp"},
		{"not applicable", Rule{Ops: []Op{OpPutObject}, Trigger: Always(), Action: FlipBits(1)}, CodeActionNotApplicable, "ops[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ctl.AddRule(t.Context(), tt.rule)
			require.ErrorIs(t, err, ErrInvalidRule)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			assert.Equal(t, tt.wantField, apiErr.Field)
			assert.NotEmpty(t, apiErr.Message)
		})
	}
	rules, err := s.ctl.Rules(t.Context())
	require.NoError(t, err)
	assert.Empty(t, rules, "no invalid rule was stored")
}

// TestControlHTTPErrors drives the control API with raw HTTP, as a non-Go
// user would.
func TestControlHTTPErrors(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithLogger(testLogger(t)))
	require.NoError(t, err)
	srv := httptest.NewServer(newTestControlHandler(t, p))
	t.Cleanup(srv.Close)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   ErrorCode
	}{
		{"not json", "POST", "/v1/rules", "{", 400, CodeInvalidJSON},
		{"unknown field", "POST", "/v1/rules", `{"trigger":{"kind":"always"},"action":{"kind":"internal_error"},"tigger":1}`, 400, CodeInvalidJSON},
		{"trailing data", "POST", "/v1/rules", `{"trigger":{"kind":"always"},"action":{"kind":"internal_error"}} {}`, 400, CodeInvalidJSON},
		{"numeric duration", "POST", "/v1/rules", `{"trigger":{"kind":"always"},"action":{"kind":"slow_down","retry_after":5}}`, 400, CodeInvalidJSON},
		{"bad trigger", "POST", "/v1/rules", `{"trigger":{"kind":"next","n":0},"action":{"kind":"internal_error"}}`, 400, CodeInvalidTrigger},
		{"bad action", "POST", "/v1/rules", `{"trigger":{"kind":"always"},"action":{"kind":"delay"}}`, 400, CodeInvalidAction},
		{"too large", "POST", "/v1/rules", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 400, CodeInvalidJSON},
		{"unknown rule", "GET", "/v1/rules/r99", "", 404, CodeRuleNotFound},
		{"unknown endpoint", "GET", "/v2/rules", "", 404, CodeNotFound},
		{"wrong method", "PATCH", "/v1/rules", "", 405, CodeMethodNotAllowed},
		{"stats reset needs POST", "GET", "/v1/stats/reset", "", 405, CodeMethodNotAllowed},
		{"journal is read-only", "DELETE", "/v1/journal", "", 405, CodeMethodNotAllowed},
		{"seed missing", "PUT", "/v1/seed", `{}`, 400, CodeInvalidJSON},
		{"seed negative", "PUT", "/v1/seed", `{"seed":-1}`, 400, CodeInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var eb ErrorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
			assert.Equal(t, tt.wantCode, eb.Error.Code)
			assert.NotEmpty(t, eb.Error.Message)
		})
	}
}

func TestControlHTTPRuleShape(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithLogger(testLogger(t)))
	require.NoError(t, err)
	srv := httptest.NewServer(newTestControlHandler(t, p))
	t.Cleanup(srv.Close)
	body := `{"ops":["PutObject"],"key":"collections/*","trigger":{"kind":"next","n":5},"action":{"kind":"slow_down","retry_after":"2s"}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/rules", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var st RuleStatus
	require.NoError(t, json.Unmarshal(raw, &st))
	assert.Equal(t, Rule{Ops: []Op{OpPutObject}, Key: "collections/*", Trigger: Next(5), Action: SlowDown(2 * time.Second)}, st.Rule)
	assert.Contains(t, string(raw), `"retry_after": "2s"`)
}

func TestNewClientRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "localhost:9100", "ftp://h", "http://", "http://h?x", "://"} {
		_, err := NewClient(u)
		assert.True(t, errors.Is(err, ErrInvalidBaseURL), "%q: %v", u, err)
	}
	c, err := NewClient("http://127.0.0.1:1/")
	require.NoError(t, err)
	_, err = c.Health(t.Context())
	require.Error(t, err, "nothing listens there")
	var apiErr *APIError
	assert.False(t, errors.As(err, &apiErr), "a transport error is not an API error")
}
