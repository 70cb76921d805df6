// Package manifest is tierd's durable catalogue: for every collection its
// identity, tier, data snapshot (local file or S3 object, with size and
// checksum), the WAL position that snapshot covers, and its user
// snapshots; plus object keys awaiting deletion and uploads in progress.
// It is one JSON file, never updated in place: a commit writes a
// preallocated spare and renames it over the manifest (see File), so that
// a commit needs no free space on the data volume.
package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
)

// Version is the current format version.
const Version = 1

// SnapshotRef locates one Parquet snapshot.
type SnapshotRef struct {
	ID string `json:"id"`
	// File is the path relative to the data folder (warm copy or hot checkpoint).
	File string `json:"file,omitempty"`
	// Key is the S3 key (cold data or user snapshot).
	Key      string    `json:"key,omitempty"`
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

// decode parses and validates a manifest's JSON; name is used in errors.
func decode(name string, b []byte) (*Manifest, error) {
	m := New()
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("manifest %s: version %d, this tierd reads %d", name, m.Version, Version)
	}
	if m.Collections == nil {
		m.Collections = map[string]*Entry{}
	}
	for key, e := range m.Collections {
		if e == nil || e.Name != key || !e.Tier.Valid() || !e.Metric.Valid() || e.Dimension < 1 {
			return nil, fmt.Errorf("manifest %s: invalid entry %q", name, key)
		}
		if e.Tier != api.TierHot && e.Data == nil {
			return nil, fmt.Errorf("manifest %s: %s collection %q has no data snapshot", name, e.Tier, key)
		}
	}
	return m, nil
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
