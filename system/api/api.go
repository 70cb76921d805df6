// Package api holds tierd's wire types: the JSON request and response bodies
// of the REST API, the error codes with their HTTP statuses, and the input
// validation rules that both the server and tests rely on.
package api

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Tier is the storage tier a collection lives in.
type Tier string

// The tiers, from fastest to cheapest.
const (
	// TierHot keeps the vectors in memory.
	TierHot Tier = "hot"
	// TierWarm keeps the vectors as a Parquet file on the local data volume.
	TierWarm Tier = "warm"
	// TierCold keeps the vectors as a Parquet object in S3.
	TierCold Tier = "cold"
)

// Valid reports whether t is one of the known tiers.
func (t Tier) Valid() bool { return t == TierHot || t == TierWarm || t == TierCold }

// Rank orders tiers: hot 0, warm 1, cold 2, unknown -1.
func (t Tier) Rank() int {
	switch t {
	case TierHot:
		return 0
	case TierWarm:
		return 1
	case TierCold:
		return 2
	}
	return -1
}

// Metric is the similarity or distance function of a collection.
type Metric string

// The supported metrics.
const (
	// MetricCosine is cosine similarity; higher is better.
	MetricCosine Metric = "cosine"
	// MetricL2 is the Euclidean distance; lower is better.
	MetricL2 Metric = "l2"
	// MetricDot is the dot product; higher is better.
	MetricDot Metric = "dot"
)

// Valid reports whether m is one of the known metrics.
func (m Metric) Valid() bool { return m == MetricCosine || m == MetricL2 || m == MetricDot }

// HigherIsBetter reports whether larger scores rank first for m.
func (m Metric) HigherIsBetter() bool { return m != MetricL2 }

// CreateCollectionRequest is the body of POST /v1/collections.
type CreateCollectionRequest struct {
	Name      string `json:"name"`
	Dimension int    `json:"dimension"`
	Metric    Metric `json:"metric"`
}

// Collection describes a collection and its current state.
type Collection struct {
	Name      string `json:"name"`
	Dimension int    `json:"dimension"`
	Metric    Metric `json:"metric"`
	Tier      Tier   `json:"tier"`
	Vectors   int    `json:"vectors"`
	// Snapshot is the id of the snapshot holding the data of a warm or
	// cold collection ("" while hot and never demoted).
	Snapshot string `json:"snapshot,omitempty"`
	// Checksum is the xxh3-64 checksum (16 hex digits) of that snapshot.
	Checksum string `json:"checksum,omitempty"`
	// Object is the S3 key of the snapshot while the collection is cold.
	Object string `json:"object,omitempty"`
	// LastAccess is the time of the last search or insert.
	LastAccess time.Time `json:"last_access"`
}

// Vector is one vector with its caller-given id.
type Vector struct {
	ID     string    `json:"id"`
	Values []float32 `json:"values"`
}

// InsertRequest is the body of POST /v1/collections/{name}/vectors.
type InsertRequest struct {
	Vectors []Vector `json:"vectors"`
}

// InsertResponse is the answer to an insert.
type InsertResponse struct {
	Inserted int `json:"inserted"`
}

// SearchRequest is the body of POST /v1/collections/{name}/search.
type SearchRequest struct {
	Vector []float32 `json:"vector"`
	K      int       `json:"k"`
}

// Result is one search hit.
type Result struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
}

// SearchResponse is the answer to a search.
type SearchResponse struct {
	Results []Result `json:"results"`
}

// SetTierRequest is the body of POST /v1/collections/{name}/tier.
type SetTierRequest struct {
	Target Tier `json:"target"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries the stable code and a human readable message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Limits of search requests.
const (
	// MinK is the smallest accepted k of a search.
	MinK = 1
	// MaxK is the largest accepted k of a search.
	MaxK = 1000
	// MaxNameLen is the longest accepted collection name.
	MaxNameLen = 64
	// MaxIDLen is the longest accepted vector id.
	MaxIDLen = 256
)

// ValidateName checks a collection name: 1-64 characters of [a-z0-9_-].
// The error names the first offending character as a character (é, not
// its first byte) with its byte offset; a byte that is not valid UTF-8 is
// named as such.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("collection name must be 1-%d characters, got %d bytes", MaxNameLen, len(name))
	}
	for i, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			if c == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(name[i:]); size <= 1 {
					return fmt.Errorf("collection name %q has invalid UTF-8 byte 0x%02x at byte %d (allowed: a-z 0-9 _ -)", name, name[i], i)
				}
			}
			return fmt.Errorf("collection name %q has invalid character %q at byte %d (allowed: a-z 0-9 _ -)", name, c, i)
		}
	}
	return nil
}

// ValidateVectorID checks a vector id: 1-256 bytes.
func ValidateVectorID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("vector id must be 1-%d bytes, got %d", MaxIDLen, len(id))
	}
	return nil
}

// ValidateValues checks that values has dimension dim and only finite numbers.
func ValidateValues(values []float32, dim int) error {
	if len(values) != dim {
		return fmt.Errorf("vector has dimension %d, collection has %d", len(values), dim)
	}
	for i, v := range values {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("value %d is not a finite number", i)
		}
	}
	return nil
}

// ValidateK checks the k of a search.
func ValidateK(k int) error {
	if k < MinK || k > MaxK {
		return fmt.Errorf("k must be in %d..%d, got %d", MinK, MaxK, k)
	}
	return nil
}

// Snapshot describes a user snapshot of a collection.
type Snapshot struct {
	ID         string    `json:"id"`
	Collection string    `json:"collection"`
	Vectors    int       `json:"vectors"`
	Size       int64     `json:"size"`
	Checksum   string    `json:"checksum"`
	Object     string    `json:"object"`
	Created    time.Time `json:"created"`
}

// SnapshotList is the answer of GET /v1/collections/{name}/snapshots.
type SnapshotList struct {
	Snapshots []Snapshot `json:"snapshots"`
}

// RestoreRequest is the body of POST /v1/collections/{name}/restore.
type RestoreRequest struct {
	Snapshot string `json:"snapshot"`
}

// Worker actions for POST /v1/admin/worker.
const (
	WorkerPause   = "pause"
	WorkerResume  = "resume"
	WorkerRunOnce = "run_once"
)

// WorkerRequest is the body of POST /v1/admin/worker.
type WorkerRequest struct {
	Action string `json:"action"`
}

// WorkerCycle reports one cycle of the background worker.
type WorkerCycle struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Trigger is "timer" or "run_once".
	Trigger string `json:"trigger"`
	// DemotedWarm and DemotedCold name the collections demoted for idleness.
	DemotedWarm []string `json:"demoted_warm"`
	DemotedCold []string `json:"demoted_cold"`
	// Checkpointed names the hot collections written to a local snapshot.
	Checkpointed []string `json:"checkpointed"`
	// WALSegmentsDropped counts WAL segments removed after checkpoints.
	WALSegmentsDropped int `json:"wal_segments_dropped"`
	// OrphansDeleted lists objects and uploads removed by the orphan sweep.
	OrphansDeleted []string `json:"orphans_deleted"`
	// Errors of this cycle (the cycle goes on after an error).
	Errors []string `json:"errors"`
}

// WorkerState is the answer of the worker endpoints.
type WorkerState struct {
	// State is "running" or "paused".
	State    string       `json:"state"`
	Interval string       `json:"interval"`
	Cycles   int64        `json:"cycles"`
	Last     *WorkerCycle `json:"last_cycle,omitempty"`
	// ErrorsTotal counts errors over all cycles.
	ErrorsTotal int64 `json:"errors_total"`
}

// Usage reports the store's resource use against its quotas (0: unlimited).
type Usage struct {
	HotBytes         int64 `json:"hot_bytes"`
	HotBytesQuota    int64 `json:"hot_bytes_quota"`
	WarmBytes        int64 `json:"warm_bytes"`
	WarmBytesQuota   int64 `json:"warm_bytes_quota"`
	ColdBytes        int64 `json:"cold_bytes"`
	Collections      int   `json:"collections"`
	CollectionsQuota int   `json:"collections_quota"`
	WALSegments      int   `json:"wal_segments"`
	WALBytes         int64 `json:"wal_bytes"`
}

// Pagination of GET /v1/collections/{name}/vectors.
const (
	// DefaultListLimit is the page size when the request gives none.
	DefaultListLimit = 1000
	// MaxListLimit is the largest accepted page size.
	MaxListLimit = 10000
)

// VectorPage is the answer of GET /v1/collections/{name}/vectors: up to
// limit vectors with ids greater than the request's after, ids ascending
// (byte-wise), values exactly as stored.
type VectorPage struct {
	Vectors []Vector `json:"vectors"`
	// Next is the cursor of the next page (the last id of this page), or
	// "" when this page is the last.
	Next string `json:"next"`
}

// ValidateListLimit checks the page size of a vector listing.
func ValidateListLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return fmt.Errorf("limit must be in 1..%d, got %d", MaxListLimit, limit)
	}
	return nil
}

// ValidateCursor checks the after cursor of a vector listing: empty (from
// the start) or at most MaxIDLen bytes.
func ValidateCursor(after string) error {
	if len(after) > MaxIDLen {
		return fmt.Errorf("after must be at most %d bytes, got %d", MaxIDLen, len(after))
	}
	return nil
}
