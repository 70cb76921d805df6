package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTags(t *testing.T) {
	tests := []struct {
		name        string
		tp          ThirdParty
		src, pulled string
	}{
		{"minio", MinIO(), "tierchaos/minio:src-20260212-7aac2a2c5b7c-u65532", "tierchaos/minio:pull-RELEASE.2025-09-07T16-13-09Z"},
		{"toxiproxy", Toxiproxy(), "tierchaos/toxiproxy:src-2.12.0-u65532", "tierchaos/toxiproxy:pull-2.12.0"},
		{"no official image", ThirdParty{Repo: "r/x", Version: "v1.2.3"}, "r/x:src-1.2.3-u65532", ""},
		{"official without tag", ThirdParty{Repo: "r/x", Version: "v1.0.0", Official: "registry:5000/x"}, "r/x:src-1.0.0-u65532", "r/x:pull-latest"},
		{"official by digest", ThirdParty{Repo: "r/x", Version: "v1.0.0", Official: "quay.io/x:1.4@sha256:" + strings.Repeat("ab", 32)}, "r/x:src-1.0.0-u65532", "r/x:pull-1.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.src, tt.tp.SourceTag())
			assert.Equal(t, tt.pulled, tt.tp.PulledTag())
			assert.NotEqual(t, tt.tp.SourceTag(), tt.tp.PulledTag(), "one tag, one build")
		})
	}
}

// fakeEngine is the part of the Docker API that ensureThirdParty uses:
// a set of local images, a registry that answers or not, and builds.
type fakeEngine struct {
	client.APIClient
	local map[string]bool
	// repoDigests are the RepoDigests of local images (a pull by digest
	// gives name@digest; a tag keeps its source's).
	repoDigests map[string][]string
	registry    bool
	pulls       []string
	tags        [][2]string
	builds      []string
}

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	if f.local[ref] {
		var r client.ImageInspectResult
		r.RepoDigests = f.repoDigests[ref]
		return r, nil
	}
	return client.ImageInspectResult{}, fmt.Errorf("no such image %s: %w", ref, cerrdefs.ErrNotFound)
}

func (f *fakeEngine) ImagePull(_ context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	f.pulls = append(f.pulls, ref)
	if !f.registry {
		return nil, errors.New("no registry answers")
	}
	f.local[ref] = true
	if r, err := ParseReference(ref); err == nil && r.Digest != "" {
		f.local[r.Canonical()] = true
		f.repoDigests[ref] = []string{r.Canonical()}
		f.repoDigests[r.Canonical()] = []string{r.Canonical()}
	}
	return pullResponse{io.NopCloser(strings.NewReader(""))}, nil
}

func (f *fakeEngine) ImageTag(_ context.Context, o client.ImageTagOptions) (client.ImageTagResult, error) {
	f.tags = append(f.tags, [2]string{o.Source, o.Target})
	f.local[o.Target] = true
	f.repoDigests[o.Target] = f.repoDigests[o.Source]
	return client.ImageTagResult{}, nil
}

func (f *fakeEngine) ImageBuild(_ context.Context, ctx io.Reader, o client.ImageBuildOptions) (client.ImageBuildResult, error) {
	if _, err := io.Copy(io.Discard, ctx); err != nil {
		return client.ImageBuildResult{}, err
	}
	f.builds = append(f.builds, o.Tags...)
	for _, tag := range o.Tags {
		f.local[tag] = true
	}
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(`{"stream":"ok"}`))}, nil
}

type pullResponse struct{ io.ReadCloser }

func (pullResponse) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(func(jsonstream.Message, error) bool) {}
}

func (pullResponse) Wait(context.Context) error { return nil }

func TestEnsureThirdParty(t *testing.T) {
	tp := MinIO()
	src, pulled := tp.SourceTag(), tp.PulledTag()
	const custom = "example.org/minio:custom"
	const canonical = "quay.io/minio/minio@" + MinIODigest
	tests := []struct {
		name     string
		local    []string
		digests  map[string][]string
		registry bool
		env      map[string]string
		want     string
		wantErr  string
		pulls    []string
		tags     [][2]string
		builds   []string
	}{
		{name: "source build present", local: []string{src, pulled}, want: src},
		{name: "root source build of an older harness is not used", local: []string{"tierchaos/minio:src-20260212-7aac2a2c5b7c"},
			want: src, pulls: []string{MinIOOfficial}, builds: []string{src}},
		{name: "pulled release present", local: []string{pulled}, digests: map[string][]string{pulled: {canonical}}, registry: true, want: pulled},
		{name: "pulled tag without the digest is not used", local: []string{pulled}, registry: true,
			want: pulled, pulls: []string{MinIOOfficial}, tags: [][2]string{{canonical, pulled}}},
		{name: "pulled tag of another digest is not used, no registry: build", local: []string{pulled},
			digests: map[string][]string{pulled: {"quay.io/minio/minio@sha256:" + strings.Repeat("0", 64)}},
			want:    src, pulls: []string{MinIOOfficial}, builds: []string{src}},
		{name: "old shared tag is not used", local: []string{"tierchaos/minio:20260212-7aac2a2c5b7c"}, registry: true,
			want: pulled, pulls: []string{MinIOOfficial}, tags: [][2]string{{canonical, pulled}}},
		{name: "registry answers", registry: true, want: pulled, pulls: []string{MinIOOfficial}, tags: [][2]string{{canonical, pulled}}},
		{name: "no registry: build", want: src, pulls: []string{MinIOOfficial}, builds: []string{src}},
		{name: "pull never: build", registry: true, env: map[string]string{EnvPull: "never"}, want: src, builds: []string{src}},
		{name: "override present", local: []string{custom, src}, env: map[string]string{EnvMinIOImage: custom}, want: custom},
		{name: "override pulled under its own name", registry: true, env: map[string]string{EnvMinIOImage: custom}, want: custom, pulls: []string{custom}},
		{name: "override missing, no registry", local: []string{src}, env: map[string]string{EnvMinIOImage: custom},
			wantErr: "cannot be pulled", pulls: []string{custom}},
		{name: "override missing, pull never", local: []string{src}, env: map[string]string{EnvMinIOImage: custom, EnvPull: "never"},
			wantErr: "does not exist locally"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			// A cached binary, so that a build needs no go install.
			bin := filepath.Join(cache, "bin", tp.Name+"-"+tp.Version, tp.Binary)
			require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
			require.NoError(t, os.WriteFile(bin, []byte("binary"), 0o755))
			env := map[string]string{EnvCacheDir: cache}
			for k, v := range tt.env {
				env[k] = v
			}
			f := &fakeEngine{local: map[string]bool{}, repoDigests: map[string][]string{}, registry: tt.registry}
			for r, d := range tt.digests {
				f.repoDigests[r] = d
			}
			for _, r := range tt.local {
				f.local[r] = true
			}
			b, err := newBuilder(f, Options{ModuleRoot: t.TempDir(), Getenv: func(k string) string { return env[k] }})
			require.NoError(t, err)
			got, err := b.ensureThirdParty(context.Background(), tp)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), EnvMinIOImage)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}
			assert.Equal(t, tt.pulls, f.pulls, "pulls")
			assert.Equal(t, tt.tags, f.tags, "tags")
			assert.Equal(t, tt.builds, f.builds, "builds")
		})
	}
}

// TestImagesRunAsNonRoot: every Dockerfile the harness builds ends with
// USER 65532:65532, and tierd's gives it a /data it owns.
func TestImagesRunAsNonRoot(t *testing.T) {
	for _, df := range []string{
		MinIO().Dockerfile, Toxiproxy().Dockerfile,
		Tierd().dockerfile(), Own{Name: "s3faultd"}.dockerfile(), Own{Name: "datavold"}.dockerfile(),
	} {
		assert.Contains(t, df, "\nUSER 65532:65532\n", df)
		assert.Less(t, strings.Index(df, "USER"), strings.Index(df, "ENTRYPOINT"), df)
	}
	tierd := Tierd().dockerfile()
	assert.Contains(t, tierd, "COPY --chown=65532:65532 datadir /data\n")
	assert.NotContains(t, Own{Name: "s3faultd"}.dockerfile(), "datadir")
}

// TestWriteContextEmptyDir: an empty path in files is an empty directory
// of the build context.
func TestWriteContextEmptyDir(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeContext(&buf, "FROM scratch\n", map[string]string{"datadir": ""}))
	tr := tar.NewReader(&buf)
	var dirs []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, h.Name)
		}
	}
	assert.Equal(t, []string{"datadir/"}, dirs)
}

// TestOwnValidate: an Own description that would make a broken
// Dockerfile or tag is refused with a clear error before any build.
func TestOwnValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		own  Own
		want string
	}{
		{name: "ok", own: Own{Name: "kvstore", Package: "./examples/kvstore/cmd/kvstore", DataDir: "/data"}},
		{name: "no name", own: Own{Package: "./cmd/x"}, want: "own image name"},
		{name: "slash", own: Own{Name: "a/b", Package: "./cmd/x"}, want: "own image name"},
		{name: "upper", own: Own{Name: "KV", Package: "./cmd/x"}, want: "own image name"},
		{name: "no package", own: Own{Name: "kv"}, want: "no Go package"},
		{name: "relative data dir", own: Own{Name: "kv", Package: "./cmd/x", DataDir: "data"}, want: "not absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.own.validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
