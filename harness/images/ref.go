package images

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrBadReference is returned (wrapped) by ParseReference.
var ErrBadReference = errors.New("images: bad image reference")

// Reference is an image reference split into its parts:
// Name[:Tag][@Digest], e.g. quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z@sha256:14ce….
type Reference struct {
	// Name is the repository with its registry ("quay.io/minio/minio").
	Name string
	// Tag is the tag; empty when there is none.
	Tag string
	// Digest is "sha256:" and 64 lowercase hex digits; empty when the
	// reference does not pin one.
	Digest string
}

// ParseReference splits ref into name, tag and digest. A digest must be
// sha256 with 64 lowercase hex digits; the name must not be empty nor hold
// white space, and a tag must not be empty after its colon.
func ParseReference(ref string) (Reference, error) {
	if ref == "" || strings.ContainsAny(ref, " \t\r\n") {
		return Reference{}, fmt.Errorf("%w: %q", ErrBadReference, ref)
	}
	var r Reference
	rest := ref
	if name, digest, ok := strings.Cut(ref, "@"); ok {
		if err := checkDigest(digest); err != nil {
			return Reference{}, fmt.Errorf("%w: %q: %w", ErrBadReference, ref, err)
		}
		r.Digest, rest = digest, name
	}
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		r.Name, r.Tag = rest[:i], rest[i+1:]
		if r.Tag == "" {
			return Reference{}, fmt.Errorf("%w: %q: empty tag", ErrBadReference, ref)
		}
	} else {
		r.Name = rest
	}
	if r.Name == "" || strings.HasSuffix(r.Name, "/") || strings.HasPrefix(r.Name, "/") {
		return Reference{}, fmt.Errorf("%w: %q: no repository name", ErrBadReference, ref)
	}
	return r, nil
}

func checkDigest(d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok {
		return fmt.Errorf("digest %q: want sha256:<64 hex digits>", d)
	}
	if len(hex) != 64 || strings.IndexFunc(hex, func(c rune) bool { return !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') }) >= 0 {
		return fmt.Errorf("digest %q: want 64 lowercase hex digits", d)
	}
	return nil
}

// String joins the parts again.
func (r Reference) String() string {
	s := r.Name
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Canonical is Name@Digest, the form the Docker engine lists in an
// image's RepoDigests; empty without a digest.
func (r Reference) Canonical() string {
	if r.Digest == "" {
		return ""
	}
	return r.Name + "@" + r.Digest
}

// matchesRepoDigest reports whether repoDigests (an image's RepoDigests)
// holds r's name and digest. The engine lists Docker Hub images without
// their registry and library/ prefix ("minio/minio@sha256:…"), so those
// short forms count too.
func (r Reference) matchesRepoDigest(repoDigests []string) bool {
	if r.Digest == "" {
		return false
	}
	names := []string{r.Name}
	for _, p := range []string{"docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"} {
		if short, ok := strings.CutPrefix(r.Name, p); ok {
			names = append(names, short)
		}
	}
	return slices.ContainsFunc(repoDigests, func(rd string) bool {
		name, digest, ok := strings.Cut(rd, "@")
		return ok && digest == r.Digest && slices.Contains(names, name)
	})
}
