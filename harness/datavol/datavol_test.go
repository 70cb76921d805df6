package datavol_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tierchaos/tierchaos/harness/datavol"
	"github.com/tierchaos/tierchaos/internal/tmpfs/tmpfstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backends returns the same directory as a Dir and through the sidecar's
// handler, so that every test checks both implementations.
func backends(t *testing.T, dir string) map[string]datavol.Volume {
	t.Helper()
	h, err := datavol.NewHandler(map[string]datavol.Dir{"data": datavol.Dir(dir)}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := datavol.NewClient(srv.URL, srv.Client())
	require.NoError(t, err)
	t.Cleanup(srv.Client().CloseIdleConnections)
	return map[string]datavol.Volume{"dir": datavol.Dir(dir), "sidecar": c.Volume("data")}
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func TestListReadClear(t *testing.T) {
	dir := t.TempDir()
	for name, v := range backends(t, dir) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			l, err := v.List(ctx)
			require.NoError(t, err)
			require.Empty(t, l)
			write(t, dir, "manifest.json", `{"version":1}`)
			write(t, dir, "wal/wal-1.log", strings.Repeat("w", 100))
			write(t, dir, "local/a/b.parquet", strings.Repeat("p", 7))
			require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "link")))

			l, err = v.List(ctx)
			require.NoError(t, err)
			require.Equal(t, datavol.Listing{"manifest.json": 13, "wal/wal-1.log": 100, "local/a/b.parquet": 7}, l,
				"regular files only, slash-separated, with sizes")
			b, err := v.ReadFile(ctx, "manifest.json")
			require.NoError(t, err)
			require.Equal(t, `{"version":1}`, string(b))
			b, err = v.ReadFile(ctx, "local/a/b.parquet")
			require.NoError(t, err)
			require.Equal(t, "ppppppp", string(b))

			sp, err := v.Statfs(ctx)
			require.NoError(t, err)
			require.Positive(t, sp.Total)
			require.LessOrEqual(t, sp.Free, sp.Total)

			require.NoError(t, v.Clear(ctx))
			l, err = v.List(ctx)
			require.NoError(t, err)
			require.Empty(t, l)
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, ents, "everything removed, the root stays")
		})
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "sub/file", "x")
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "escape")))
	cases := []struct {
		name string
		call func(v datavol.Volume) error
		code datavol.Code
		is   error
	}{
		{"empty-path", func(v datavol.Volume) error { _, err := v.ReadFile(context.Background(), ""); return err }, datavol.CodeBadPath, datavol.ErrBadPath},
		{"dot-dot", func(v datavol.Volume) error { _, err := v.ReadFile(context.Background(), "../etc/passwd"); return err }, datavol.CodeBadPath, datavol.ErrBadPath},
		{"absolute", func(v datavol.Volume) error { _, err := v.ReadFile(context.Background(), "/etc/passwd"); return err }, datavol.CodeBadPath, datavol.ErrBadPath},
		{"missing", func(v datavol.Volume) error { _, err := v.ReadFile(context.Background(), "nope"); return err }, datavol.CodeNotFound, fs.ErrNotExist},
		{"symlink-out", func(v datavol.Volume) error { _, err := v.ReadFile(context.Background(), "escape"); return err }, datavol.CodeIO, nil},
		{"directory", func(v datavol.Volume) error { _, err := v.ReadFile(context.Background(), "sub"); return err }, datavol.CodeIO, nil},
		{"fill-not-tmpfs", func(v datavol.Volume) error { _, err := v.Fill(context.Background()); return err }, datavol.CodeNotTmpfs, datavol.ErrNotTmpfs},
	}
	for name, v := range backends(t, dir) {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				if tc.name == "fill-not-tmpfs" {
					sp, err := v.Statfs(context.Background())
					require.NoError(t, err)
					if sp.Tmpfs {
						t.Skip("the temporary directory is a tmpfs here")
					}
				}
				err := tc.call(v)
				require.Error(t, err)
				require.Equal(t, tc.code, datavol.CodeOf(err), "%v", err)
				if tc.is != nil {
					require.ErrorIs(t, err, tc.is)
				}
			})
		}
	}
	_, err := datavol.Dir(filepath.Join(dir, "absent")).List(context.Background())
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestSidecarAPIErrors(t *testing.T) {
	h, err := datavol.NewHandler(map[string]datavol.Dir{"data": datavol.Dir(t.TempDir())}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	cases := []struct {
		method, path string
		status       int
		code         datavol.Code
	}{
		{http.MethodGet, "/volumes/other/files", http.StatusNotFound, datavol.CodeUnknownVolume},
		{http.MethodGet, "/volumes/Bad_Name/files", http.StatusBadRequest, datavol.CodeBadPath},
		{http.MethodPost, "/volumes/data/files", http.StatusMethodNotAllowed, datavol.CodeMethodNotAllowed},
		{http.MethodGet, "/volumes/data/fill", http.StatusMethodNotAllowed, datavol.CodeMethodNotAllowed},
		{http.MethodGet, "/volumes/data/file?path=..", http.StatusBadRequest, datavol.CodeBadPath},
		{http.MethodGet, "/volumes/data/file", http.StatusBadRequest, datavol.CodeBadPath},
		{http.MethodGet, "/nowhere", http.StatusNotFound, datavol.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body struct {
				Code    datavol.Code `json:"code"`
				Message string       `json:"message"`
			}
			require.NoError(t, jsonDecode(resp, &body))
			require.Equal(t, tc.code, body.Code)
			require.NotEmpty(t, body.Message)
		})
	}
	_, err = datavol.NewHandler(map[string]datavol.Dir{"Bad Name": "/"}, nil)
	require.ErrorIs(t, err, datavol.ErrBadPath)
	_, err = datavol.NewClient("127.0.0.1:80", nil)
	require.Error(t, err, "a URL without a scheme")
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestFillAndFree fills a 1 MiB tmpfs to ENOSPC through each backend and
// frees it again.
func TestFillAndFree(t *testing.T) {
	dir := tmpfstest.Dir(t, "1m")
	write(t, dir, "manifest.json", "{}")
	for name, v := range backends(t, dir) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			before, err := v.Statfs(ctx)
			require.NoError(t, err)
			require.True(t, before.Tmpfs)
			require.Equal(t, int64(1<<20), before.Total)
			n, err := v.Fill(ctx)
			require.NoError(t, err)
			require.Greater(t, n, before.Free-4096, "filled what was free")
			full, err := v.Statfs(ctx)
			require.NoError(t, err)
			require.Zero(t, full.Free, "nothing free after Fill")
			err = os.WriteFile(filepath.Join(dir, "more"), make([]byte, 8192), 0o644)
			require.Error(t, err, "a real ENOSPC")
			require.NoError(t, os.Remove(filepath.Join(dir, "more")))
			l, err := v.List(ctx)
			require.NoError(t, err)
			var fillers int64
			for p, size := range l {
				if strings.HasPrefix(p, datavol.FillerPrefix) {
					fillers += size
				}
			}
			require.Equal(t, n, fillers, "the filler holds the bytes Fill reports")

			removed, err := v.Free(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, removed)
			after, err := v.Statfs(ctx)
			require.NoError(t, err)
			require.Equal(t, before.Free, after.Free, "Free gives back exactly what Fill took")
			l, err = v.List(ctx)
			require.NoError(t, err)
			require.Equal(t, datavol.Listing{"manifest.json": 2}, l, "other files untouched")
		})
	}
}
