package httpop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/tierchaos/tierchaos/load"
)

// ErrSpec is returned (wrapped) for an invalid workload spec.
var ErrSpec = errors.New("httpop: invalid workload spec")

// Spec is an HTTP workload as data: weighted requests against one base
// URL, for a service that has no Go workload of its own (tierload
// -workload FILE reads it as JSON). In a path or a body, {seq} becomes
// the request's sequence number in the run and {mod:N} that number
// modulo N (N ≥ 1), so a run spreads over N keys and is reproducible.
//
//	{"ready": "/healthz",
//	 "ops": [{"name": "get", "weight": 70, "path": "/kv/k{mod:64}"},
//	         {"name": "put", "weight": 30, "method": "PUT", "path": "/kv/k{mod:64}", "body": "v{seq}"}]}
type Spec struct {
	// Ready is the path polled until it answers below 400 (default "/").
	Ready string `json:"ready,omitempty"`
	// Ops are the requests; at least one with a positive weight.
	Ops []SpecOp `json:"ops"`
}

// SpecOp is one weighted request of a Spec.
type SpecOp struct {
	Name   string            `json:"name"`
	Weight float64           `json:"weight"`
	Method string            `json:"method,omitempty"` // default GET
	Path   string            `json:"path"`
	Header map[string]string `json:"header,omitempty"`
	Body   string            `json:"body,omitempty"`
}

// placeholder matches {seq} and {mod:N}.
var placeholder = regexp.MustCompile(`\{(seq|mod:[0-9]+)\}`)

// ReadSpec reads and validates a JSON spec file; unknown fields are
// errors.
func ReadSpec(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("httpop: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrSpec, path, err)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Validate reports every problem of s in one error wrapping ErrSpec.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrSpec, fmt.Sprintf(format, args...)))
	}
	if s.Ready != "" && !strings.HasPrefix(s.Ready, "/") {
		bad("ready %q: want a path starting with /", s.Ready)
	}
	if len(s.Ops) == 0 {
		bad("no ops")
	}
	names := map[string]bool{}
	var positive bool
	for i, op := range s.Ops {
		switch {
		case op.Name == "":
			bad("op %d: no name", i)
		case names[op.Name]:
			bad("op %d: name %q used twice", i, op.Name)
		}
		names[op.Name] = true
		if op.Weight < 0 {
			bad("op %q: negative weight %g", op.Name, op.Weight)
		}
		positive = positive || op.Weight > 0
		if !strings.HasPrefix(op.Path, "/") {
			bad("op %q: path %q: want a path starting with /", op.Name, op.Path)
		}
		if op.Method != "" && strings.ToUpper(op.Method) != op.Method {
			bad("op %q: method %q: want upper case", op.Name, op.Method)
		}
		for _, m := range placeholder.FindAllString(op.Path+op.Body, -1) {
			if n, ok := strings.CutPrefix(strings.Trim(m, "{}"), "mod:"); ok {
				if v, err := strconv.Atoi(n); err != nil || v < 1 {
					bad("op %q: %s: want {mod:N} with N ≥ 1", op.Name, m)
				}
			}
		}
	}
	if len(s.Ops) > 0 && !positive {
		bad("no op has a positive weight")
	}
	return errors.Join(errs...)
}

// expand replaces the placeholders of text for request seq.
func expand(text string, seq uint64) string {
	if !strings.Contains(text, "{") {
		return text
	}
	return placeholder.ReplaceAllStringFunc(text, func(m string) string {
		if n, ok := strings.CutPrefix(strings.Trim(m, "{}"), "mod:"); ok {
			v, _ := strconv.ParseUint(n, 10, 64) // Validate checked it
			return strconv.FormatUint(seq%v, 10)
		}
		return strconv.FormatUint(seq, 10)
	})
}

// System is a Spec against a base URL as a load.System: the generic
// runner (load/runner) drives it. It has no data to seed or clean up.
type System struct {
	base string
	spec Spec
	c    *Client
}

// NewSystem returns the spec's workload against base ("http://host:port",
// no trailing slash needed) through a client with options o.
func NewSystem(base string, spec Spec, o Options) (*System, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("%w: base URL %q: want http:// or https://", ErrSpec, base)
	}
	return &System{base: strings.TrimSuffix(base, "/"), spec: spec, c: New(o)}, nil
}

// Where is the base URL.
func (s *System) Where() string { return s.base }

// API is "http".
func (s *System) API() string { return "http" }

// Ready sends GET to the spec's ready path (default "/").
func (s *System) Ready(ctx context.Context) error {
	path := s.spec.Ready
	if path == "" {
		path = "/"
	}
	return s.c.Do(ctx, Request{Method: http.MethodGet, URL: s.base + path})
}

// Setup returns the workload: nothing to prepare.
func (s *System) Setup(context.Context) (load.Workload, error) { return specWorkload{s}, nil }

// Close closes the client's idle connections.
func (s *System) Close() { s.c.Close() }

// specWorkload is a System's operations.
type specWorkload struct{ s *System }

// Ops returns one operation per spec op with a positive weight.
func (w specWorkload) Ops() []load.Op {
	var ops []load.Op
	for _, op := range w.s.spec.Ops {
		if op.Weight <= 0 {
			continue
		}
		ops = append(ops, load.Op{Name: op.Name, Weight: op.Weight, Do: func(ctx context.Context, seq uint64) error {
			r := Request{Method: op.Method, URL: w.s.base + expand(op.Path, seq), Header: op.Header}
			if op.Body != "" {
				r.Body = []byte(expand(op.Body, seq))
			}
			return w.s.c.Do(ctx, r)
		}})
	}
	return ops
}

// Cleanup has nothing to remove.
func (specWorkload) Cleanup(context.Context) error { return nil }
