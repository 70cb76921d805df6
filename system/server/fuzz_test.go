package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

// fuzzRoutes are the routes with a JSON body.
var fuzzRoutes = []string{
	"/v1/collections",
	"/v1/collections/f/vectors",
	"/v1/collections/f/search",
	"/v1/collections/f/tier",
	"/v1/collections/f/restore",
	"/v1/admin/worker",
}

// FuzzRequestDecoding sends arbitrary bodies to every JSON route: the
// answer is never a 5xx (no panic, no internal error) and every error is a
// well-formed error body with a stable code.
func FuzzRequestDecoding(f *testing.F) {
	for i, body := range []string{
		`{"name":"c1","dimension":3,"metric":"cosine"}`,
		`{"vectors":[{"id":"v1","values":[1,2,3]}]}`,
		`{"vector":[1,2,3],"k":10}`,
		`{"target":"cold"}`,
		`{"snapshot":"x"}`,
		`{"action":"run_once"}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Add(uint8(1), []byte(`{"vectors":[{"id":"v1","values":[NaN,1e39,3]}]}`))
	f.Add(uint8(2), []byte(`{"vector":[0,0,0],"k":1001} trailing`))
	cfg := config.Default()
	cfg.DataDir = f.TempDir()
	cfg.Worker.Paused = true
	cfg.Limits.MaxBodyBytes = 64 << 10
	cfg.Limits.MaxVectorsPerInsert = 100
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		server.WithObjectStore(uploader.NewMemStore()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close(context.Background()) })
	h := srv.Handler()
	create := httptest.NewRecorder()
	h.ServeHTTP(create, jsonRequest(http.MethodPost, "/v1/collections", []byte(`{"name":"f","dimension":3,"metric":"l2"}`)))
	if create.Code != http.StatusCreated {
		f.Fatalf("create: %d %s", create.Code, create.Body)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, jsonRequest(http.MethodPost, path, body))
		if rec.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%s %q: status %d with a malformed error body %q", path, body, rec.Code, rec.Body)
			}
			if api.HTTPStatus(eb.Error.Code) != rec.Code {
				t.Fatalf("%s: code %s with status %d", path, eb.Error.Code, rec.Code)
			}
		}
		if path == "/v1/collections" && rec.Code == http.StatusCreated {
			// Keep the collection count bounded.
			var c api.Collection
			_ = json.Unmarshal(rec.Body.Bytes(), &c)
			del := httptest.NewRecorder()
			h.ServeHTTP(del, httptest.NewRequest(http.MethodDelete, "/v1/collections/"+c.Name, nil))
		}
	})
}

// FuzzListQuery sends arbitrary query strings to GET .../vectors: the
// answer is never a 5xx; an error is a well-formed body with a stable code;
// a page holds at most its limit of vectors, ids ascending and after the
// cursor, and names the last id as next only when it is full.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{"", "limit=2", "after=v1&limit=1", "after=", "limit=0", "limit=10001", "limit=x",
		"after=%zz", "limit=1&limit=2", "offset=3", "after=" + string(make([]byte, 300)), "after=v%00&limit=10000"} {
		f.Add(q)
	}
	cfg := config.Default()
	cfg.DataDir = f.TempDir()
	cfg.Worker.Paused = true
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		server.WithObjectStore(uploader.NewMemStore()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close(context.Background()) })
	h := srv.Handler()
	for _, body := range []string{`{"name":"f","dimension":1,"metric":"l2"}`,
		`{"vectors":[{"id":"v3","values":[3]},{"id":"v1","values":[1]},{"id":"v2","values":[2]},{"id":"w","values":[0]}]}`} {
		path := "/v1/collections"
		if body[2] == 'v' {
			path += "/f/vectors"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, jsonRequest(http.MethodPost, path, []byte(body)))
		if rec.Code >= 300 {
			f.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/collections/f/vectors", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: status %d: %s", rawQuery, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%q: status %d with a malformed error body %q", rawQuery, rec.Code, rec.Body)
			}
			return
		}
		var page api.VectorPage
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatalf("%q: %v", rawQuery, err)
		}
		q, _ := url.ParseQuery(rawQuery)
		after := q.Get("after")
		for i, v := range page.Vectors {
			if v.ID <= after || (i > 0 && v.ID <= page.Vectors[i-1].ID) {
				t.Fatalf("%q: ids not ascending after the cursor: %v", rawQuery, page.Vectors)
			}
		}
		if page.Next != "" && page.Next != page.Vectors[len(page.Vectors)-1].ID {
			t.Fatalf("%q: next %q is not the last id", rawQuery, page.Next)
		}
	})
}

// jsonRequest is a request with a JSON body, declared as such.
func jsonRequest(method, path string, body []byte) *http.Request {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}
