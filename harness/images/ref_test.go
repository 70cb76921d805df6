package images

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("0a", 32)
	tests := []struct {
		in   string
		want Reference
		bad  bool
	}{
		{in: "minio/minio", want: Reference{Name: "minio/minio"}},
		{in: "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z", want: Reference{Name: "quay.io/minio/minio", Tag: "RELEASE.2025-09-07T16-13-09Z"}},
		{in: "ghcr.io/shopify/toxiproxy:2.12.0@" + d, want: Reference{Name: "ghcr.io/shopify/toxiproxy", Tag: "2.12.0", Digest: d}},
		{in: "ghcr.io/shopify/toxiproxy@" + d, want: Reference{Name: "ghcr.io/shopify/toxiproxy", Digest: d}},
		{in: "registry:5000/x", want: Reference{Name: "registry:5000/x"}},
		{in: "registry:5000/x:1.0@" + d, want: Reference{Name: "registry:5000/x", Tag: "1.0", Digest: d}},
		{in: "", bad: true},
		{in: "x:1.0@sha256:abcd", bad: true},                               // short digest
		{in: "x@sha512:" + strings.Repeat("0", 128), bad: true},            // not sha256
		{in: "x@sha256:" + strings.Repeat("A", 64), bad: true},             // upper case
		{in: "x@" + d + "@" + d, bad: true},                                // two digests
		{in: "x:@" + d, bad: true},                                         // empty tag
		{in: "@" + d, bad: true},                                           // no name
		{in: "x y:1", bad: true},                                           // white space
		{in: "x/:1", bad: true},                                            // empty last path element
		{in: "quay.io/x:1.0@sha256:" + strings.Repeat("g", 64), bad: true}, // not hex
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReference(tt.in)
			if tt.bad {
				require.ErrorIs(t, err, ErrBadReference)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String(), "round trip")
		})
	}
}

// TestPinnedOfficialImages: both official images are pinned by tag and by
// a well-formed digest, which the pulled tag's name leaves out.
func TestPinnedOfficialImages(t *testing.T) {
	for _, tc := range []struct {
		tp             ThirdParty
		digest, pulled string
	}{
		{MinIO(), MinIODigest, "tierchaos/minio:pull-RELEASE.2025-09-07T16-13-09Z"},
		{Toxiproxy(), ToxiproxyDigest, "tierchaos/toxiproxy:pull-2.12.0"},
	} {
		r, err := ParseReference(tc.tp.Official)
		require.NoError(t, err)
		assert.NotEmpty(t, r.Tag, tc.tp.Official)
		assert.Equal(t, tc.digest, r.Digest, tc.tp.Official)
		assert.Equal(t, tc.pulled, tc.tp.PulledTag())
	}
}

func TestMatchesRepoDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("0a", 32)
	other := "sha256:" + strings.Repeat("0b", 32)
	hub := Reference{Name: "docker.io/minio/minio", Tag: "x", Digest: d}
	quay := Reference{Name: "quay.io/minio/minio", Digest: d}
	assert.True(t, quay.matchesRepoDigest([]string{"quay.io/minio/minio@" + d}))
	assert.True(t, hub.matchesRepoDigest([]string{"minio/minio@" + d}), "the engine's short form of a Docker Hub name")
	assert.False(t, quay.matchesRepoDigest([]string{"quay.io/minio/minio@" + other}), "another digest")
	assert.False(t, quay.matchesRepoDigest([]string{"quay.io/other/minio@" + d}), "another repository")
	assert.False(t, quay.matchesRepoDigest(nil), "built locally: no repository digest")
	assert.False(t, Reference{Name: "quay.io/minio/minio"}.matchesRepoDigest([]string{"quay.io/minio/minio@" + d}), "no pinned digest")
}
