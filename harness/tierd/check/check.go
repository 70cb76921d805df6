// Package check judges a recorded history (harness/tierd/history) the way Jepsen
// does: no acknowledged write lost, every search answer explainable by the
// oracle over a state the history allows, every snapshot and restore
// answer consistent with the content the history allows, and per-collection
// tier histories linearizable (checked with porcupine). On failure the history and a
// porcupine timeline are written to an artifact folder, and the error names
// the files.
package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/harness/tierd/oracle"
	"github.com/tierchaos/tierchaos/system/api"
)

// Names of the checkers, used in reports and violations.
const (
	// LostWritesName is the no-acknowledged-write-lost checker.
	LostWritesName = "lost-writes"
	// SearchesName is the search-equals-oracle checker.
	SearchesName = "searches"
	// TiersName is the tier linearizability checker.
	TiersName = "tiers"
	// SnapshotsName is the checker of snapshot and restore answers.
	SnapshotsName = "snapshots"
)

// Defaults of Config.
const (
	// DefaultTierTimeout bounds the porcupine search per check.
	DefaultTierTimeout = time.Minute
	// DefaultMaxListed is how many violations an error message lists.
	DefaultMaxListed = 10
)

// ErrConfig is wrapped by errors about bad checker input.
var ErrConfig = errors.New("check: bad input")

// Config tunes the checkers. The zero value is usable.
type Config struct {
	// ArtifactDir receives history.json and timeline.html on failure. If
	// empty, a new directory tierchaos-check-* under os.TempDir() is made
	// (it is not removed, so the files outlive the test).
	ArtifactDir string
	// Tolerance is the relative tolerance of score comparisons
	// (default oracle.DefaultTolerance).
	Tolerance float64
	// TierTimeout bounds the linearizability search (default
	// DefaultTierTimeout); running out counts as a failure (inconclusive).
	TierTimeout time.Duration
	// AutoDemote allows tierd to demote collections on its own at any
	// moment (hot to warm, warm to cold), as its background worker and its
	// memory-pressure eviction do. Leave it false when the worker is paused
	// and no quota can trigger eviction: then every tier change must come
	// from a recorded operation.
	AutoDemote bool
	// Metrics gives the metric of collections that existed before the
	// history started (their create_collection is not in it), and of
	// recorded creates that carry no metric.
	Metrics map[string]api.Metric
	// MaxListed caps the violations listed in an error (default
	// DefaultMaxListed); all are in the artifact files.
	MaxListed int
}

func (c Config) withDefaults() Config {
	if c.Tolerance == 0 {
		c.Tolerance = oracle.DefaultTolerance
	}
	if c.TierTimeout == 0 {
		c.TierTimeout = DefaultTierTimeout
	}
	if c.MaxListed == 0 {
		c.MaxListed = DefaultMaxListed
	}
	return c
}

// Violation is one thing a checker found wrong.
type Violation struct {
	// Checker names the checker (LostWritesName, ...).
	Checker string `json:"checker"`
	// Collection and ID locate the problem (ID may be empty).
	Collection string `json:"collection"`
	ID         string `json:"id,omitempty"`
	// Ops are the indexes of the operations involved.
	Ops []int `json:"ops,omitempty"`
	// Message explains the problem.
	Message string `json:"message"`
}

// String renders the violation on one line.
func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] collection %q", v.Checker, v.Collection)
	if v.ID != "" {
		fmt.Fprintf(&b, " id %q", v.ID)
	}
	if len(v.Ops) > 0 {
		fmt.Fprintf(&b, " ops %v", v.Ops)
	}
	b.WriteString(": ")
	b.WriteString(v.Message)
	return b.String()
}

// Failure is the error a checker returns when the history is not correct.
type Failure struct {
	// Checkers names the checkers that failed.
	Checkers []string
	// Violations lists everything found.
	Violations []Violation
	// Files are the artifacts written (history JSON, porcupine HTML).
	Files []string
	// ArtifactErr is set when the artifacts could not be written.
	ArtifactErr error

	maxListed int
}

// Error implements error: a readable summary naming the artifact files.
func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "check %s failed: %d violation(s)", strings.Join(f.Checkers, ", "), len(f.Violations))
	for i, v := range f.Violations {
		if i == f.maxListed {
			fmt.Fprintf(&b, "\n  … and %d more (see the files)", len(f.Violations)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	for _, p := range f.Files {
		fmt.Fprintf(&b, "\n  artifact: %s", p)
	}
	if f.ArtifactErr != nil {
		fmt.Fprintf(&b, "\n  artifacts not written: %v", f.ArtifactErr)
	}
	return b.String()
}

// Checker judges one history.
type Checker struct {
	ops   []history.Op
	cfg   Config
	index map[string]*collection
}

// New validates ops and prepares the checkers.
func New(ops []history.Op, cfg Config) (*Checker, error) {
	if err := history.Validate(ops); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Tolerance < 0 || cfg.TierTimeout < 0 || cfg.MaxListed < 0 {
		return nil, fmt.Errorf("%w: negative tolerance, timeout or limit", ErrConfig)
	}
	index, err := buildIndex(ops, cfg.Metrics)
	if err != nil {
		return nil, err
	}
	return &Checker{ops: ops, cfg: cfg.withDefaults(), index: index}, nil
}

// Ops returns the history being checked.
func (c *Checker) Ops() []history.Op { return c.ops }

// fail turns violations into a *Failure with artifacts, or nil.
func (c *Checker) fail(vs []Violation) error {
	if len(vs) == 0 {
		return nil
	}
	f := &Failure{Violations: vs, maxListed: c.cfg.MaxListed}
	seen := map[string]bool{}
	for _, v := range vs {
		if !seen[v.Checker] {
			seen[v.Checker] = true
			f.Checkers = append(f.Checkers, v.Checker)
		}
	}
	f.Files, f.ArtifactErr = c.writeArtifacts(vs)
	return f
}

// writeArtifacts writes history.json, violations.json and timeline.html.
func (c *Checker) writeArtifacts(vs []Violation) ([]string, error) {
	dir := c.cfg.ArtifactDir
	if dir == "" {
		d, err := os.MkdirTemp("", "tierchaos-check-")
		if err != nil {
			return nil, fmt.Errorf("artifact dir: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("artifact dir: %w", err)
	}
	prefix := filepath.Join(dir, strings.Join(checkerNames(vs), "+")+"-")
	var files []string
	hpath := prefix + "history.json"
	if err := history.WriteFile(hpath, c.ops); err != nil {
		return files, err
	}
	files = append(files, hpath)
	vpath := prefix + "violations.json"
	if err := writeJSONFile(vpath, vs); err != nil {
		return files, err
	}
	files = append(files, vpath)
	tpath := prefix + "timeline.html"
	if err := c.visualize(tpath, vs); err != nil {
		return files, err
	}
	files = append(files, tpath)
	return files, nil
}

func checkerNames(vs []Violation) []string {
	var names []string
	seen := map[string]bool{}
	for _, v := range vs {
		if !seen[v.Checker] {
			seen[v.Checker] = true
			names = append(names, v.Checker)
		}
	}
	return names
}

// All runs the four checkers; final is the state read back at the end (see
// LostWrites). It returns nil or one *Failure covering every checker that
// failed, with one set of artifacts.
func (c *Checker) All(final history.Final) error {
	var vs []Violation
	lost, err := c.lostWrites(final)
	if err != nil {
		return err
	}
	vs = append(vs, lost...)
	search, err := c.searches()
	if err != nil {
		return err
	}
	vs = append(vs, search...)
	vs = append(vs, c.snapshotChecks()...)
	tiers, err := c.tiers()
	if err != nil {
		return err
	}
	vs = append(vs, tiers...)
	return c.fail(vs)
}

// writeJSONFile writes v as indented JSON.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("check: encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return nil
}
