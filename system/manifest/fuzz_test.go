package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierchaos/tierchaos/system/api"
)

// FuzzManifestDecode feeds arbitrary bytes to the manifest decoder (what
// Load and Open read). It never panics; it refuses with ErrCorrupt and the
// file's name, or it accepts, and then: the file's recorded CRC-32C
// matches its catalogue's bytes; every name is a valid collection name
// and every local path a relative path under local/ without ".." (so
// nothing read or deleted through the manifest lies outside the data
// folder); and encoding what was decoded decodes to the same encoding.
func FuzzManifestDecode(f *testing.F) {
	for _, m := range []*Manifest{New(), sample()} {
		body, err := encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(padded(body, MinCapacity))
		f.Add(body)
		f.Add(bytes.Replace(body, []byte(`"covered_lsn":0`), []byte(`"covered_lsn":9`), 1))
	}
	f.Add(checksummed(`{"version":1,"collections":{"x":{"name":"x","dimension":2,"metric":"dot","tier":"warm","data":{"id":"s","file":"local/../../etc/passwd","size":1,"checksum":"c","count":1}}}}`))
	f.Add([]byte(`{"version":1,"collections":{}}`))
	f.Add([]byte(`{"checksum":"crc32c:00000000","manifest":null}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode("fuzz.json", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "fuzz.json") {
				t.Fatalf("refusal without ErrCorrupt and the file's name: %v", err)
			}
			return
		}
		var env struct {
			Checksum string
			Manifest json.RawMessage
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("accepted bytes that are not JSON: %v", err)
		}
		want := fmt.Sprintf("crc32c:%08x", crc32.Checksum(env.Manifest, crc32.MakeTable(crc32.Castagnoli)))
		if env.Checksum != want {
			t.Fatalf("accepted checksum %q for content with %q", env.Checksum, want)
		}
		for key, e := range m.Collections {
			if e.Name != key || api.ValidateName(key) != nil {
				t.Fatalf("accepted collection %q named %q", key, e.Name)
			}
			refs := append([]SnapshotRef(nil), e.Snapshots...)
			if e.Data != nil {
				refs = append(refs, *e.Data)
			}
			for _, r := range refs {
				if r.File == "" {
					continue
				}
				if filepath.IsAbs(r.File) || !strings.HasPrefix(r.File, "local/") || strings.Contains(r.File, "\\") ||
					strings.Contains("/"+r.File+"/", "/../") || strings.Contains("/"+r.File+"/", "/./") {
					t.Fatalf("accepted local path %q", r.File)
				}
			}
		}
		again, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decode("again", again)
		if err != nil {
			t.Fatalf("a decoded manifest's encoding does not decode: %v", err)
		}
		third, err := encode(m2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, third) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}
