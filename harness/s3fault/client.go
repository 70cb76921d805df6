package s3fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrInvalidBaseURL is returned (wrapped) by NewClient for an unusable URL.
var ErrInvalidBaseURL = errors.New("s3fault: invalid control API base URL")

// APIError is a control API error response. Match it with errors.As and
// compare Code; a rule_not_found error also matches ErrRuleNotFound, an
// unauthorized one ErrUnauthorized and a rule validation error
// ErrInvalidRule.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the stable error code.
	Code ErrorCode
	// Message is the server's explanation.
	Message string
	// Field is the offending rule field, for validation errors.
	Field string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("s3fault control API: %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Is makes errors.Is(err, ErrRuleNotFound), errors.Is(err, ErrUnauthorized)
// and errors.Is(err, ErrInvalidRule) work across the wire.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRuleNotFound:
		return e.Code == CodeRuleNotFound
	case ErrUnauthorized:
		return e.Code == CodeUnauthorized
	case ErrInvalidRule:
		switch e.Code {
		case CodeInvalidRule, CodeInvalidOp, CodeInvalidKeyPattern, CodeInvalidTrigger,
			CodeInvalidAction, CodeActionNotApplicable:
			return true
		}
	}
	return false
}

// Client talks to the control API of an s3fault layer.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: a client with a 30 s
// timeout).
func WithHTTPClient(c *http.Client) ClientOption { return func(cl *Client) { cl.http = c } }

// WithToken sets the bearer token the client sends with every request (see
// NewControlHandler).
func WithToken(token string) ClientOption { return func(cl *Client) { cl.token = token } }

// NewClient returns a client for the control API at baseURL, e.g.
// "http://127.0.0.1:9100".
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidBaseURL, baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %q: want http(s)://host:port", ErrInvalidBaseURL, baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Health checks that the layer is up and returns its health document.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, PathHealth, nil, http.StatusOK, &h)
	return h, err
}

// AddRule adds a rule and returns its id. Invalid rules give an *APIError
// with a 400 status and a validation code (errors.Is(err, ErrInvalidRule)).
func (c *Client) AddRule(ctx context.Context, r Rule) (string, error) {
	st, err := c.AddRuleStatus(ctx, r)
	return st.ID, err
}

// AddRuleStatus adds a rule and returns it as the layer stored it.
func (c *Client) AddRuleStatus(ctx context.Context, r Rule) (RuleStatus, error) {
	var st RuleStatus
	err := c.do(ctx, http.MethodPost, PathRules, r, http.StatusCreated, &st)
	return st, err
}

// Rules lists the rules in evaluation order.
func (c *Client) Rules(ctx context.Context) ([]RuleStatus, error) {
	var l RuleList
	err := c.do(ctx, http.MethodGet, PathRules, nil, http.StatusOK, &l)
	return l.Rules, err
}

// Rule returns one rule; an unknown id gives an error matching
// ErrRuleNotFound.
func (c *Client) Rule(ctx context.Context, id string) (RuleStatus, error) {
	var st RuleStatus
	err := c.do(ctx, http.MethodGet, PathRules+"/"+url.PathEscape(id), nil, http.StatusOK, &st)
	return st, err
}

// DeleteRule deletes one rule; an unknown id gives an error matching
// ErrRuleNotFound.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, PathRules+"/"+url.PathEscape(id), nil, http.StatusNoContent, nil)
}

// DeleteAllRules deletes every rule and returns how many there were.
func (c *Client) DeleteAllRules(ctx context.Context) (int, error) {
	var d DeletedRules
	err := c.do(ctx, http.MethodDelete, PathRules, nil, http.StatusOK, &d)
	return d.Deleted, err
}

// Stats returns the counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := c.do(ctx, http.MethodGet, PathStats, nil, http.StatusOK, &s)
	return s, err
}

// ResetStats zeroes the counters and empties the journal; rules stay.
func (c *Client) ResetStats(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathStatsReset, nil, http.StatusNoContent, nil)
}

// Reset deletes every rule, zeroes the counters and empties the journal: a
// clean layer for the next test case.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathReset, nil, http.StatusNoContent, nil)
}

// maxJournalResponse bounds a GET /v1/journal answer: a full journal of the
// default size is about 15 MB, plus its keys.
const maxJournalResponse = 1 << 30

// Journal returns the layer's request journal (GET /v1/journal): one entry
// per S3 request since start or the last ResetStats or Reset, oldest first,
// at most the layer's journal size (the oldest are dropped). See
// [Proxy.Journal].
func (c *Client) Journal(ctx context.Context) ([]Entry, error) {
	var j JournalBody
	err := c.doLimit(ctx, http.MethodGet, PathJournal, nil, http.StatusOK, &j, maxJournalResponse)
	return j.Entries, err
}

// CloseIdleUpstream makes the layer close its idle keep-alive connections to
// the upstream, so that requests from now on use new connections (and so
// meet TCP-level faults set up since).
func (c *Client) CloseIdleUpstream(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, PathUpstreamCloseIdle, nil, http.StatusNoContent, nil)
}

// Seed returns the layer seed.
func (c *Client) Seed(ctx context.Context) (uint64, error) {
	var s SeedBody
	if err := c.do(ctx, http.MethodGet, PathSeed, nil, http.StatusOK, &s); err != nil {
		return 0, err
	}
	if s.Seed == nil {
		return 0, fmt.Errorf("s3fault control API: %s: response has no seed", PathSeed)
	}
	return *s.Seed, nil
}

// SetSeed sets the layer seed used by rules added later without a seed of
// their own.
func (c *Client) SetSeed(ctx context.Context, seed uint64) error {
	return c.do(ctx, http.MethodPut, PathSeed, SeedBody{Seed: &seed}, http.StatusOK, nil)
}

// maxResponse bounds the answers of the control API but the journal.
const maxResponse = 16 << 20

// do sends one request and decodes the answer into out (when non-nil).
func (c *Client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	return c.doLimit(ctx, method, path, in, want, out, maxResponse)
}

// doLimit is do for an answer of at most limit bytes.
func (c *Client) doLimit(ctx context.Context, method, path string, in any, want int, out any, limit int64) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("s3fault control API: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("s3fault control API: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("s3fault control API: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("s3fault control API: %s %s: read response: %w", method, path, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("s3fault control API: %s %s: response larger than %d bytes", method, path, limit)
	}
	if resp.StatusCode != want {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return &APIError{StatusCode: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
		}
		return &APIError{StatusCode: resp.StatusCode, Code: CodeUnexpectedStatus,
			Message: fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(data)))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("s3fault control API: %s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}
