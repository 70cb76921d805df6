package httpop

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
)

func TestSpecValidate(t *testing.T) {
	ok := SpecOp{Name: "get", Weight: 1, Path: "/kv/k{mod:8}"}
	for _, tc := range []struct {
		name string
		spec Spec
		want string // "" when valid
	}{
		{"valid", Spec{Ready: "/healthz", Ops: []SpecOp{ok, {Name: "put", Weight: 0, Method: "PUT", Path: "/kv/{seq}", Body: "v{seq}"}}}, ""},
		{"no ops", Spec{}, "no ops"},
		{"relative ready", Spec{Ready: "healthz", Ops: []SpecOp{ok}}, `ready "healthz"`},
		{"no name", Spec{Ops: []SpecOp{{Weight: 1, Path: "/"}}}, "op 0: no name"},
		{"name twice", Spec{Ops: []SpecOp{ok, ok}}, `name "get" used twice`},
		{"negative weight", Spec{Ops: []SpecOp{ok, {Name: "x", Weight: -1, Path: "/"}}}, "negative weight"},
		{"all weights zero", Spec{Ops: []SpecOp{{Name: "x", Path: "/"}}}, "no op has a positive weight"},
		{"relative path", Spec{Ops: []SpecOp{{Name: "x", Weight: 1, Path: "kv"}}}, `path "kv"`},
		{"lower-case method", Spec{Ops: []SpecOp{{Name: "x", Weight: 1, Method: "get", Path: "/"}}}, `method "get"`},
		{"mod zero", Spec{Ops: []SpecOp{{Name: "x", Weight: 1, Path: "/k{mod:0}"}}}, "{mod:0}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrSpec)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestExpand(t *testing.T) {
	assert.Equal(t, "/kv/k3?n=11", expand("/kv/k{mod:8}?n={seq}", 11))
	assert.Equal(t, "/plain", expand("/plain", 5))
	assert.Equal(t, "{other}", expand("{other}", 5), "unknown placeholders stay")
}

func TestReadSpec(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"ready":"/h","ops":[{"name":"get","weight":2,"path":"/k{mod:4}"}]}`), 0o644))
	s, err := ReadSpec(good)
	require.NoError(t, err)
	assert.Equal(t, Spec{Ready: "/h", Ops: []SpecOp{{Name: "get", Weight: 2, Path: "/k{mod:4}"}}}, s)

	unknown := filepath.Join(dir, "unknown.json")
	require.NoError(t, os.WriteFile(unknown, []byte(`{"ops":[{"name":"get","weight":1,"path":"/","verb":"GET"}]}`), 0o644))
	_, err = ReadSpec(unknown)
	require.ErrorIs(t, err, ErrSpec)
	require.ErrorContains(t, err, "verb")

	invalid := filepath.Join(dir, "invalid.json")
	require.NoError(t, os.WriteFile(invalid, []byte(`{"ops":[]}`), 0o644))
	_, err = ReadSpec(invalid)
	require.ErrorIs(t, err, ErrSpec)

	_, err = ReadSpec(filepath.Join(dir, "missing.json"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestSystemDrivesTheSpec: a spec's requests reach the server as written,
// placeholders expanded per request, and the weights hold; a 4xx answer
// counts under its status code.
func TestSystemDrivesTheSpec(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		switch {
		case r.URL.Path == "/missing":
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPut && len(body) == 0:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	sys, err := NewSystem(srv.URL+"/", Spec{Ready: "/ready", Ops: []SpecOp{
		{Name: "get", Weight: 3, Path: "/k{mod:2}"},
		{Name: "put", Weight: 1, Method: "PUT", Path: "/k{mod:2}", Body: "v{seq}"},
		{Name: "miss", Weight: 1, Path: "/missing"},
		{Name: "off", Weight: 0, Path: "/never"},
	}}, Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(sys.Close)
	require.NoError(t, sys.Ready(context.Background()))
	w, err := sys.Setup(context.Background())
	require.NoError(t, err)
	require.Len(t, w.Ops(), 3, "an op of weight 0 is left out")

	res, err := load.Run(context.Background(), load.Config{Ops: w.Ops(), Rate: 200, Duration: time.Second, Seed: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	by := map[string]load.OpResult{}
	for _, op := range res.Ops {
		by[op.Name] = op
	}
	assert.Zero(t, by["get"].ErrorCount(), "gets succeed: %v", by["get"].Errors)
	assert.Zero(t, by["put"].ErrorCount(), "every put carries its expanded body: %v", by["put"].Errors)
	assert.Equal(t, by["miss"].Completed, by["miss"].Errors["http_404"], "every miss counts under http_404")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, int(by["get"].Completed), seen["GET /k0"]+seen["GET /k1"])
	assert.Positive(t, seen["GET /k0"])
	assert.Positive(t, seen["GET /k1"])
	assert.Zero(t, seen["GET /never"])
	assert.Greater(t, by["get"].Completed, by["put"].Completed, "weights 3:1")
}
