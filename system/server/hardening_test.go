package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

// hardened is a server over httptest with its config and data folder.
type hardened struct {
	url string
	srv *server.Server
	cfg config.Config
}

func startHardened(t *testing.T, mod func(*config.Config), opts ...server.Option) *hardened {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.S3.OpTimeout = config.Duration(2 * time.Second)
	cfg.Worker.Paused = true
	if mod != nil {
		mod(&cfg)
	}
	opts = append([]server.Option{server.WithObjectStore(uploader.NewMemStore())}, opts...)
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		require.NoError(t, srv.Close(context.Background()))
	})
	return &hardened{url: hs.URL, srv: srv, cfg: cfg}
}

// answer is a decoded HTTP answer.
type answer struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, method, url, body string, header map[string]string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func requireCode(t *testing.T, a answer, status int, code string) {
	t.Helper()
	require.Equal(t, status, a.status, "body: %s", a.body)
	if code != "" {
		require.Contains(t, a.body, `"code":"`+code+`"`)
		require.Equal(t, "application/json", a.header.Get("Content-Type"))
	}
}

const (
	apiTok   = "api-token-0123456789abcdef"
	adminTok = "admin-token-0123456789abcdef"
)

func TestBearerTokens(t *testing.T) {
	type want struct{ api, admin int } // status of an API and an admin request
	cases := []struct {
		name       string
		api, admin string // configured tokens
		sent       map[string]want
	}{
		{"no tokens: all open", "", "", map[string]want{"": {200, 200}, apiTok: {200, 200}}},
		{"only api token: admin routes take it too", apiTok, "", map[string]want{
			"": {401, 401}, "wrong-token-0123456789": {401, 401}, apiTok: {200, 200}}},
		{"only admin token: API open, admin protected", "", adminTok, map[string]want{
			"": {200, 401}, apiTok: {200, 401}, adminTok: {200, 200}}},
		{"both: each group its own", apiTok, adminTok, map[string]want{
			"": {401, 401}, apiTok: {200, 401}, adminTok: {401, 200}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startHardened(t, func(c *config.Config) { c.Auth.APIToken, c.Auth.AdminToken = tc.api, tc.admin })
			for tok, w := range tc.sent {
				hdr := map[string]string{"Content-Type": "application/json"}
				if tok != "" {
					hdr["Authorization"] = "Bearer " + tok
				}
				missing := w.api // a missing collection, once past the token check
				if missing == http.StatusOK {
					missing = http.StatusNotFound
				}
				for _, rq := range []struct {
					method, path, body string
					status             int
				}{
					{"GET", "/v1/collections", "", w.api},
					{"GET", "/v1/collections/nope/vectors", "", missing},
					{"GET", "/v1/admin/usage", "", w.admin},
					{"POST", "/v1/admin/worker", `{"action":"pause"}`, w.admin},
				} {
					a := send(t, rq.method, h.url+rq.path, rq.body, hdr)
					require.Equal(t, rq.status, a.status, "%s %s with %q: %s", rq.method, rq.path, tok, a.body)
					if rq.status == http.StatusUnauthorized {
						requireCode(t, a, 401, api.CodeUnauthenticated)
						require.True(t, strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer"), a.header.Get("WWW-Authenticate"))
						if tok != "" {
							require.Contains(t, a.header.Get("WWW-Authenticate"), `error="invalid_token"`)
						}
					}
				}
				for _, open := range []string{"/healthz", "/readyz"} {
					requireCode(t, send(t, "GET", h.url+open, "", hdr), 200, "")
				}
			}
			// The Go client sends each group's token.
			c := client.New(h.url, client.WithToken(tc.api), client.WithAdminToken(tc.admin))
			_, err := c.ListCollections(context.Background())
			require.NoError(t, err)
			_, err = c.Usage(context.Background())
			require.NoError(t, err)
		})
	}
}

func TestJSONBodiesRequireContentTypeJSON(t *testing.T) {
	h := startHardened(t, nil)
	body := `{"name":"c%d","dimension":2,"metric":"l2"}`
	cases := []struct {
		contentType string
		status      int
	}{
		{"", 415},
		{"text/plain", 415},
		{"text/plain;charset=UTF-8", 415},
		{"application/x-www-form-urlencoded", 415},
		{"multipart/form-data; boundary=x", 415},
		{"application/jsonx", 415},
		{"application/json;;", 415},
		{"application/json", 201},
		{"application/json; charset=utf-8", 201},
		{"Application/JSON", 201},
	}
	for i, tc := range cases {
		t.Run(tc.contentType, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.contentType != "" {
				hdr["Content-Type"] = tc.contentType
			}
			a := send(t, "POST", h.url+"/v1/collections", fmt.Sprintf(body, i), hdr)
			if tc.status == 415 {
				requireCode(t, a, 415, api.CodeUnsupportedMediaType)
				return
			}
			requireCode(t, a, tc.status, "")
		})
	}
	// Every JSON route checks it, before anything else.
	for _, p := range []string{"/v1/collections/c7/vectors", "/v1/collections/c7/search", "/v1/collections/c7/tier",
		"/v1/collections/c7/restore", "/v1/admin/worker"} {
		requireCode(t, send(t, "POST", h.url+p, `{}`, map[string]string{"Content-Type": "text/plain"}), 415, api.CodeUnsupportedMediaType)
	}
}

func TestInFlightLimitAnswersOverloaded(t *testing.T) {
	hold := holdAt(t, "warm.written", 4) // released before the server's cleanup, also when the test fails
	h := startHardened(t, func(c *config.Config) { c.HTTP.MaxInFlight = 2 }, server.WithHook(hold.Hook))
	c := client.New(h.url)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: n, Dimension: 2, Metric: api.MetricL2})
		require.NoError(t, err)
		_, err = c.Insert(ctx, n, []api.Vector{{ID: "x", Values: []float32{1, 2}}})
		require.NoError(t, err)
	}
	// Two transitions hold both slots inside the hook.
	errs := make(chan error, 2)
	for _, n := range []string{"a", "b"} {
		go func() {
			_, err := c.SetTier(ctx, n, api.TierWarm)
			errs <- err
		}()
	}
	hold.Wait(t, 2)
	a := send(t, "GET", h.url+"/v1/collections", "", nil)
	requireCode(t, a, 503, api.CodeOverloaded)
	require.Equal(t, "1", a.header.Get("Retry-After"))
	// Health and readiness are not counted.
	requireCode(t, send(t, "GET", h.url+"/healthz", "", nil), 200, "")
	requireCode(t, send(t, "GET", h.url+"/readyz", "", nil), 200, "")
	hold.Release()
	for range 2 {
		require.NoError(t, <-errs)
	}
	got, err := c.ListCollections(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
}

func TestHTTPServerTimeouts(t *testing.T) {
	cfg := config.Default()
	require.NoError(t, cfg.Validate())
	cfg.DataDir = t.TempDir()
	cfg.HTTP.ReadHeaderTimeout = config.Duration(100 * time.Millisecond)
	cfg.HTTP.ReadTimeout = config.Duration(300 * time.Millisecond)
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close(context.Background())) })
	hs := srv.HTTPServer()
	require.Equal(t, cfg.HTTP.ReadTimeout.D(), hs.ReadTimeout)
	require.Equal(t, cfg.HTTP.WriteTimeout.D(), hs.WriteTimeout)
	require.Equal(t, cfg.HTTP.IdleTimeout.D(), hs.IdleTimeout)
	require.Equal(t, cfg.HTTP.ReadHeaderTimeout.D(), hs.ReadHeaderTimeout)
	// The write timeout outlasts one S3 operation of a transition.
	require.Greater(t, hs.WriteTimeout, 2*cfg.S3.OpTimeout.D())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	// A client that sends a body slower than the read timeout allows is
	// cut off instead of holding the connection (and a slot) forever.
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/collections HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
	rd := bufio.NewReader(conn)
	_, err = io.ReadAll(rd)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept waiting for the body: %v", err)
}

// TestWrongMethodAnswers405: every route answers a method it does not
// serve with 405, an Allow header listing the ones it does, and a JSON
// error body.
func TestWrongMethodAnswers405(t *testing.T) {
	h := startHardened(t, nil)
	routes := []struct {
		path  string
		allow []string
	}{
		{"/v1/collections", []string{"GET", "POST"}},
		{"/v1/collections/c1", []string{"GET", "DELETE"}},
		{"/v1/collections/c1/vectors", []string{"GET", "POST"}},
		{"/v1/collections/c1/search", []string{"POST"}},
		{"/v1/collections/c1/tier", []string{"POST"}},
		{"/v1/collections/c1/snapshots", []string{"GET", "POST"}},
		{"/v1/collections/c1/restore", []string{"POST"}},
		{"/v1/admin/worker", []string{"GET", "POST"}},
		{"/v1/admin/usage", []string{"GET"}},
		{"/healthz", []string{"GET"}},
		{"/readyz", []string{"GET"}},
	}
	all := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	for _, rt := range routes {
		for _, m := range all {
			if contains(rt.allow, m) {
				continue
			}
			t.Run(m+" "+rt.path, func(t *testing.T) {
				a := send(t, m, h.url+rt.path, `{}`, map[string]string{"Content-Type": "application/json"})
				requireCode(t, a, 405, api.CodeMethodNotAllowed)
				allow := a.header.Get("Allow")
				for _, want := range rt.allow {
					assert.Contains(t, allow, want)
				}
				assert.NotContains(t, allow, m)
			})
		}
	}
	// A path no route has is still 404.
	requireCode(t, send(t, "GET", h.url+"/v2/nothing", "", nil), 404, api.CodeNotFound)
	requireCode(t, send(t, "PATCH", h.url+"/v1/collections/c1/nothing", "", nil), 404, api.CodeNotFound)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestErrorBodiesHideTheDataFolder: errors caused by the local file
// system (a warm file gone, a warm file damaged) answer a stable code and
// a message without the data folder's path (the log has the detail).
func TestErrorBodiesHideTheDataFolder(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, file string)
		code   string
	}{
		{"warm file missing", func(t *testing.T, file string) { require.NoError(t, os.Remove(file)) }, api.CodeDataCorrupted},
		{"warm file replaced by a folder", func(t *testing.T, file string) {
			require.NoError(t, os.Remove(file))
			require.NoError(t, os.Mkdir(file, 0o700))
		}, api.CodeInternal},
		{"warm file damaged", func(t *testing.T, file string) {
			require.NoError(t, os.WriteFile(file, []byte("not parquet at all"), 0o600))
		}, api.CodeDataCorrupted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startHardened(t, nil)
			c := client.New(h.url)
			ctx := context.Background()
			_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "w", Dimension: 2, Metric: api.MetricL2})
			require.NoError(t, err)
			_, err = c.Insert(ctx, "w", []api.Vector{{ID: "x", Values: []float32{1, 2}}})
			require.NoError(t, err)
			_, err = c.SetTier(ctx, "w", api.TierWarm)
			require.NoError(t, err)
			var files []string
			require.NoError(t, filepath.WalkDir(h.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
					files = append(files, p)
				}
				return err
			}))
			require.Len(t, files, 1)
			tc.damage(t, files[0])
			for _, rq := range []struct{ method, path, body string }{
				{"GET", "/v1/collections/w/vectors", ""},
				{"POST", "/v1/collections/w/search", `{"vector":[1,2],"k":1}`},
				{"POST", "/v1/collections/w/tier", `{"target":"hot"}`},
			} {
				a := send(t, rq.method, h.url+rq.path, rq.body, map[string]string{"Content-Type": "application/json"})
				require.GreaterOrEqual(t, a.status, 500, "%s %s: %s", rq.method, rq.path, a.body)
				require.Contains(t, a.body, `"code":"`+tc.code+`"`, "%s %s", rq.method, rq.path)
				require.NotContains(t, a.body, h.cfg.DataDir, "%s %s", rq.method, rq.path)
				rel, err := filepath.Rel(h.cfg.DataDir, files[0])
				require.NoError(t, err)
				require.NotContains(t, a.body, filepath.Base(rel), "%s %s", rq.method, rq.path)
				require.Contains(t, a.body, `collection \"w\"`)
			}
		})
	}
}

// TestStrictJSON: null bodies, keys that differ from the field names in
// case, duplicate keys and unknown keys are all invalid_argument.
func TestStrictJSON(t *testing.T) {
	type target int
	const (
		create target = iota
		insert
		search
	)
	cases := []struct {
		name string
		to   target
		body string
		want string // "" = accepted
	}{
		{"valid create", create, `{"name":"a","dimension":2,"metric":"l2"}`, ""},
		{"valid insert", insert, `{"vectors":[{"id":"a","values":[1,2]},{"id":"b","values":[3,4]}]}`, ""},
		{"valid search with spaces", search, " \n{\"vector\":[1,2],\"k\":3}\n", ""},
		{"null body", create, `null`, "null"},
		{"null body with spaces", search, "  null ", "null"},
		{"array body", create, `[]`, "JSON object"},
		{"string body", create, `"x"`, "JSON object"},
		{"empty body", create, ``, "empty body"},
		{"key case differs", create, `{"Name":"a","dimension":2,"metric":"l2"}`, `unknown field "Name"`},
		{"key all caps", search, `{"VECTOR":[1,2],"k":3}`, `unknown field "VECTOR"`},
		{"nested key case differs", insert, `{"vectors":[{"ID":"a","values":[1,2]}]}`, `unknown field "vectors[0].ID"`},
		{"duplicate key", create, `{"name":"a","name":"b","dimension":2,"metric":"l2"}`, `duplicate key "name"`},
		{"duplicate nested key", insert, `{"vectors":[{"id":"a","values":[1,2],"id":"b"}]}`, `duplicate key "vectors[0].id"`},
		{"duplicate key differing in case", create, `{"name":"a","Name":"b","dimension":2,"metric":"l2"}`, `unknown field "Name"`},
		{"unknown key", create, `{"name":"a","dimension":2,"metric":"l2","shards":2}`, `unknown field "shards"`},
		{"unknown nested key", insert, `{"vectors":[{"id":"a","values":[1,2],"norm":1}]}`, `unknown field "vectors[0].norm"`},
		{"trailing data", create, `{"name":"a","dimension":2,"metric":"l2"} {}`, "trailing data"},
		{"wrong type", search, `{"vector":"x","k":3}`, "malformed JSON"},
		{"syntax error", search, `{"vector":[1,2],"k":}`, "malformed JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			switch tc.to {
			case create:
				v = &api.CreateCollectionRequest{}
			case insert:
				v = &api.InsertRequest{}
			case search:
				v = &api.SearchRequest{}
			}
			err := server.DecodeJSON(strings.NewReader(tc.body), v)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, api.CodeInvalidArgument, api.CodeOf(err), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestCancelledSearchGetsNoAnswer: a search whose client went away stops,
// answers nothing (no 500 error body) and is counted.
func TestCancelledSearchGetsNoAnswer(t *testing.T) {
	h := startHardened(t, nil)
	c := client.New(h.url)
	ctx := context.Background()
	_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "s", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	vs := make([]api.Vector, 3000)
	for i := range vs {
		vs[i] = api.Vector{ID: fmt.Sprintf("v%d", i), Values: []float32{float32(i), 1}}
	}
	_, err = c.Insert(ctx, "s", vs)
	require.NoError(t, err)

	gone, cancel := context.WithCancel(ctx)
	cancel()
	req := httptest.NewRequestWithContext(gone, http.MethodPost, "/v1/collections/s/search", strings.NewReader(`{"vector":[1,1],"k":2}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	require.Empty(t, rec.Body.String(), "no answer body for a client that went away")

	mrec := httptest.NewRecorder()
	h.srv.DebugHandler().ServeHTTP(mrec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Contains(t, mrec.Body.String(), "tierd_http_cancelled_total 1")
	require.Contains(t, mrec.Body.String(), `tierd_http_requests_total{code="cancelled",route="POST /v1/collections/{name}/search"} 1`)
}

// TestS3ErrorBodiesNameOnlyTheObject: an S3 failure answers the fixed
// message of its code with the collection and the object key (public: the
// collection shows it), not the store's error text.
func TestS3ErrorBodiesNameOnlyTheObject(t *testing.T) {
	objs := uploader.NewMemStore()
	h := startHardened(t, nil, server.WithObjectStore(objs))
	c := client.New(h.url)
	ctx := context.Background()
	_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "o", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = c.Insert(ctx, "o", []api.Vector{{ID: "x", Values: []float32{1, 2}}})
	require.NoError(t, err)
	coll, err := c.SetTier(ctx, "o", api.TierCold)
	require.NoError(t, err)
	id, err := objs.Inject(uploader.Fault{Kind: uploader.FaultAccessDenied, Op: uploader.OpGetObject})
	require.NoError(t, err)
	defer objs.RemoveFault(id)
	a := send(t, "POST", h.url+"/v1/collections/o/tier", `{"target":"hot"}`, map[string]string{"Content-Type": "application/json"})
	requireCode(t, a, 503, api.CodeStorageUnavailable)
	require.Contains(t, a.body, `collection \"o\": object storage is unavailable`)
	require.Contains(t, a.body, "(object "+coll.Object+")")
	require.NotContains(t, a.body, "attempt", "the store's retry detail stays in the log")
}
