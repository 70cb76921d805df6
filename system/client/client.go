// Package client is a Go client for tierd's REST API.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tierchaos/tierchaos/system/api"
)

// Error is an error answer of the server.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the stable error code (api.Code*), "" if the body had none.
	Code string
	// Message is the server's explanation.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("tierd: HTTP %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("tierd: HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// ErrorCode returns the stable error code (load.Coded and CodeOf).
func (e *Error) ErrorCode() string { return e.Code }

// CodeOf returns the stable error code of the first error in err's chain
// that carries one (an *Error or another client's error with an
// ErrorCode method, such as the gRPC client's), or "".
func CodeOf(err error) string {
	var e interface{ ErrorCode() string }
	if errors.As(err, &e) {
		return e.ErrorCode()
	}
	return ""
}

// API is the method set of tierd's Go clients: *Client (REST) and the gRPC
// client (system/grpcclient) implement it with the same semantics; their
// errors carry the same stable codes (CodeOf).
type API interface {
	CreateCollection(ctx context.Context, req api.CreateCollectionRequest) (api.Collection, error)
	ListCollections(ctx context.Context) ([]api.Collection, error)
	GetCollection(ctx context.Context, name string) (api.Collection, error)
	DeleteCollection(ctx context.Context, name string) error
	Insert(ctx context.Context, name string, vectors []api.Vector) (int, error)
	Search(ctx context.Context, name string, vector []float32, k int) ([]api.Result, error)
	ListVectors(ctx context.Context, name, after string, limit int) (api.VectorPage, error)
	AllVectors(ctx context.Context, name string, pageSize int) ([]api.Vector, error)
	SetTier(ctx context.Context, name string, target api.Tier) (api.Collection, error)
	Healthz(ctx context.Context) error
	Readyz(ctx context.Context) error
	CreateSnapshot(ctx context.Context, name string) (api.Snapshot, error)
	ListSnapshots(ctx context.Context, name string) ([]api.Snapshot, error)
	Restore(ctx context.Context, name, snapshotID string) (api.Collection, error)
	Worker(ctx context.Context, action string) (api.WorkerState, error)
	WorkerState(ctx context.Context) (api.WorkerState, error)
	Usage(ctx context.Context) (api.Usage, error)
}

var _ API = (*Client)(nil)

// Option customises a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default http.DefaultClient).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithToken sets the bearer token sent on API routes (tierd's
// auth.api_token / TIERD_API_TOKEN); it is also sent on /v1/admin/ routes
// unless WithAdminToken sets another one.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithAdminToken sets the bearer token sent on /v1/admin/ routes (tierd's
// auth.admin_token / TIERD_ADMIN_TOKEN).
func WithAdminToken(token string) Option {
	return func(c *Client) { c.adminToken = token }
}

// Client talks to one tierd.
type Client struct {
	base       string
	hc         *http.Client
	token      string
	adminToken string
}

// New returns a client for the tierd at baseURL (e.g. "http://127.0.0.1:8080").
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the server address the client talks to.
func (c *Client) BaseURL() string { return c.base }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("tierd %s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("tierd %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := c.tokenFor(path); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("tierd %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("tierd %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if jerr := json.Unmarshal(data, &eb); jerr != nil || eb.Error.Code == "" {
			return &Error{StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		}
		return &Error{StatusCode: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("tierd %s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

// tokenFor returns the bearer token of a request path ("" for none).
func (c *Client) tokenFor(path string) string {
	if strings.HasPrefix(path, "/v1/admin/") && c.adminToken != "" {
		return c.adminToken
	}
	return c.token
}

func collPath(name string, rest ...string) string {
	p := "/v1/collections/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// CreateCollection creates a collection.
func (c *Client) CreateCollection(ctx context.Context, req api.CreateCollectionRequest) (api.Collection, error) {
	var out api.Collection
	err := c.do(ctx, http.MethodPost, "/v1/collections", req, &out)
	return out, err
}

// ListCollections lists all collections.
func (c *Client) ListCollections(ctx context.Context) ([]api.Collection, error) {
	var out struct {
		Collections []api.Collection `json:"collections"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/collections", nil, &out)
	return out.Collections, err
}

// GetCollection returns a collection's state.
func (c *Client) GetCollection(ctx context.Context, name string) (api.Collection, error) {
	var out api.Collection
	err := c.do(ctx, http.MethodGet, collPath(name), nil, &out)
	return out, err
}

// DeleteCollection deletes a collection and its objects.
func (c *Client) DeleteCollection(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, collPath(name), nil, nil)
}

// Insert adds or replaces vectors and returns how many were inserted.
func (c *Client) Insert(ctx context.Context, name string, vectors []api.Vector) (int, error) {
	var out api.InsertResponse
	err := c.do(ctx, http.MethodPost, collPath(name, "vectors"), api.InsertRequest{Vectors: vectors}, &out)
	return out.Inserted, err
}

// Search returns the exact top-k of vector, best first.
func (c *Client) Search(ctx context.Context, name string, vector []float32, k int) ([]api.Result, error) {
	var out api.SearchResponse
	err := c.do(ctx, http.MethodPost, collPath(name, "search"), api.SearchRequest{Vector: vector, K: k}, &out)
	return out.Results, err
}

// ListVectors returns one page of the collection's vectors: up to limit
// (0: the server's default, api.DefaultListLimit) vectors with ids greater
// than after ("" starts at the beginning), ids ascending, values exact.
// page.Next is the after of the next page, "" on the last page.
func (c *Client) ListVectors(ctx context.Context, name, after string, limit int) (api.VectorPage, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := collPath(name, "vectors")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.VectorPage
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// AllVectors pages through every vector of the collection with pages of
// pageSize (0: the server's default) and returns them, ids ascending. The
// pages are read one after the other, not as one snapshot: a vector
// inserted or replaced during the walk may or may not be seen. Quiesce
// writers for an exact picture.
func (c *Client) AllVectors(ctx context.Context, name string, pageSize int) ([]api.Vector, error) {
	return AllPages(ctx, name, pageSize, c.ListVectors)
}

// AllPages walks the pages of a collection's vectors that list returns,
// from the first until one has no next cursor, and returns the vectors in
// the order listed. A cursor that does not move forward is an error, so a
// server bug cannot make the walk loop forever. Both Go clients use it.
func AllPages(ctx context.Context, name string, pageSize int,
	list func(ctx context.Context, name, after string, limit int) (api.VectorPage, error)) ([]api.Vector, error) {
	var out []api.Vector
	after := ""
	for {
		page, err := list(ctx, name, after, pageSize)
		if err != nil {
			return out, err
		}
		out = append(out, page.Vectors...)
		if page.Next == "" {
			return out, nil
		}
		if page.Next <= after {
			return out, fmt.Errorf("tierd list vectors of %q: cursor went from %q back to %q", name, after, page.Next)
		}
		after = page.Next
	}
}

// SetTier moves a collection to target and returns its new state.
func (c *Client) SetTier(ctx context.Context, name string, target api.Tier) (api.Collection, error) {
	var out api.Collection
	err := c.do(ctx, http.MethodPost, collPath(name, "tier"), api.SetTierRequest{Target: target}, &out)
	return out, err
}

// Healthz checks liveness.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Readyz checks readiness.
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// CreateSnapshot stores the collection's current content as a snapshot.
func (c *Client) CreateSnapshot(ctx context.Context, name string) (api.Snapshot, error) {
	var out api.Snapshot
	err := c.do(ctx, http.MethodPost, collPath(name, "snapshots"), struct{}{}, &out)
	return out, err
}

// ListSnapshots lists the collection's snapshots, oldest first.
func (c *Client) ListSnapshots(ctx context.Context, name string) ([]api.Snapshot, error) {
	var out api.SnapshotList
	err := c.do(ctx, http.MethodGet, collPath(name, "snapshots"), nil, &out)
	return out.Snapshots, err
}

// Restore replaces the collection's content with the snapshot's.
func (c *Client) Restore(ctx context.Context, name, snapshotID string) (api.Collection, error) {
	var out api.Collection
	err := c.do(ctx, http.MethodPost, collPath(name, "restore"), api.RestoreRequest{Snapshot: snapshotID}, &out)
	return out, err
}

// Worker sends an action (api.WorkerPause, api.WorkerResume,
// api.WorkerRunOnce) to the background worker and returns its state.
func (c *Client) Worker(ctx context.Context, action string) (api.WorkerState, error) {
	var out api.WorkerState
	err := c.do(ctx, http.MethodPost, "/v1/admin/worker", api.WorkerRequest{Action: action}, &out)
	return out, err
}

// WorkerState returns the background worker's state and last cycle.
func (c *Client) WorkerState(ctx context.Context) (api.WorkerState, error) {
	var out api.WorkerState
	err := c.do(ctx, http.MethodGet, "/v1/admin/worker", nil, &out)
	return out, err
}

// Usage returns resource use against the quotas.
func (c *Client) Usage(ctx context.Context) (api.Usage, error) {
	var out api.Usage
	err := c.do(ctx, http.MethodGet, "/v1/admin/usage", nil, &out)
	return out, err
}
