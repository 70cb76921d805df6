package datavol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxErrorBody bounds the error bodies the client reads.
const maxErrorBody = 64 << 10

// Client calls the data sidecar's API.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the sidecar at base (for example
// "http://127.0.0.1:32768"); hc nil means a client without a timeout
// (every call takes a context).
func NewClient(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("datavol: sidecar URL %q: want http://host:port", base)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimSuffix(base, "/"), hc: hc}, nil
}

// Healthz returns nil once the sidecar answers.
func (c *Client) Healthz(ctx context.Context) error {
	_, err := c.do(ctx, "health", http.MethodGet, "/healthz", nil)
	return err
}

// Volume returns the sidecar's volume name as a Volume.
func (c *Client) Volume(name string) Volume { return remote{c: c, name: name} }

// do sends a request and returns the body of a 2xx answer; any other
// answer becomes an *Error with the sidecar's code.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values) ([]byte, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("datavol: %s: %w", op, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("datavol: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
			return nil, &Error{Code: CodeIO, Op: op, Msg: fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))}
		}
		return nil, &Error{Code: eb.Code, Op: op, Msg: eb.Message}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("datavol: %s: read the answer: %w", op, err)
	}
	return b, nil
}

// doJSON is do with a JSON answer decoded into out.
func (c *Client) doJSON(ctx context.Context, op, method, path string, q url.Values, out any) error {
	b, err := c.do(ctx, op, method, path, q)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("datavol: %s: decode the answer: %w", op, err)
	}
	return nil
}

// remote is one volume of the sidecar.
type remote struct {
	c    *Client
	name string
}

var _ Volume = remote{}

func (r remote) path(op string) string { return "/volumes/" + url.PathEscape(r.name) + "/" + op }

func (r remote) List(ctx context.Context) (Listing, error) {
	var out struct {
		Files Listing `json:"files"`
	}
	if err := r.c.doJSON(ctx, "list", http.MethodGet, r.path("files"), nil, &out); err != nil {
		return nil, err
	}
	if out.Files == nil {
		out.Files = Listing{}
	}
	return out.Files, nil
}

func (r remote) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := checkPath("read", path); err != nil {
		return nil, err
	}
	return r.c.do(ctx, "read", http.MethodGet, r.path("file"), url.Values{"path": {path}})
}

func (r remote) Statfs(ctx context.Context) (Space, error) {
	var sp Space
	err := r.c.doJSON(ctx, "statfs", http.MethodGet, r.path("statfs"), nil, &sp)
	return sp, err
}

func (r remote) Fill(ctx context.Context) (int64, error) {
	var out struct {
		Bytes int64 `json:"bytes"`
	}
	err := r.c.doJSON(ctx, "fill", http.MethodPost, r.path("fill"), nil, &out)
	return out.Bytes, err
}

func (r remote) Free(ctx context.Context) (int, error) {
	var out struct {
		Removed int `json:"removed"`
	}
	err := r.c.doJSON(ctx, "free", http.MethodPost, r.path("free"), nil, &out)
	return out.Removed, err
}

func (r remote) Clear(ctx context.Context) error {
	var out struct{}
	return r.c.doJSON(ctx, "clear", http.MethodPost, r.path("clear"), nil, &out)
}
