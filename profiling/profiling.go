// Package profiling captures pprof profiles from a running target's
// /debug/pprof endpoint: CPU windows during a load run with block and mutex
// windows alongside, and heap and goroutine profiles after warm-up and at
// the end. Every profile is saved as a .pb.gz file for `go tool pprof`, and
// parsed (github.com/google/pprof/profile) to report the top CPU, blocking
// and lock-contention hotspots and the heap growth by function.
package profiling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// Errors returned (wrapped) by this package.
var (
	ErrFetch   = errors.New("profiling: cannot fetch profile")
	ErrParse   = errors.New("profiling: cannot parse profile")
	ErrNoValue = errors.New("profiling: profile lacks the sample type")
)

// Kind names a profile endpoint.
type Kind string

// Profile kinds captured.
const (
	CPU       Kind = "profile"
	Heap      Kind = "heap"
	Goroutine Kind = "goroutine"
	// Block and Mutex are recorded only while the target's runtime has a
	// block profile rate / mutex profile fraction above 0.
	Block Kind = "block"
	Mutex Kind = "mutex"
)

// ContentionSampleType is the sample type of block and mutex profiles
// that hotspots rank by: nanoseconds spent waiting.
const ContentionSampleType = "delay"

// Client fetches profiles from one pprof base URL and saves them in Dir.
type Client struct {
	base string
	dir  string
	hc   *http.Client
}

// New returns a Client for baseURL (e.g. http://127.0.0.1:6060/debug/pprof)
// saving files under dir (created if needed). hc may be nil.
func New(baseURL, dir string, hc *http.Client) (*Client, error) {
	if baseURL == "" {
		return nil, fmt.Errorf("%w: empty base URL", ErrFetch)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profiling: %w", err)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), dir: dir, hc: hc}, nil
}

// Capture is one saved and parsed profile.
type Capture struct {
	Kind    Kind
	Name    string
	Path    string
	At      time.Time
	Profile *profile.Profile
}

// CPUProfile records CPU for d and saves it as <name>.pb.gz.
func (c *Client) CPUProfile(ctx context.Context, d time.Duration, name string) (*Capture, error) {
	return c.fetch(ctx, CPU, "?seconds="+strconv.Itoa(seconds(d)), name)
}

// BlockProfile records where goroutines blocked (channel operations,
// select, sync primitives, I/O waits) for d — the delta of
// /block?seconds=N — and saves it as <name>.pb.gz.
func (c *Client) BlockProfile(ctx context.Context, d time.Duration, name string) (*Capture, error) {
	return c.fetch(ctx, Block, "?seconds="+strconv.Itoa(seconds(d)), name)
}

// MutexProfile records contended mutexes (the time waiters spent, charged
// to the holder's unlock) for d and saves it as <name>.pb.gz.
func (c *Client) MutexProfile(ctx context.Context, d time.Duration, name string) (*Capture, error) {
	return c.fetch(ctx, Mutex, "?seconds="+strconv.Itoa(seconds(d)), name)
}

func seconds(d time.Duration) int {
	return max(1, int(d.Round(time.Second)/time.Second))
}

// HeapProfile saves the heap profile (after a forced GC, so in-use figures
// are live memory) as <name>.pb.gz.
func (c *Client) HeapProfile(ctx context.Context, name string) (*Capture, error) {
	return c.fetch(ctx, Heap, "?gc=1", name)
}

// GoroutineProfile saves the goroutine profile as <name>.pb.gz.
func (c *Client) GoroutineProfile(ctx context.Context, name string) (*Capture, error) {
	return c.fetch(ctx, Goroutine, "", name)
}

func (c *Client) fetch(ctx context.Context, k Kind, query, name string) (*Capture, error) {
	url := c.base + "/" + string(k) + query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFetch, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFetch, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: status %d: %s", ErrFetch, url, resp.StatusCode, bytes.TrimSpace(body))
	}
	p, err := profile.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrParse, url, err)
	}
	path := filepath.Join(c.dir, name+".pb.gz")
	// Save what the endpoint sent (already gzip-compressed protobuf).
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return nil, fmt.Errorf("profiling: save %s: %w", path, err)
	}
	return &Capture{Kind: k, Name: name, Path: path, At: time.Now(), Profile: p}, nil
}
