// Package images makes sure the container images a tierchaos stack needs
// exist on the local Docker engine: an image already tagged locally is used;
// otherwise a pinned official image is pulled when a registry answers;
// otherwise the image is built from source with the Go toolchain (go install
// into a cache folder, then a FROM scratch image). Programs built from Go
// source (Own: tierd, the S3 fault layer, the data sidecar, or a service
// of the user's) are always built, and tagged with the hash of binary and
// Dockerfile.
//
// A local tag never names two different builds: a third-party image built
// from source is tagged src-<module version> (SourceTag), a pulled release
// pull-<release tag> (PulledTag), so tierchaos/minio:src-20260212-7aac2a2c5b7c
// and tierchaos/minio:pull-RELEASE.2025-09-07T16-13-09Z are two images.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Versions pinned by the harness. MinIO has no semver tags on the Go module
// proxy, so it is pinned by pseudo-version (a commit of February 2026); its
// official image is a release of its own, another build.
//
// The official images are pinned by tag and by digest: the digest is the
// release's multi-platform index (OCI index / manifest list), so one pin
// serves amd64 and arm64 engines, and a pull fetches exactly that content
// whatever the tag points to now.
const (
	MinIORepo     = "tierchaos/minio"
	ToxiproxyRepo = "tierchaos/toxiproxy"
	MinIOModule   = "github.com/minio/minio"
	MinIOVersion  = "v0.0.0-20260212201848-7aac2a2c5b7c"
	// MinIODigest is the index digest of MinIO's RELEASE.2025-09-07T16-13-09Z
	// image (the same content on quay.io/minio/minio and docker.io/minio/minio).
	MinIODigest     = "sha256:14cea493d9a34af32f524e538b8346cf79f3321eff8e708c1e2960462bd8936e"
	MinIOOfficial   = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z@" + MinIODigest
	ToxiproxyModule = "github.com/Shopify/toxiproxy/v2/cmd/server"
	// ToxiproxyVersion is the Toxiproxy release the harness runs.
	ToxiproxyVersion = "v2.12.0"
	// ToxiproxyDigest is the index digest of ghcr.io/shopify/toxiproxy:2.12.0
	// (its linux/amd64 manifest is sha256:a3e24437…, linux/arm64 sha256:5ab4b4e8…).
	ToxiproxyDigest   = "sha256:9378ed52a28bc50edc1350f936f518f31fa95f0d15917d6eb40b8e376d1a214e"
	ToxiproxyOfficial = "ghcr.io/shopify/toxiproxy:2.12.0@" + ToxiproxyDigest
)

// RunUID and RunGID are the user and group every image the harness builds
// runs as (USER in its Dockerfile), and the owner of the data directories
// the stack gives them (tmpfs volumes and container tmpfs mounts carry
// uid=65532,gid=65532). 65532 is the "nonroot" user of distroless images:
// an id no host account is likely to have.
const (
	RunUID = 65532
	RunGID = 65532
)

// RunUser is RunUID:RunGID, as Docker's USER and container User want it.
var RunUser = fmt.Sprintf("%d:%d", RunUID, RunGID)

// Environment variables that override image names and behaviour.
const (
	// EnvMinIOImage and EnvToxiproxyImage name an image to use instead: a
	// local one, else (TIERCHAOS_PULL=auto) one pulled under that name;
	// the harness never builds into a name it did not choose.
	EnvMinIOImage     = "TIERCHAOS_MINIO_IMAGE"
	EnvToxiproxyImage = "TIERCHAOS_TOXIPROXY_IMAGE"
	EnvTierdImage     = "TIERCHAOS_TIERD_IMAGE"
	EnvS3FaultImage   = "TIERCHAOS_S3FAULT_IMAGE"
	// EnvDataVolImage names the data sidecar's image (harness/datavol).
	EnvDataVolImage = "TIERCHAOS_DATAVOL_IMAGE"
	// EnvPull is "auto" (default: try the pinned official image once, with a
	// short deadline) or "never" (machines known to have no registry).
	EnvPull = "TIERCHAOS_PULL"
	// EnvCacheDir overrides the cache folder (default: the user cache
	// folder's tierchaos/ subfolder).
	EnvCacheDir = "TIERCHAOS_CACHE_DIR"
)

// Set holds the resolved image references of one stack.
type Set struct {
	MinIO     string
	Toxiproxy string
	Tierd     string
	S3Fault   string
	// DataVol is the data sidecar (harness/datavol/cmd/datavold), built
	// from this repository like tierd.
	DataVol string
}

// Options configures Ensure.
type Options struct {
	// Progress receives human-readable progress lines (builds can take
	// minutes). Nil discards them.
	Progress io.Writer
	// ModuleRoot is the folder of this repository's go.mod; found from the
	// working directory when empty.
	ModuleRoot string
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
}

// Ensure makes sure all images of a tierd stack exist locally (the
// stack's own, EnsureStack, and tierd's, Tierd) and returns their
// references.
func Ensure(ctx context.Context, cli client.APIClient, opts Options) (Set, error) {
	set, err := EnsureStack(ctx, cli, opts)
	if err != nil {
		return Set{}, err
	}
	if set.Tierd, err = EnsureOwn(ctx, cli, opts, Tierd()); err != nil {
		return Set{}, err
	}
	return set, nil
}

// EnsureStack makes sure the images every stack runs, whatever its
// service, exist locally (MinIO, Toxiproxy, the S3 fault layer and the
// data sidecar) and returns their references; Set.Tierd stays empty.
func EnsureStack(ctx context.Context, cli client.APIClient, opts Options) (Set, error) {
	b, err := newBuilder(cli, opts)
	if err != nil {
		return Set{}, err
	}
	var set Set
	if set.MinIO, err = b.ensureThirdParty(ctx, MinIO()); err != nil {
		return Set{}, err
	}
	if set.Toxiproxy, err = b.ensureThirdParty(ctx, Toxiproxy()); err != nil {
		return Set{}, err
	}
	if set.S3Fault, err = b.ensureOwn(ctx, Own{Name: "s3faultd", EnvVar: EnvS3FaultImage, Package: modulePath + "/cmd/s3faultd"}); err != nil {
		return Set{}, err
	}
	if set.DataVol, err = b.ensureOwn(ctx, Own{Name: "datavold", EnvVar: EnvDataVolImage, Package: modulePath + "/harness/datavol/cmd/datavold"}); err != nil {
		return Set{}, err
	}
	return set, nil
}

// EnsureOwn makes sure the image of o, a program built from Go source,
// exists locally and returns its reference.
func EnsureOwn(ctx context.Context, cli client.APIClient, opts Options, o Own) (string, error) {
	if err := o.validate(); err != nil {
		return "", err
	}
	b, err := newBuilder(cli, opts)
	if err != nil {
		return "", err
	}
	return b.ensureOwn(ctx, o)
}

// modulePath is this module's path: the stack's own programs are built
// by import path, so that a module that requires this one builds them too.
const modulePath = "github.com/tierchaos/tierchaos"

// Tierd is tierd's image description.
func Tierd() Own {
	return Own{Name: "tierd", EnvVar: EnvTierdImage, Package: modulePath + "/cmd/tierd", DataDir: "/data"}
}

// CacheDir returns the folder where built binaries are cached.
func CacheDir(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("images: no cache folder (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(base, "tierchaos"), nil
}

// ModuleRoot walks up from dir to the folder holding go.mod.
func ModuleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("images: no go.mod above %s", dir)
		}
	}
}

type builder struct {
	cli      client.APIClient
	progress io.Writer
	getenv   func(string) string
	cache    string
	root     string
}

func newBuilder(cli client.APIClient, opts Options) (*builder, error) {
	b := &builder{cli: cli, progress: opts.Progress, getenv: opts.Getenv, root: opts.ModuleRoot}
	if b.progress == nil {
		b.progress = io.Discard
	}
	if b.getenv == nil {
		b.getenv = os.Getenv
	}
	var err error
	if b.cache, err = CacheDir(b.getenv); err != nil {
		return nil, err
	}
	if b.root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("images: working directory: %w", err)
		}
		if b.root, err = ModuleRoot(wd); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "images: "+format+"\n", args...)
}

// ThirdParty describes an image of another project: pulled as a pinned
// official release, or built from its Go module.
type ThirdParty struct {
	// Name is the short name ("minio"); EnvVar the override variable.
	Name, EnvVar string
	// Repo is the local repository ("tierchaos/minio").
	Repo string
	// Module and Version are what a source build installs; Binary is the
	// name of the binary go install makes.
	Module, Version, Binary string
	// Official is the pinned release image; empty when there is none.
	Official string
	// Dockerfile builds the source image from the binary.
	Dockerfile string
}

// MinIO is MinIO's image description.
func MinIO() ThirdParty {
	return ThirdParty{
		Name: "minio", EnvVar: EnvMinIOImage, Repo: MinIORepo,
		Module: MinIOModule, Version: MinIOVersion, Binary: "minio",
		Official:   MinIOOfficial,
		Dockerfile: "FROM scratch\nCOPY minio /minio\nUSER " + RunUser + "\nENTRYPOINT [\"/minio\"]\n",
	}
}

// Toxiproxy is Toxiproxy's image description.
func Toxiproxy() ThirdParty {
	return ThirdParty{
		Name: "toxiproxy", EnvVar: EnvToxiproxyImage, Repo: ToxiproxyRepo,
		Module: ToxiproxyModule, Version: ToxiproxyVersion, Binary: "server",
		Official:   ToxiproxyOfficial,
		Dockerfile: "FROM scratch\nCOPY server /toxiproxy\nUSER " + RunUser + "\nENTRYPOINT [\"/toxiproxy\"]\nCMD [\"-host=0.0.0.0\"]\n",
	}
}

// SourceTag is the local tag of the image built from source: the module
// version, shortened for pseudo-versions, and the user it runs as
// (tierchaos/minio:src-20260212-7aac2a2c5b7c-u65532,
// tierchaos/toxiproxy:src-2.12.0-u65532). Source builds of older harness
// versions, which ran as root, had no -u suffix and are not used.
func (tp ThirdParty) SourceTag() string {
	return fmt.Sprintf("%s:src-%s-u%d", tp.Repo, shortVersion(tp.Version), RunUID)
}

// PulledTag is the local tag of the pulled official release: its tag
// (tierchaos/minio:pull-RELEASE.2025-09-07T16-13-09Z); empty without one.
func (tp ThirdParty) PulledTag() string {
	if tp.Official == "" {
		return ""
	}
	tag := "latest"
	if r, err := ParseReference(tp.Official); err == nil && r.Tag != "" {
		tag = r.Tag
	} else if err != nil {
		return "" // Ensure refuses such a description (checkOfficial)
	}
	return tp.Repo + ":pull-" + tag
}

// ensureThirdParty returns the image the env override names, else a local
// source build, else a local pulled release, else pulls the release
// (TIERCHAOS_PULL=auto), else builds from source.
func (b *builder) ensureThirdParty(ctx context.Context, tp ThirdParty) (string, error) {
	if v := b.getenv(tp.EnvVar); v != "" {
		return b.ensureNamed(ctx, tp.EnvVar, v)
	}
	var official Reference
	if tp.Official != "" {
		var err error
		if official, err = ParseReference(tp.Official); err != nil {
			return "", fmt.Errorf("images: %s's official image: %w", tp.Name, err)
		}
	}
	src, pulled := tp.SourceTag(), tp.PulledTag()
	if ok, err := b.exists(ctx, src); err != nil || ok {
		return src, err
	}
	if pulled != "" {
		// A local pulled tag counts only when it holds the pinned content.
		if ok, err := b.hasProvenance(ctx, pulled, official); err != nil || ok {
			return pulled, err
		}
	}
	if b.getenv(EnvPull) != "never" && pulled != "" {
		err := b.pull(ctx, tp.Official, pulled)
		if err == nil {
			return pulled, nil
		}
		b.logf("%s: pull of %s failed (%v); building from source", tp.Name, tp.Official, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(b.cache, "locks", tp.Name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have built it while we waited for the lock.
	if ok, err := b.exists(ctx, src); err != nil || ok {
		return src, err
	}
	bin, err := b.goInstall(ctx, tp)
	if err != nil {
		return "", err
	}
	if err := b.dockerBuild(ctx, src, tp.Dockerfile, map[string]string{tp.Binary: bin}); err != nil {
		return "", err
	}
	return src, nil
}

// ensureNamed makes sure the image an override names exists: a local one,
// else one pulled under that very name (unless TIERCHAOS_PULL=never).
func (b *builder) ensureNamed(ctx context.Context, envVar, ref string) (string, error) {
	if ok, err := b.exists(ctx, ref); err != nil || ok {
		return ref, err
	}
	if b.getenv(EnvPull) == "never" {
		return "", fmt.Errorf("images: %s=%s names an image that does not exist locally (and %s=never)", envVar, ref, EnvPull)
	}
	if err := b.pull(ctx, ref, ref); err != nil {
		return "", fmt.Errorf("images: %s=%s names an image that does not exist locally and cannot be pulled: %w", envVar, ref, err)
	}
	return ref, nil
}

// Own describes an image of a program built from Go source (this
// repository's tierd, s3faultd and datavold, or a service of the user's):
// `go build` of Package from the module root, then a FROM scratch image
// with the binary and USER RunUser, tagged with the SHA-256 of binary and
// Dockerfile (tierchaos/<Name>:<12 hex>), so it is rebuilt exactly when
// either changes.
type Own struct {
	// Name is the binary's and the image repository's name ("tierd").
	Name string
	// EnvVar, when set, names an environment variable that names an
	// existing image to use instead.
	EnvVar string
	// Package is what go build builds: an import path, or a path relative
	// to the module root ("./cmd/tierd").
	Package string
	// DataDir, when set, is an empty directory of the image owned by
	// RunUID:RunGID. A plain Docker volume mounted there takes its owner
	// (Docker copies an image directory's content and owner into an empty
	// volume), so the program can write it without root.
	DataDir string
}

// validate checks what the Dockerfile and the tag are made from.
func (o Own) validate() error {
	switch {
	case o.Name == "" || strings.ContainsAny(o.Name, "/: \t\n\"") || strings.ToLower(o.Name) != o.Name:
		return fmt.Errorf("images: own image name %q: want a lower-case name without '/', ':', quotes or spaces", o.Name)
	case o.Package == "":
		return fmt.Errorf("images: own image %s: no Go package to build", o.Name)
	case o.DataDir != "" && !strings.HasPrefix(o.DataDir, "/"):
		return fmt.Errorf("images: own image %s: data directory %q is not absolute", o.Name, o.DataDir)
	}
	return nil
}

// dockerfile is o's FROM scratch Dockerfile: the binary, DataDir, and
// USER RunUser.
func (o Own) dockerfile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM scratch\nCOPY %s /%s\n", o.Name, o.Name)
	if o.DataDir != "" {
		fmt.Fprintf(&b, "COPY --chown=%s %s %s\n", RunUser, ownDataDir, o.DataDir)
	}
	fmt.Fprintf(&b, "USER %s\nENTRYPOINT [\"/%s\"]\n", RunUser, o.Name)
	return b.String()
}

// ownDataDir is the empty directory of the build context that becomes
// Own.DataDir.
const ownDataDir = "datadir"

func (b *builder) ensureOwn(ctx context.Context, o Own) (string, error) {
	if v := b.getenv(o.EnvVar); o.EnvVar != "" && v != "" {
		ok, err := b.exists(ctx, v)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("images: %s=%s names an image that does not exist locally", o.EnvVar, v)
		}
		return v, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(b.cache, "locks", o.Name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	bin, sum, err := b.goBuild(ctx, o)
	if err != nil {
		return "", err
	}
	// The tag names the binary and the Dockerfile: a change of either is
	// another image.
	dockerfile := o.dockerfile()
	tag := sha256.Sum256([]byte(sum + "\n" + dockerfile))
	ref := "tierchaos/" + o.Name + ":" + hex.EncodeToString(tag[:])[:12]
	if ok, err := b.exists(ctx, ref); err != nil || ok {
		return ref, err
	}
	files := map[string]string{o.Name: bin}
	if o.DataDir != "" {
		files[ownDataDir] = "" // an empty directory
	}
	if err := b.dockerBuild(ctx, ref, dockerfile, files); err != nil {
		return "", err
	}
	return ref, nil
}

func (b *builder) exists(ctx context.Context, ref string) (bool, error) {
	_, err := b.cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("images: inspect %s: %w", ref, err)
}

// hasProvenance reports whether the local image ref exists and, when
// official pins a digest, was pulled from it: its RepoDigests list the
// official name at that digest. A tag that exists without it (an older
// harness's pull by tag, or anything tagged over it) is logged and not
// used.
func (b *builder) hasProvenance(ctx context.Context, ref string, official Reference) (bool, error) {
	img, err := b.cli.ImageInspect(ctx, ref)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("images: inspect %s: %w", ref, err)
	}
	if official.Digest == "" || official.matchesRepoDigest(img.RepoDigests) {
		return true, nil
	}
	b.logf("%s is not %s (its repository digests: %v); not used", ref, official.Canonical(), img.RepoDigests)
	return false, nil
}

// pull pulls official and tags it ref. A reference with a digest is pulled
// by that digest, tagged from name@digest and checked to carry it.
func (b *builder) pull(ctx context.Context, official, ref string) error {
	r, err := ParseReference(official)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	b.logf("pulling %s", official)
	resp, err := b.cli.ImagePull(ctx, official, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return err
	}
	if official == ref {
		return nil
	}
	source := official
	if r.Digest != "" {
		// The engine keeps a pull by digest as name@digest, without the tag.
		source = r.Canonical()
	}
	if _, err := b.cli.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: ref}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, ref, err)
	}
	if ok, err := b.hasProvenance(ctx, ref, r); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("images: %s, pulled as %s, does not carry the digest %s", ref, official, r.Digest)
	}
	return nil
}

func shortVersion(v string) string {
	// v0.0.0-20260212201848-7aac2a2c5b7c -> 20260212-7aac2a2c5b7c
	parts := strings.Split(v, "-")
	if len(parts) == 3 && len(parts[1]) >= 8 {
		return parts[1][:8] + "-" + parts[2]
	}
	return strings.TrimPrefix(v, "v")
}

// isNotFound reports whether a Docker API error means "no such object".
func isNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}
