// Package manifest is tierd's durable catalogue: for every collection its
// identity, tier, data snapshot (local file or S3 object, with size and
// checksum), the WAL position that snapshot covers, and its user
// snapshots; plus object keys awaiting deletion and uploads in progress.
// It is one JSON file with a checksum, never updated in place: a commit
// writes a preallocated spare and renames it over the manifest (see
// File), so that a commit needs no free space on the data volume.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
)

// ErrCorrupt marks a manifest file that cannot be trusted: its checksum
// does not match, it does not parse, or an entry is invalid (for
// instance a local path leading out of the data folder).
var ErrCorrupt = errors.New("manifest corrupt")

// Version is the current format version.
const Version = 1

// SnapshotRef locates one Parquet snapshot.
type SnapshotRef struct {
	ID string `json:"id"`
	// File is the path relative to the data folder (warm copy or hot checkpoint).
	File string `json:"file,omitempty"`
	// Key is the S3 key (cold data or user snapshot); for a member of a
	// pack, the pack object's key.
	Key string `json:"key,omitempty"`
	// Packed: the snapshot is a member of the pack object Key, its Size
	// bytes starting at Offset (checked against Checksum, its own xxh3).
	// Several collections' data refer to one pack; the pack's live members
	// are the references to it (LivePacks), so the count is as durable as
	// the references themselves and can never drift from them.
	Packed   bool      `json:"packed,omitempty"`
	Offset   int64     `json:"offset,omitempty"`
	Size     int64     `json:"size"`
	Checksum string    `json:"checksum"`
	Count    int       `json:"count"`
	Created  time.Time `json:"created"`
}

// Entry is one collection.
type Entry struct {
	// ID identifies this incarnation of the name (WAL records carry it).
	ID        uint64     `json:"id"`
	Name      string     `json:"name"`
	Dimension int        `json:"dimension"`
	Metric    api.Metric `json:"metric"`
	Tier      api.Tier   `json:"tier"`
	// Data holds the collection's vectors as of CoveredLSN: the warm file,
	// the cold object, or (hot) the last checkpoint; nil for a hot
	// collection never checkpointed.
	Data *SnapshotRef `json:"data,omitempty"`
	// CoveredLSN: WAL records of this collection up to it are in Data.
	CoveredLSN uint64 `json:"covered_lsn"`
	// Snapshots are the user snapshots, oldest first.
	Snapshots []SnapshotRef `json:"snapshots,omitempty"`
	Created   time.Time     `json:"created"`
}

// Manifest is the whole catalogue.
type Manifest struct {
	Version     int               `json:"version"`
	NextID      uint64            `json:"next_id"`
	Collections map[string]*Entry `json:"collections"`
	// PendingDeletes are object keys to delete (best-effort deletes that failed).
	PendingDeletes []string `json:"pending_deletes,omitempty"`
	// Uploads are the object keys of uploads started and not yet committed
	// or cleaned up. After a crash they are what is left to delete or
	// abort, by exact key (S3 stores such as MinIO list incomplete
	// multipart uploads by exact key only).
	Uploads []string `json:"uploads,omitempty"`
}

// New returns an empty manifest.
func New() *Manifest {
	return &Manifest{Version: Version, NextID: 1, Collections: map[string]*Entry{}}
}

// Clone returns a deep copy.
func (m *Manifest) Clone() *Manifest {
	c := &Manifest{Version: m.Version, NextID: m.NextID, Collections: make(map[string]*Entry, len(m.Collections)),
		PendingDeletes: append([]string(nil), m.PendingDeletes...), Uploads: append([]string(nil), m.Uploads...)}
	for k, e := range m.Collections {
		ce := *e
		if e.Data != nil {
			d := *e.Data
			ce.Data = &d
		}
		ce.Snapshots = append([]SnapshotRef(nil), e.Snapshots...)
		c.Collections[k] = &ce
	}
	return c
}

// The file is {"checksum":"crc32c:<8 hex digits>","manifest":<catalogue>}
// (padded with whitespace, see File): the checksum is the CRC-32C of the
// exact bytes of <catalogue>, the compact JSON of a Manifest.
const checksumPrefix = "crc32c:"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksumOf(b []byte) string {
	return fmt.Sprintf("%s%08x", checksumPrefix, crc32.Checksum(b, castagnoli))
}

// envelope is the file's outer object.
type envelope struct {
	Checksum string          `json:"checksum"`
	Manifest json.RawMessage `json:"manifest"`
}

// encode returns the file's JSON for m (without padding).
func encode(m *Manifest) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	out := make([]byte, 0, len(b)+64)
	out = append(out, `{"checksum":"`...)
	out = append(out, checksumOf(b)...)
	out = append(out, `","manifest":`...)
	out = append(out, b...)
	return append(out, '}'), nil
}

// decode checks a manifest file's checksum, parses and validates it; name
// is used in errors. Every failure wraps ErrCorrupt.
func decode(name string, b []byte) (*Manifest, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("manifest %s: %w: %s", name, ErrCorrupt, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return nil, bad("%v", err)
	}
	if rest := b[dec.InputOffset():]; len(bytes.TrimSpace(rest)) > 0 {
		return nil, bad("%d bytes of data after the JSON object", len(bytes.TrimSpace(rest)))
	}
	if env.Checksum == "" || len(env.Manifest) == 0 {
		return nil, bad("no checksum and catalogue: not a manifest this tierd writes")
	}
	if got := checksumOf(env.Manifest); got != env.Checksum {
		return nil, bad("checksum mismatch: the file records %s, its content has %s", env.Checksum, got)
	}
	m := New()
	if err := json.Unmarshal(env.Manifest, m); err != nil {
		return nil, bad("%v", err)
	}
	if m.Version != Version {
		return nil, bad("version %d, this tierd reads %d", m.Version, Version)
	}
	if m.Collections == nil {
		m.Collections = map[string]*Entry{}
	}
	for key, e := range m.Collections {
		if err := e.validate(key); err != nil {
			return nil, bad("entry %q: %v", key, err)
		}
	}
	return m, nil
}

// validate checks an entry stored under key.
func (e *Entry) validate(key string) error {
	if e == nil {
		return errors.New("null")
	}
	if e.Name != key {
		return fmt.Errorf("name %q", e.Name)
	}
	if err := api.ValidateName(e.Name); err != nil {
		return err
	}
	if !e.Tier.Valid() || !e.Metric.Valid() || e.Dimension < 1 {
		return fmt.Errorf("tier %q, metric %q, dimension %d", e.Tier, e.Metric, e.Dimension)
	}
	switch {
	case e.Tier != api.TierHot && e.Data == nil:
		return fmt.Errorf("%s collection has no data snapshot", e.Tier)
	case e.Tier == api.TierCold && e.Data.Key == "":
		return errors.New("cold collection has no object key")
	case e.Tier != api.TierCold && e.Data != nil && e.Data.File == "":
		return fmt.Errorf("%s collection's data has no local file", e.Tier)
	}
	if e.Data != nil {
		if err := e.Data.validate(); err != nil {
			return fmt.Errorf("data: %w", err)
		}
	}
	for _, s := range e.Snapshots {
		if err := s.validate(); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if s.Key == "" {
			return fmt.Errorf("snapshot %q has no object key", s.ID)
		}
	}
	return nil
}

// validate checks that a reference can only name a file inside the data
// folder's local/ tree.
func (r *SnapshotRef) validate() error {
	if !validID(r.ID) {
		return fmt.Errorf("id %q: 1-64 characters of [A-Za-z0-9_-]", r.ID)
	}
	if r.Size < 0 || r.Count < 0 {
		return fmt.Errorf("%q: size %d, count %d", r.ID, r.Size, r.Count)
	}
	if r.Packed && (r.Key == "" || r.File != "" || r.Offset < 0) {
		return fmt.Errorf("%q: pack member needs a pack key, no local file and an offset >= 0 (key %q, file %q, offset %d)", r.ID, r.Key, r.File, r.Offset)
	}
	if !r.Packed && r.Offset != 0 {
		return fmt.Errorf("%q: offset %d outside a pack", r.ID, r.Offset)
	}
	if f := r.File; f != "" {
		if !filepath.IsLocal(f) || filepath.Clean(f) != f || strings.ContainsRune(f, '\\') || !strings.HasPrefix(f, LocalDir+"/") {
			return fmt.Errorf("%q: local file %q is not a clean relative path under %s/", r.ID, f, LocalDir)
		}
	}
	return nil
}

// LocalDir is the folder of the data folder that holds every local file a
// manifest may refer to.
const LocalDir = "local"

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ReferencedKeys returns every object key the manifest refers to.
func (m *Manifest) ReferencedKeys() map[string]bool {
	keys := map[string]bool{}
	for _, e := range m.Collections {
		if e.Data != nil && e.Data.Key != "" {
			keys[e.Data.Key] = true
		}
		for _, s := range e.Snapshots {
			if s.Key != "" {
				keys[s.Key] = true
			}
		}
	}
	return keys
}

// LivePacks returns, for every pack object the manifest refers to, its
// live members: the number of snapshots that are members of it. A pack is
// deleted only once it has none (it is then an unreferenced key, like any
// other object no snapshot refers to).
func (m *Manifest) LivePacks() map[string]int {
	packs := map[string]int{}
	for _, e := range m.Collections {
		if e.Data != nil && e.Data.Packed {
			packs[e.Data.Key]++
		}
		for _, s := range e.Snapshots {
			if s.Packed {
				packs[s.Key]++
			}
		}
	}
	return packs
}

// ReferencedFiles returns every local file (relative path) the manifest refers to.
func (m *Manifest) ReferencedFiles() map[string]bool {
	files := map[string]bool{}
	for _, e := range m.Collections {
		if e.Data != nil && e.Data.File != "" {
			files[e.Data.File] = true
		}
		for _, s := range e.Snapshots {
			if s.File != "" {
				files[s.File] = true
			}
		}
	}
	return files
}

// Names returns the collection names (unordered copy of the keys).
func (m *Manifest) Names() []string {
	return slices.Collect(maps.Keys(m.Collections))
}
