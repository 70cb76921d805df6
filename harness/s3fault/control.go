package s3fault

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Control API paths.
const (
	PathHealth            = "/v1/health"
	PathRules             = "/v1/rules"
	PathStats             = "/v1/stats"
	PathStatsReset        = "/v1/stats/reset"
	PathReset             = "/v1/reset"
	PathSeed              = "/v1/seed"
	PathJournal           = "/v1/journal"
	PathUpstreamCloseIdle = "/v1/upstream/close-idle"
)

// maxControlBody bounds control request bodies.
const maxControlBody = 1 << 20

// Health is the body of GET /v1/health.
type Health struct {
	// Status is "ok".
	Status string `json:"status"`
	// Upstream is the URL requests are forwarded to.
	Upstream string `json:"upstream"`
	// Rules is the number of rules.
	Rules int `json:"rules"`
}

// RuleList is the body of GET /v1/rules.
type RuleList struct {
	// Rules are the rules in evaluation order.
	Rules []RuleStatus `json:"rules"`
}

// DeletedRules is the body of DELETE /v1/rules.
type DeletedRules struct {
	// Deleted is the number of rules removed.
	Deleted int `json:"deleted"`
}

// JournalBody is the body of GET /v1/journal.
type JournalBody struct {
	// Entries are the journal's entries, oldest first.
	Entries []Entry `json:"entries"`
}

// SeedBody is the body of GET and PUT /v1/seed.
type SeedBody struct {
	// Seed is the layer seed.
	Seed *uint64 `json:"seed"`
}

// ErrorBody is the body of every control API error.
type ErrorBody struct {
	// Error describes the error.
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the error object of an ErrorBody.
type ErrorDetail struct {
	// Code is the stable error code.
	Code ErrorCode `json:"code"`
	// Message is a human-readable explanation.
	Message string `json:"message"`
	// Field is the offending rule field, for rule validation errors.
	Field string `json:"field,omitempty"`
}

// MinTokenLen is the shortest bearer token NewControlHandler accepts.
const MinTokenLen = 16

// ErrWeakToken is returned (wrapped) by NewControlHandler for a token
// shorter than MinTokenLen, the empty one included.
var ErrWeakToken = errors.New("s3fault: control API token too short")

// ErrUnauthorized matches, with errors.Is, the *APIError of a control
// request the layer refused for its missing or wrong token.
var ErrUnauthorized = errors.New("s3fault: control API: unauthorized")

// NewControlHandler returns the JSON control API of p. Every request, the
// health check included, must carry "Authorization: Bearer <token>";
// others are answered 401 with the code unauthorized. The token is
// compared in constant time. A token shorter than MinTokenLen gives an
// error wrapping ErrWeakToken; NewInsecureControlHandler serves without a
// token. The endpoints:
//
//	GET    /v1/health        Health
//	POST   /v1/rules         add a Rule; 201 with its RuleStatus
//	GET    /v1/rules         RuleList
//	DELETE /v1/rules         delete every rule; DeletedRules
//	GET    /v1/rules/{id}    RuleStatus
//	DELETE /v1/rules/{id}    delete one rule; 204
//	GET    /v1/stats         Stats
//	POST   /v1/stats/reset   zero the counters and empty the journal; 204
//	POST   /v1/reset         delete every rule, zero the counters, empty the journal; 204
//	GET    /v1/journal       JournalBody: the request journal, oldest first
//	GET    /v1/seed          SeedBody
//	PUT    /v1/seed          set the layer seed from a SeedBody; SeedBody
//	POST   /v1/upstream/close-idle  close idle upstream connections; 204
//
// Errors are ErrorBody documents with a stable ErrorCode.
func NewControlHandler(p *Proxy, token string) (http.Handler, error) {
	if len(token) < MinTokenLen {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrWeakToken, len(token), MinTokenLen)
	}
	want := sha256.Sum256([]byte(token))
	next := newControlMux(p)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearerMatches(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="s3fault"`)
			writeError(w, http.StatusUnauthorized, ErrorDetail{
				Code: CodeUnauthorized, Message: "the control API needs the header Authorization: Bearer <token> with the layer's token",
			})
			return
		}
		next.ServeHTTP(w, r)
	}), nil
}

// NewInsecureControlHandler returns the control API of p without
// authentication: anyone who reaches it may change the faults. For tests
// and a layer on a private loopback only; s3faultd serves it only with
// -insecure-control.
func NewInsecureControlHandler(p *Proxy) http.Handler { return newControlMux(p) }

// bearerMatches reports whether header is "Bearer <token>" (the scheme in
// any case, RFC 6750) with the token whose SHA-256 is want. Comparing the
// digests keeps the time independent of the token's content and length.
func bearerMatches(header string, want [sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// newControlMux routes the control API's endpoints.
func newControlMux(p *Proxy) http.Handler {
	c := &control{p: p}
	mux := http.NewServeMux()
	mux.HandleFunc(PathHealth, c.methods(map[string]http.HandlerFunc{http.MethodGet: c.health}))
	mux.HandleFunc(PathRules, c.methods(map[string]http.HandlerFunc{
		http.MethodGet: c.listRules, http.MethodPost: c.addRule, http.MethodDelete: c.deleteAll,
	}))
	mux.HandleFunc(PathRules+"/{id}", c.methods(map[string]http.HandlerFunc{
		http.MethodGet: c.getRule, http.MethodDelete: c.deleteRule,
	}))
	mux.HandleFunc(PathStats, c.methods(map[string]http.HandlerFunc{http.MethodGet: c.stats}))
	mux.HandleFunc(PathStatsReset, c.methods(map[string]http.HandlerFunc{http.MethodPost: c.resetStats}))
	mux.HandleFunc(PathReset, c.methods(map[string]http.HandlerFunc{http.MethodPost: c.reset}))
	mux.HandleFunc(PathJournal, c.methods(map[string]http.HandlerFunc{http.MethodGet: c.journal}))
	mux.HandleFunc(PathSeed, c.methods(map[string]http.HandlerFunc{
		http.MethodGet: c.getSeed, http.MethodPut: c.setSeed,
	}))
	mux.HandleFunc(PathUpstreamCloseIdle, c.methods(map[string]http.HandlerFunc{http.MethodPost: c.closeIdle}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: "no endpoint " + r.URL.Path})
	})
	return mux
}

type control struct{ p *Proxy }

// methods dispatches on the request method, answering 405 with a JSON error
// for the others.
func (c *control) methods(m map[string]http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h, ok := m[r.Method]; ok {
			h(w, r)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, ErrorDetail{
			Code: CodeMethodNotAllowed, Message: fmt.Sprintf("%s does not accept %s", r.URL.Path, r.Method),
		})
	}
}

func (c *control) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Upstream: c.p.Upstream(), Rules: len(c.p.Rules())})
}

func (c *control) listRules(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, RuleList{Rules: c.p.Rules()})
}

func (c *control) addRule(w http.ResponseWriter, r *http.Request) {
	var rule Rule
	if !decodeBody(w, r, &rule) {
		return
	}
	st, err := c.p.AddRule(rule)
	if err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			writeError(w, http.StatusBadRequest, ErrorDetail{Code: re.Code, Message: re.Error(), Field: re.Field})
			return
		}
		writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeInvalidRule, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusCreated, st)
}

func (c *control) deleteAll(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, DeletedRules{Deleted: c.p.DeleteAllRules()})
}

func (c *control) getRule(w http.ResponseWriter, r *http.Request) {
	st, err := c.p.Rule(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, ErrorDetail{Code: CodeRuleNotFound, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *control) deleteRule(w http.ResponseWriter, r *http.Request) {
	if err := c.p.DeleteRule(r.PathValue("id")); err != nil {
		writeError(w, http.StatusNotFound, ErrorDetail{Code: CodeRuleNotFound, Message: err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, c.p.Stats())
}

func (c *control) resetStats(w http.ResponseWriter, _ *http.Request) {
	c.p.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) reset(w http.ResponseWriter, _ *http.Request) {
	c.p.DeleteAllRules()
	c.p.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

// journal streams the journal as compact JSON: a full journal is about
// 15 MB, which indenting would nearly double.
func (c *control) journal(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// Entries hold only strings, numbers and times: encoding cannot fail,
	// and a write error means the client left.
	_ = enc.Encode(JournalBody{Entries: c.p.Journal()})
}

func (c *control) closeIdle(w http.ResponseWriter, _ *http.Request) {
	c.p.CloseIdleUpstream()
	w.WriteHeader(http.StatusNoContent)
}

func (c *control) getSeed(w http.ResponseWriter, _ *http.Request) {
	seed := c.p.Seed()
	writeJSON(w, http.StatusOK, SeedBody{Seed: &seed})
}

func (c *control) setSeed(w http.ResponseWriter, r *http.Request) {
	var body SeedBody
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Seed == nil {
		writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeInvalidJSON, Message: `body needs {"seed": <uint64>}`, Field: "seed"})
		return
	}
	c.p.SetSeed(*body.Seed)
	writeJSON(w, http.StatusOK, body)
}

// decodeBody decodes exactly one JSON value with no unknown fields into v,
// answering 400 invalid_json otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON value")
	}
	if err == nil {
		if _, rerr := dec.Token(); !errors.Is(rerr, io.EOF) {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeInvalidJSON, Message: "invalid JSON body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encoding failed"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, d ErrorDetail) {
	writeJSON(w, status, ErrorBody{Error: d})
}
