// Package kvclient is a client of the example key-value store's HTTP API
// (examples/kvstore/kv). Its errors say whether the operation may have
// taken effect (Indeterminate), which a linearizability checker needs.
package kvclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"syscall"

	"github.com/tierchaos/tierchaos/examples/kvstore/kv"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("kvclient: not found")

// Error is an error answer of the store.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code and Message are the body's (kv.Code*).
	Code, Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("kvclient: %d %s: %s", e.Status, e.Code, e.Message)
}

// Indeterminate reports whether an operation that returned err may still
// have taken effect: the store answered 5xx (S3 failed under it), or the
// request may have reached it and no answer came (a timeout, a reset
// connection). A refused connection, a 4xx answer and ErrNotFound are
// determinate: nothing happened.
func Indeterminate(err error) bool {
	var e *Error
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, syscall.ECONNREFUSED):
		return false
	case errors.As(err, &e):
		return e.Status >= 500
	}
	return true
}

// Client talks to one store.
type Client struct {
	base string
	http *http.Client
}

// New returns a client of the store at base ("http://127.0.0.1:8080")
// through hc (http.DefaultClient when nil).
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: base, http: hc}
}

// Get returns key's value, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) (string, error) {
	b, err := c.do(ctx, http.MethodGet, key, "", nil, http.StatusOK)
	return string(b), err
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key, value string) error {
	_, err := c.do(ctx, http.MethodPut, key, "", []byte(value), http.StatusNoContent)
	return err
}

// Delete removes key.
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.do(ctx, http.MethodDelete, key, "", nil, http.StatusNoContent)
	return err
}

// CompareAndSet sets key to to if its value is from, and reports whether
// it did.
func (c *Client) CompareAndSet(ctx context.Context, key, from, to string) (bool, error) {
	body, err := json.Marshal(kv.CASRequest{From: from, To: to})
	if err != nil {
		return false, fmt.Errorf("kvclient: %w", err)
	}
	b, err := c.do(ctx, http.MethodPost, key, "/cas", body, http.StatusOK)
	if err != nil {
		return false, err
	}
	var out kv.CASResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return false, fmt.Errorf("kvclient: cas answer: %w", err)
	}
	return out.Swapped, nil
}

func (c *Client) do(ctx context.Context, method, key, suffix string, body []byte, want int) ([]byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v1/kv/"+url.PathEscape(key)+suffix, r)
	if err != nil {
		return nil, fmt.Errorf("kvclient: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kvclient: %s %s: %w", method, key, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2*kv.MaxValueBytes))
	if err != nil {
		return nil, fmt.Errorf("kvclient: %s %s: read answer: %w", method, key, err)
	}
	if resp.StatusCode == want {
		return b, nil
	}
	var eb kv.ErrorBody
	_ = json.Unmarshal(b, &eb)
	if resp.StatusCode == http.StatusNotFound && eb.Code == kv.CodeNotFound {
		return nil, ErrNotFound
	}
	return nil, &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
}
