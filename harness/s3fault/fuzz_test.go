package s3fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ruleCodes are the codes a rule the engine refuses may carry.
var ruleCodes = map[ErrorCode]bool{
	CodeInvalidRule: true, CodeInvalidOp: true, CodeInvalidKeyPattern: true, CodeInvalidTrigger: true,
	CodeInvalidAction: true, CodeActionNotApplicable: true,
}

// controlCodes are the codes of every control API error.
var controlCodes = map[ErrorCode]bool{
	CodeInvalidJSON: true, CodeRuleNotFound: true, CodeNotFound: true, CodeMethodNotAllowed: true,
	CodeUnauthorized: true,
}

func init() {
	for c := range ruleCodes {
		controlCodes[c] = true
	}
}

// decodeRuleJSON decodes a rule as the control API does (one value, no
// unknown fields).
func decodeRuleJSON(data []byte) (Rule, error) {
	var r Rule
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Rule{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Rule{}, errors.New("trailing data")
	}
	return r, nil
}

var ruleSeeds = []string{
	`{"ops":["PutObject"],"key":"collections/*","trigger":{"kind":"next","n":5},"action":{"kind":"slow_down","retry_after":"2s"}}`,
	`{"trigger":{"kind":"always"},"action":{"kind":"internal_error"}}`,
	`{"ops":["GetObject"],"key_regexp":"^a.*\\.parquet$","trigger":{"kind":"probability","p":0.5},"action":{"kind":"flip_bits","flips":3},"seed":7}`,
	`{"ops":["GetObject"],"trigger":{"kind":"every_nth","n":2},"action":{"kind":"truncate_body","bytes":10},"after":1,"max_fires":2}`,
	`{"ops":["PutObject","UploadPart"],"trigger":{"kind":"next","n":1},"action":{"kind":"cut_request_body","bytes":100}}`,
	`{"trigger":{"kind":"always"},"action":{"kind":"delay","latency":"10ms","jitter":"5ms"}}`,
	`{"trigger":{"kind":"always"},"action":{"kind":"error","status":403,"code":"AccessDenied"}}`,
	`{"ops":["GetObject"],"trigger":{"kind":"next","n":1},"action":{"kind":"misdirect","prefix_depth":2}}`,
	`{"key":"a\\*b?c\\","trigger":{"kind":"always"},"action":{"kind":"internal_error"}}`,
	`{"key":"x","key_regexp":"y","trigger":{"kind":"always"},"action":{"kind":"internal_error"}}`,
	`{"trigger":{"kind":"next","n":0},"action":{"kind":"internal_error"}}`,
	`{"bucket":"a/b","trigger":{"kind":"always"},"action":{"kind":"slow_down","retry_after":5}}`,
	`{`, `null`, `[]`, `{"action":{"kind":"delay","latency":"-1s"}}`,
}

// FuzzRule feeds arbitrary JSON to the rule decoder, validation and the
// engine, then matches the rule against a request: it never panics; a
// refused rule is a *RuleError with a known code and field; an accepted
// rule round-trips through JSON; a literal key glob matches exactly its
// own key.
func FuzzRule(f *testing.F) {
	for i, s := range ruleSeeds {
		f.Add([]byte(s), "b", "collections/c1/data/x.parquet", uint8(i))
	}
	ops := AllOps()
	f.Fuzz(func(t *testing.T, data []byte, bucket, key string, opIdx uint8) {
		r, err := decodeRuleJSON(data)
		if err != nil {
			return // the control API answers invalid_json
		}
		// With and without credentials: misdirect depends on them.
		for _, opts := range [][]ProxyOption{nil, {WithCredentials(Credentials{AccessKey: "ak", SecretKey: "secret-key"})}} {
			p, err := NewProxy("http://127.0.0.1:1", opts...)
			require.NoError(t, err)
			defer p.Close()
			st, err := p.AddRule(r)
			if err != nil {
				var re *RuleError
				require.ErrorAs(t, err, &re, "a refused rule gives a *RuleError: %v", err)
				require.True(t, ruleCodes[re.Code], "code %q is a rule code", re.Code)
				require.NotEmpty(t, re.Field, "the offending field is named")
				require.ErrorIs(t, err, ErrInvalidRule)
				continue
			}
			// Accepted: the stored rule round-trips and is still valid.
			raw, err := json.Marshal(st.Rule)
			require.NoError(t, err)
			back, err := decodeRuleJSON(raw)
			require.NoError(t, err, "%s", raw)
			require.NoError(t, back.Validate(), "%s", raw)
			require.Equal(t, st.Rule, back)

			req := Request{Op: ops[int(opIdx)%len(ops)], Bucket: bucket, Key: key}
			for range 3 {
				p.engine.decide(req)
			}
			m, err := compileKey(r)
			require.NoError(t, err)
			if r.Key != "" && !strings.ContainsAny(r.Key, `*?\`) {
				require.Equal(t, key == r.Key, m(key), "literal glob %q against %q", r.Key, key)
				require.True(t, m(r.Key), "literal glob %q matches itself", r.Key)
			}
			if r.Key == "*" {
				require.True(t, m(key), "* matches every key")
			}
		}
	})
}

// FuzzControlRequest sends arbitrary control requests (method, path,
// Authorization header, body) to the control API: it never panics, every
// answer has a known status, every error is an ErrorBody with a known
// code, and a request without the token is always 401 and changes nothing.
func FuzzControlRequest(f *testing.F) {
	good := "Bearer " + testToken
	for _, s := range ruleSeeds {
		f.Add("POST", PathRules, good, []byte(s))
	}
	for _, c := range []struct{ method, path, auth, body string }{
		{"GET", PathHealth, good, ""}, {"GET", PathRules, good, ""}, {"DELETE", PathRules, good, ""},
		{"GET", PathRules + "/r1", good, ""}, {"DELETE", PathRules + "/r%2f1", good, ""},
		{"GET", PathStats, good, ""}, {"POST", PathStatsReset, good, ""}, {"POST", PathReset, good, ""},
		{"GET", PathJournal, good, ""}, {"PUT", PathSeed, good, `{"seed":18446744073709551615}`},
		{"PUT", PathSeed, good, `{"seed":-1}`}, {"PUT", PathSeed, good, `{}`}, {"GET", PathSeed, good, ""},
		{"POST", PathUpstreamCloseIdle, good, ""}, {"PATCH", PathRules, good, ""},
		{"GET", "/v1/../v1/rules", good, ""}, {"GET", "//v1/rules", good, ""},
		{"POST", PathRules, "", `{"trigger":{"kind":"always"},"action":{"kind":"internal_error"}}`},
		{"POST", PathRules, "bearer " + testToken, `{"trigger":{"kind":"always"},"action":{"kind":"internal_error"}}`},
		{"POST", PathRules, "Bearer  " + testToken + " ", ""}, {"GET", PathRules, "Basic eDp5", ""},
	} {
		f.Add(c.method, c.path, c.auth, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, method, path, auth string, body []byte) {
		p, err := NewProxy("http://127.0.0.1:1")
		require.NoError(t, err)
		defer p.Close()
		h, err := NewControlHandler(p, testToken)
		require.NoError(t, err)
		u := &url.URL{Path: path}
		req := &http.Request{
			Method: method, URL: u, RequestURI: u.RequestURI(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "s3fault", Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		authorized := bearerOK(auth)
		switch rec.Code {
		case http.StatusOK, http.StatusCreated, http.StatusNoContent:
			require.True(t, authorized, "%s %q with %q: %d", method, path, auth, rec.Code)
			return
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			// ServeMux cleans paths ("//v1/rules") by redirecting.
			require.True(t, authorized, "%s %q with %q: redirect without the token", method, path, auth)
			return
		case http.StatusUnauthorized:
			require.False(t, authorized, "%s %q with the token: 401", method, path)
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
			require.True(t, authorized, "%s %q with %q: %d", method, path, auth, rec.Code)
		default:
			t.Fatalf("%s %q: unexpected status %d: %s", method, path, rec.Code, rec.Body)
		}
		var eb ErrorBody
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb), "error body %q", rec.Body)
		require.True(t, controlCodes[eb.Error.Code], "code %q is a control code", eb.Error.Code)
		require.NotEmpty(t, eb.Error.Message)
		if !authorized {
			require.Equal(t, CodeUnauthorized, eb.Error.Code)
			require.Empty(t, p.Rules(), "a refused request added no rule")
			require.Equal(t, uint64(0), p.Seed(), "a refused request set no seed")
		}
	})
}

// bearerOK is the fuzz test's own reading of RFC 6750 for the test token.
func bearerOK(h string) bool {
	scheme, tok, ok := strings.Cut(h, " ")
	return ok && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(tok) == testToken
}
