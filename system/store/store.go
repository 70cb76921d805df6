// Package store is tierd's tiered collection store: collections whose
// vectors live in memory (hot), in a Parquet file on the local data volume
// (warm) or in a Parquet object in S3 (cold); exact search; inserts made
// durable in a write-ahead log before they are acknowledged; serialized,
// atomic tier transitions; user snapshots; quotas with LRU auto-demotion;
// and recovery from manifest + snapshots + WAL after a crash.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/fsutil"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/snapshot"
	"github.com/tierchaos/tierchaos/system/vecmath"
	"github.com/tierchaos/tierchaos/system/wal"
)

// Options configures a Store.
type Options struct {
	// DataDir holds the manifest, the WAL and the local Parquet files.
	DataDir string
	Limits  config.Limits
	Quotas  config.Quotas
	WAL     config.WAL
	// CheckpointBytes: Maintain checkpoints a hot collection with more WAL
	// bytes than this since its last snapshot (0: never).
	CheckpointBytes int64
	// Cold is the object store of the cold tier; nil makes every cold
	// operation fail with storage_unavailable.
	Cold *cold.Store
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Hook, if set, is called at every named step of a transition (see
	// the Hook* constants); tests use it to inject crashes.
	Hook func(point string)
	// Registerer receives the store's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// ColdPageCacheBytes bounds the cache of decoded cold objects that
	// vector listings page through (see pageCache); 0 means
	// DefaultColdPageCacheBytes, negative disables it.
	ColdPageCacheBytes int64
	// FS is the file system of DataDir (nil: fsutil.OS); in-process
	// tests pass a power-loss layer (system/fsutil/powerloss).
	FS fsutil.FS
	// PackThreshold: when a maintenance cycle demotes two or more warm
	// collections whose snapshot is smaller than this to cold, their
	// snapshots go up as members of pack objects (Cold's batch
	// configuration; see demotePacked). 0 never packs.
	PackThreshold int64
}

// Store holds all collections.
type Store struct {
	opts    Options
	log     *slog.Logger
	wal     *wal.WAL
	metrics *metrics

	// metaMu serializes creates and deletes (the collection-count quota).
	metaMu sync.Mutex

	mu    sync.RWMutex
	colls map[string]*collection

	// manMu guards man, the durable image of the catalogue (held briefly,
	// never across I/O).
	manMu sync.Mutex
	man   *manifest.Manifest
	// saveMu serializes manifest saves and guards manFile; commits queued
	// in commitQueue while one save runs are saved together by the next
	// holder (group commit).
	saveMu      sync.Mutex
	manFile     *manifest.File
	queueMu     sync.Mutex
	commitQueue []*commitReq

	inflightMu sync.Mutex
	inflight   map[string]int // object keys being uploaded

	hotBytes  atomic.Int64
	warmBytes atomic.Int64
	coldBytes atomic.Int64
	// scored counts the vectors searches have scored (tests check that a
	// cancelled search stops early).
	scored atomic.Int64
	// pages caches decoded cold objects for vector listings.
	pages *pageCache

	// halted is set by Halt: no more writes to the data folder. Local file
	// writes and removals hold haltMu shared, so Halt (exclusive) returns
	// only once none runs.
	halted atomic.Bool
	haltMu sync.RWMutex

	// bg runs deletes that no request waits for (the cold object a
	// promotion replaced); Close and Halt cancel bgCtx and wait for them.
	// bgMu orders starting one (bg.Add) against stopping them (bgCancel,
	// then bg.Wait): a WaitGroup must not gain work while it is waited on.
	bg       sync.WaitGroup
	bgMu     sync.Mutex
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// errHalted answers every write after Halt.
var errHalted = errors.New("store halted (simulated crash)")

// collection is one collection. Lock order: trans, then writeMu, then mu;
// never Store.mu while holding mu.
type collection struct {
	id      uint64
	name    string
	dim     int
	metric  api.Metric
	created time.Time

	// trans is held (capacity 1) by a tier transition, snapshot or restore.
	trans chan struct{}
	// writeMu serializes writers: inserts submit their WAL record under it,
	// transitions, snapshots, checkpoints and deletes hold it (through
	// lockWriters) while they read or replace the data.
	writeMu sync.Mutex
	// An insert applies its record after the fsync, outside writeMu, in
	// submission order, so one fsync covers many inserts of a collection:
	// issued counts the records submitted, applied those applied or
	// abandoned, and turn (on applyMu) signals that applied moved.
	applyMu         sync.Mutex
	turn            sync.Cond
	issued, applied uint64

	// mu guards the fields below; search takes it shared.
	mu        sync.RWMutex
	deleted   bool
	broken    error // set when recovery could not load the data
	tier      api.Tier
	ids       []string
	vecs      []float32
	norms     []float64 // Euclidean norm of each vector (cosine scoring)
	index     map[string]int
	count     int
	data      *manifest.SnapshotRef // durable data (nil: hot, never checkpointed)
	snapshots []manifest.SnapshotRef
	// hotBytes is what this collection counts against the hot quota.
	hotBytes int64
	// covered: WAL records up to it are in data; lastLSN: last applied.
	covered, lastLSN uint64
	// firstUncovered is the first LSN after covered (0: none); walBytes
	// the WAL bytes since covered.
	firstUncovered uint64
	walBytes       int64

	access atomic.Int64 // unix nanos of the last search or insert

	// promoteGen counts finished promotion attempts; promoteErr (under mu)
	// is the last one's error. Requests that waited for a promotion share
	// its failure instead of each downloading again.
	promoteGen atomic.Uint64
	promoteErr error
}

// Hook points, in the order a transition passes them.
const (
	HookColdEncoded   = "cold.encoded"   // snapshot bytes ready, nothing uploaded
	HookColdUploaded  = "cold.uploaded"  // object stored, not verified
	HookColdVerified  = "cold.verified"  // object verified, manifest not flipped
	HookColdCommitted = "cold.committed" // manifest says cold, old copy still there
	HookColdCleaned   = "cold.cleaned"   // old copy deleted
	HookWarmWritten   = "warm.written"   // local file durable, manifest not flipped
	HookWarmCommitted = "warm.committed" // manifest says warm, old copy still there
	HookHotLoaded     = "hot.loaded"     // data verified and decoded, local file written
	HookHotCommitted  = "hot.committed"  // manifest says hot, cold object still there

	// HookSnapshotUploaded fires when a user snapshot's object is stored
	// and verified, before the manifest lists it.
	HookSnapshotUploaded = "snapshot.uploaded"
	// HookDeleteCommitted fires when a deleted collection's removal is
	// durable in the manifest, before its objects are deleted.
	HookDeleteCommitted = "delete.committed"
	// HookSweepBetweenReads fires in the orphan sweep after it listed the
	// objects and read the running uploads, before it reads the manifest's
	// references.
	HookSweepBetweenReads = "sweep.between-reads"
)

// bytes per vector beyond its values and id: slice/string headers and map entry.
const vectorOverhead = 64

func vectorBytes(id string, dim int) int64 { return int64(len(id) + 4*dim + vectorOverhead) }

// Open opens or creates the store in opts.DataDir and recovers it: stray
// temporary files are removed, hot collections are loaded from their last
// checkpoint and the WAL is replayed, local files no collection refers to
// are removed.
func Open(opts Options, log *slog.Logger) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DataDir == "" {
		return nil, errors.New("store: data dir is empty")
	}
	opts.FS = fsutil.Or(opts.FS)
	if err := fsutil.MkdirAllFS(opts.FS, opts.DataDir); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	pageBytes := opts.ColdPageCacheBytes
	if pageBytes == 0 {
		pageBytes = DefaultColdPageCacheBytes
	}
	s := &Store{opts: opts, log: log, colls: map[string]*collection{}, inflight: map[string]int{}, pages: newPageCache(pageBytes)}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.metrics = newMetrics(s, opts.Registerer)
	if removed, err := fsutil.RemoveTempsFS(opts.FS, opts.DataDir); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	} else if len(removed) > 0 {
		log.Warn("recovery: removed stray temporary files", "files", removed)
	}
	mf, man, err := manifest.OpenFS(opts.FS, opts.DataDir)
	if errors.Is(err, manifest.ErrCorrupt) {
		return nil, api.Errorf(api.CodeDataCorrupted, "store: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.man, s.manFile = man, mf
	byID := map[uint64]*collection{}
	for _, e := range man.Collections {
		c := s.fromEntry(e)
		s.colls[c.name] = c
		byID[c.id] = c
	}
	replayed := 0
	w, st, err := wal.Open(filepath.Join(opts.DataDir, "wal"), wal.Options{
		SegmentBytes: opts.WAL.SegmentBytes, GroupCommitWindow: opts.WAL.GroupCommitWindow.D(),
		OnSync: s.metrics.observeSync, Repair: opts.WAL.Repair, FS: opts.FS,
	}, log, func(lsn uint64, payload []byte) error {
		rec, err := decodeInsert(payload)
		if err != nil {
			return err
		}
		c := byID[rec.collection]
		if c == nil || lsn <= c.covered {
			return nil
		}
		if c.tier != api.TierHot {
			log.Error("recovery: WAL record for a non-hot collection ignored", "collection", c.name, "tier", c.tier, "lsn", lsn)
			return nil
		}
		if c.broken != nil {
			return nil
		}
		if err := rec.validate(c.dim); err != nil {
			return err
		}
		c.apply(rec.vectors)
		c.noteWAL(lsn, int64(len(payload)))
		replayed++
		return nil
	})
	if err != nil {
		_ = mf.Close()
		if errors.Is(err, wal.ErrCorrupt) {
			return nil, api.Errorf(api.CodeDataCorrupted,
				"store: %w (start with wal.repair / TIERD_WAL_REPAIR=true to quarantine the segment and keep its intact records)", err)
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	s.wal = w
	for _, c := range s.colls {
		c.hotBytes = c.memBytes()
		if c.tier == api.TierHot {
			s.hotBytes.Add(c.hotBytes)
		}
		if c.data != nil && c.data.File != "" {
			s.warmBytes.Add(c.data.Size)
		}
		if c.tier == api.TierCold && c.data != nil {
			s.coldBytes.Add(c.data.Size)
		}
		for _, sn := range c.snapshots {
			s.coldBytes.Add(sn.Size)
		}
	}
	if err := s.removeUnreferencedFiles(); err != nil {
		log.Warn("recovery: could not remove unreferenced local files", "err", err)
	}
	log.Info("store recovered", "collections", len(s.colls), "wal_segments", st.Segments, "wal_records", st.Records,
		"replayed", replayed, "wal_truncated_bytes", st.Truncated, "wal_repaired_segments", len(st.Repaired), "last_lsn", st.LastLSN)
	return s, nil
}

// fromEntry builds a collection from its manifest entry, loading the data
// of a hot collection from its checkpoint.
func (s *Store) fromEntry(e *manifest.Entry) *collection {
	c := &collection{
		id: e.ID, name: e.Name, dim: e.Dimension, metric: e.Metric, created: e.Created,
		trans: make(chan struct{}, 1), tier: e.Tier, index: map[string]int{},
		covered: e.CoveredLSN, lastLSN: e.CoveredLSN,
		snapshots: slices.Clone(e.Snapshots),
	}
	c.turn.L = &c.applyMu
	if e.Data != nil {
		d := *e.Data
		c.data = &d
		c.count = d.Count
	}
	c.access.Store(s.opts.Now().UnixNano())
	if c.tier == api.TierHot && c.data != nil {
		ids, vecs, err := s.readLocal(c.data, c.dim)
		if err != nil {
			c.broken = err
			s.log.Error("recovery: hot collection's checkpoint unreadable; collection unavailable", "collection", c.name, "err", err)
			return c
		}
		c.setData(ids, vecs)
	}
	return c
}

// removeUnreferencedFiles deletes local Parquet files of no collection
// (left by a transition interrupted before or after its manifest flip).
func (s *Store) removeUnreferencedFiles() error {
	s.manMu.Lock()
	refs := s.man.ReferencedFiles()
	s.manMu.Unlock()
	root := filepath.Join(s.opts.DataDir, "local")
	var removed []string
	err := fsutil.Walk(s.opts.FS, root, func(p string, d os.DirEntry) error {
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.opts.DataDir, p)
		if err != nil {
			return err
		}
		if !refs[filepath.ToSlash(rel)] {
			if err := s.opts.FS.Remove(p); err != nil {
				return err
			}
			removed = append(removed, rel)
		}
		return nil
	})
	if len(removed) > 0 {
		s.log.Warn("recovery: removed unreferenced local files", "files", removed)
	}
	return err
}

// Halt stops the store the way the death of the process would, for
// in-process crash tests: from now on nothing reaches the data folder (WAL
// records not yet written are dropped, manifest commits and local file
// writes and removals fail or are skipped), nothing is flushed, and the
// files are closed. Requests still running get errors. Object store
// requests are the caller's to stop (server.Server.Abandon does both).
func (s *Store) Halt() {
	s.stopBackground()
	s.haltMu.Lock()
	s.halted.Store(true)
	s.haltMu.Unlock()
	s.wal.Halt()
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	_ = s.manFile.Close()
}

// Close closes the WAL and the manifest file. Acknowledged inserts are
// already durable.
func (s *Store) Close() error {
	s.stopBackground()
	err := s.wal.Close()
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	return errors.Join(err, s.manFile.Close())
}

// commitReq is one queued manifest change and where its outcome goes.
type commitReq struct {
	fn   func(m *manifest.Manifest) error
	done chan error
}

// commit applies fn to a copy of the manifest, saves it durably and makes
// it current. fn's error aborts fn's change only, without saving it.
// Concurrent commits are grouped: while one save runs, later changes
// queue up, and the next caller to take saveMu applies all of them in
// arrival order and saves them with one write and fsync.
func (s *Store) commit(fn func(m *manifest.Manifest) error) error {
	req := &commitReq{fn: fn, done: make(chan error, 1)}
	s.queueMu.Lock()
	s.commitQueue = append(s.commitQueue, req)
	s.queueMu.Unlock()
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	select {
	case err := <-req.done: // saved by the previous holder
		return err
	default:
	}
	if s.halted.Load() {
		s.queueMu.Lock()
		batch := s.commitQueue
		s.commitQueue = nil
		s.queueMu.Unlock()
		for _, r := range batch {
			r.done <- api.Errorf(api.CodeInternal, "save manifest: %w", errHalted)
		}
		return <-req.done
	}
	s.queueMu.Lock()
	batch := s.commitQueue
	s.commitQueue = nil
	s.queueMu.Unlock()
	// Only saveMu holders replace s.man: work is the current manifest.
	s.manMu.Lock()
	work := s.man
	s.manMu.Unlock()
	results := make([]error, len(batch))
	changed := false
	for i, r := range batch {
		trial := work.Clone()
		if err := r.fn(trial); err != nil {
			results[i] = err
			continue
		}
		work, changed = trial, true
	}
	if changed {
		start := time.Now()
		err := s.manFile.Save(work)
		s.metrics.manifestSave.Observe(time.Since(start).Seconds())
		if err != nil {
			err = localError("save manifest", err)
			for i := range results {
				if results[i] == nil {
					results[i] = err
				}
			}
		} else {
			s.manMu.Lock()
			s.man = work
			s.manMu.Unlock()
			for _, r := range results {
				if r == nil {
					s.metrics.manifestCommits.Inc()
				}
			}
		}
	}
	for i, r := range batch {
		r.done <- results[i]
	}
	return <-req.done
}

// localError maps a local disk failure to an API error.
func localError(what string, err error) error {
	if errors.Is(err, fsutil.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return api.Errorf(api.CodeInsufficientStorage, "%s: %w", what, err)
	}
	if errors.Is(err, snapshot.ErrCorrupt) {
		return api.Errorf(api.CodeDataCorrupted, "%s: %w", what, err)
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	return api.Errorf(api.CodeInternal, "%s: %w", what, err)
}

func (s *Store) hook(point string) {
	if s.opts.Hook != nil {
		s.opts.Hook(point)
	}
}

func (c *collection) memBytes() int64 {
	if c.tier != api.TierHot {
		return 0
	}
	var n int64
	for _, id := range c.ids {
		n += vectorBytes(id, c.dim)
	}
	return n
}

func (c *collection) setData(ids []string, vecs []float32) {
	c.ids, c.vecs = ids, vecs
	c.index = make(map[string]int, len(ids))
	c.norms = make([]float64, len(ids))
	for i, id := range ids {
		c.index[id] = i
		c.norms[i] = vecmath.Norm(vecs[i*c.dim : (i+1)*c.dim])
	}
	c.count = len(ids)
}

func (c *collection) dropData() {
	c.ids, c.vecs, c.norms, c.index = nil, nil, nil, nil
}

// apply inserts or replaces vectors; the caller holds mu (or owns c).
func (c *collection) apply(vs []api.Vector) int64 {
	var added int64
	for _, v := range vs {
		if i, ok := c.index[v.ID]; ok {
			copy(c.vecs[i*c.dim:(i+1)*c.dim], v.Values)
			c.norms[i] = vecmath.Norm(v.Values)
			continue
		}
		c.index[v.ID] = len(c.ids)
		c.ids = append(c.ids, v.ID)
		c.vecs = append(c.vecs, v.Values...)
		c.norms = append(c.norms, vecmath.Norm(v.Values))
		added += vectorBytes(v.ID, c.dim)
	}
	c.count = len(c.ids)
	return added
}

func (c *collection) noteWAL(lsn uint64, n int64) {
	c.lastLSN = lsn
	if c.firstUncovered == 0 {
		c.firstUncovered = lsn
	}
	c.walBytes += n + 16
}

func (c *collection) view() api.Collection {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := api.Collection{
		Name: c.name, Dimension: c.dim, Metric: c.metric, Tier: c.tier, Vectors: c.count,
		LastAccess: time.Unix(0, c.access.Load()).UTC(),
	}
	if c.data != nil && c.tier != api.TierHot {
		out.Snapshot, out.Checksum = c.data.ID, c.data.Checksum
		out.Object = c.data.Key
	}
	return out
}

// lockWriters takes writeMu and waits until every insert submitted before
// it has been applied (or abandoned): the holder sees all of them in memory
// and no other writer until it unlocks writeMu.
func (c *collection) lockWriters() {
	c.writeMu.Lock()
	c.applyMu.Lock()
	for c.applied != c.issued {
		c.turn.Wait()
	}
	c.applyMu.Unlock()
}

// issue returns the ticket of an insert whose record was just submitted;
// the caller holds writeMu, so tickets follow the records' LSN order.
func (c *collection) issue() uint64 {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	t := c.issued
	c.issued++
	return t
}

// awaitTurn waits until every insert issued before ticket t is applied.
func (c *collection) awaitTurn(t uint64) {
	c.applyMu.Lock()
	for c.applied != t {
		c.turn.Wait()
	}
	c.applyMu.Unlock()
}

// endTurn records that the insert whose turn it is has been applied or
// abandoned.
func (c *collection) endTurn() {
	c.applyMu.Lock()
	c.applied++
	c.turn.Broadcast()
	c.applyMu.Unlock()
}

func (s *Store) touch(c *collection) { c.access.Store(s.opts.Now().UnixNano()) }

// newID returns a sortable unique id: time then randomness.
func (s *Store) newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x%s", s.opts.Now().UnixNano(), hex.EncodeToString(b[:]))
}

func notFound(name string) error {
	return api.Errorf(api.CodeNotFound, "collection %q not found", name)
}

func (s *Store) lookup(name string) (*collection, error) {
	if err := api.ValidateName(name); err != nil {
		return nil, &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	s.mu.RLock()
	c := s.colls[name]
	s.mu.RUnlock()
	if c == nil {
		return nil, notFound(name)
	}
	return c, nil
}

// Create adds an empty hot collection. Concurrent creates never exceed
// the collection quota.
func (s *Store) Create(_ context.Context, req api.CreateCollectionRequest) (api.Collection, error) {
	if err := api.ValidateName(req.Name); err != nil {
		return api.Collection{}, &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	if req.Dimension < 1 || req.Dimension > s.opts.Limits.MaxDimension {
		return api.Collection{}, api.Errorf(api.CodeInvalidArgument, "dimension must be 1..%d, got %d", s.opts.Limits.MaxDimension, req.Dimension)
	}
	if !req.Metric.Valid() {
		return api.Collection{}, api.Errorf(api.CodeInvalidArgument, "metric must be cosine, l2 or dot, got %q", req.Metric)
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	s.mu.RLock()
	exists, n := s.colls[req.Name] != nil, len(s.colls)
	s.mu.RUnlock()
	if exists {
		return api.Collection{}, api.Errorf(api.CodeAlreadyExists, "collection %q already exists", req.Name)
	}
	if q := s.opts.Quotas.Collections; q > 0 && n >= q {
		s.metrics.quotaRejections.WithLabelValues("collections").Inc()
		return api.Collection{}, api.Errorf(api.CodeQuotaExceeded, "quota collections exceeded: %d of %d collections exist", n, q)
	}
	now := s.opts.Now().UTC()
	var id uint64
	if err := s.commit(func(m *manifest.Manifest) error {
		id = m.NextID
		m.NextID++
		m.Collections[req.Name] = &manifest.Entry{ID: id, Name: req.Name, Dimension: req.Dimension, Metric: req.Metric,
			Tier: api.TierHot, CoveredLSN: s.wal.LastLSN(), Created: now}
		return nil
	}); err != nil {
		return api.Collection{}, err
	}
	c := &collection{id: id, name: req.Name, dim: req.Dimension, metric: req.Metric, created: now,
		trans: make(chan struct{}, 1), tier: api.TierHot, index: map[string]int{}}
	c.turn.L = &c.applyMu
	c.covered, c.lastLSN = s.wal.LastLSN(), s.wal.LastLSN()
	s.touch(c)
	s.mu.Lock()
	s.colls[req.Name] = c
	s.mu.Unlock()
	return c.view(), nil
}

// Get returns a collection's state.
func (s *Store) Get(_ context.Context, name string) (api.Collection, error) {
	c, err := s.lookup(name)
	if err != nil {
		return api.Collection{}, err
	}
	return c.view(), nil
}

// List returns all collections sorted by name.
func (s *Store) List(_ context.Context) []api.Collection {
	cs := s.all()
	out := make([]api.Collection, len(cs))
	for i, c := range cs {
		out[i] = c.view()
	}
	return out
}

// all returns the collections sorted by name.
func (s *Store) all() []*collection {
	s.mu.RLock()
	cs := make([]*collection, 0, len(s.colls))
	for _, c := range s.colls {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	slices.SortFunc(cs, func(a, b *collection) int { return strings.Compare(a.name, b.name) })
	return cs
}

// acquire takes c's transition slot, waiting (wait) or failing at once.
func acquire(ctx context.Context, c *collection, wait bool) error {
	if !wait {
		select {
		case c.trans <- struct{}{}:
			return nil
		default:
			return api.Errorf(api.CodeTransitionInProgress, "collection %q has a tier transition in progress", c.name)
		}
	}
	select {
	case c.trans <- struct{}{}:
		return nil
	case <-ctx.Done():
		return api.Errorf(api.CodeStorageUnavailable, "waiting for the transition of %q: %w", c.name, ctx.Err())
	}
}

func release(c *collection) { <-c.trans }

// Delete removes a collection, its local files and its objects. It waits
// for a running transition to finish. Objects that cannot be deleted now
// are kept in the manifest's pending deletes and retried by Maintain.
func (s *Store) Delete(ctx context.Context, name string) error {
	keys, err := s.deleteEntry(ctx, name)
	if err != nil {
		return err
	}
	// The keys are pending deletes in the manifest: no lock is needed to
	// delete them, and holding one would make creates and deletes of other
	// collections wait for S3.
	s.hook(HookDeleteCommitted)
	s.deleteObjects(ctx, keys)
	return nil
}

// deleteEntry removes a collection from the manifest and memory, and
// returns the object keys it leaves as pending deletes.
func (s *Store) deleteEntry(ctx context.Context, name string) ([]string, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if err := acquire(ctx, c, true); err != nil {
		return nil, err
	}
	defer release(c)
	c.lockWriters()
	defer c.writeMu.Unlock()
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	c.mu.RLock()
	deleted := c.deleted
	c.mu.RUnlock()
	if deleted {
		return nil, notFound(name)
	}
	var keys, files, cached []string
	if err := s.commit(func(m *manifest.Manifest) error {
		e := m.Collections[name]
		if e == nil || e.ID != c.id {
			return notFound(name)
		}
		if e.Data != nil && e.Data.Key != "" {
			// A pack goes to the pending deletes too: it is deleted only
			// when no other member refers to it any more.
			keys = append(keys, e.Data.Key)
			cached = append(cached, cacheKey(e.Data))
		}
		if e.Data != nil && e.Data.File != "" {
			files = append(files, e.Data.File)
		}
		for _, sn := range e.Snapshots {
			keys = append(keys, sn.Key)
		}
		delete(m.Collections, name)
		m.PendingDeletes = append(m.PendingDeletes, keys...)
		return nil
	}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.deleted = true
	s.hotBytes.Add(-c.hotBytes)
	c.hotBytes = 0
	if c.tier == api.TierCold && c.data != nil {
		s.coldBytes.Add(-c.data.Size)
	}
	for _, sn := range c.snapshots {
		s.coldBytes.Add(-sn.Size)
	}
	c.dropData()
	c.mu.Unlock()
	s.mu.Lock()
	delete(s.colls, name)
	s.mu.Unlock()
	for _, k := range cached {
		s.pages.drop(k)
	}
	for _, f := range files {
		s.removeLocal(f)
	}
	return keys, nil
}

// deleteObjects deletes keys now (the object and any incomplete upload of
// it) and drops them from the pending deletes and the uploads in progress;
// it returns how many deletes failed, which stay listed for the worker.
// A key the manifest refers to is never deleted, only dropped from the
// lists; a key whose upload is running is skipped and stays listed.
func (s *Store) deleteObjects(ctx context.Context, keys []string) (failed int) {
	if len(keys) == 0 || s.opts.Cold == nil {
		return 0
	}
	var deleted, kept []string
	for _, k := range keys {
		// Running uploads first, then references: an upload that is not
		// running any more has either committed (referenced) or failed.
		if s.uploading(k) {
			continue
		}
		if s.referenced(k) {
			kept = append(kept, k)
			continue
		}
		if err := s.opts.Cold.Purge(ctx, k); err != nil {
			s.log.Warn("object not deleted; kept for the worker", "key", k, "err", err)
			failed++
			continue
		}
		deleted = append(deleted, k)
		if s.opts.Cold.IsPackKey(k) {
			s.metrics.packDeletes.Inc()
			s.log.Info("pack deleted: no member left", "pack", k)
		}
	}
	if len(deleted) == 0 && len(kept) == 0 {
		return failed
	}
	if err := s.commit(func(m *manifest.Manifest) error {
		// A referenced key (a pack with other live members) leaves the
		// lists only if it is still referenced in this commit: the commit
		// that removes its last reference lists it again, and that entry
		// must stay until the pack is deleted.
		refs := m.ReferencedKeys()
		gone := func(k string) bool { return slices.Contains(deleted, k) || slices.Contains(kept, k) && refs[k] }
		m.PendingDeletes = slices.DeleteFunc(m.PendingDeletes, gone)
		m.Uploads = slices.DeleteFunc(m.Uploads, gone)
		return nil
	}); err != nil {
		s.log.Warn("manifest: pending deletes not updated", "err", err)
	}
	return failed
}

// deleteLater deletes keys in the background. They must already be
// listed as pending deletes in the manifest: a delete that fails, or is
// cut short by Close or Halt, is retried by the worker.
func (s *Store) deleteLater(keys []string) {
	if s.opts.Cold == nil || len(keys) == 0 {
		return
	}
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgCtx.Err() != nil {
		return // the keys stay pending deletes; the next start retries them
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		failed := s.deleteObjects(s.bgCtx, keys)
		s.metrics.backgroundDeletes(len(keys), failed)
	}()
}

// stopBackground cancels the background deletes and waits for them.
func (s *Store) stopBackground() {
	s.bgMu.Lock()
	s.bgCancel()
	s.bgMu.Unlock()
	s.bg.Wait()
}

// RetryDeletes retries the pending deletes and cleans up the uploads in
// progress that no running upload owns (left by a crash or by a cleanup
// that failed). It returns how many keys are still left to delete.
func (s *Store) RetryDeletes(ctx context.Context) int {
	s.manMu.Lock()
	keys := slices.Concat(s.man.PendingDeletes, s.man.Uploads)
	s.manMu.Unlock()
	return s.deleteObjects(ctx, keys)
}

// uploading reports whether an upload to key is running.
func (s *Store) uploading(key string) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	return s.inflight[key] > 0
}

// referenced reports whether the manifest refers to key.
func (s *Store) referenced(key string) bool {
	s.manMu.Lock()
	defer s.manMu.Unlock()
	return s.man.ReferencedKeys()[key]
}

// removeLocal deletes a local file (relative path) and its accounting,
// and the collection's folder when that was its last file. The caller
// holds the collection's transition slot (or the collection is deleted):
// a writer into the folder that does not hold it could find the folder
// gone between creating it and creating its file.
func (s *Store) removeLocal(rel string) {
	s.haltMu.RLock()
	defer s.haltMu.RUnlock()
	if s.halted.Load() {
		return
	}
	p := filepath.Join(s.opts.DataDir, filepath.FromSlash(rel))
	info, err := s.opts.FS.Stat(p)
	if err == nil {
		err = s.opts.FS.Remove(p)
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("local file not removed; recovery will remove it", "file", rel, "err", err)
		}
		return
	}
	s.warmBytes.Add(-info.Size())
	// The collection's folder goes when its last file does. No folder
	// fsync: a removal that a power loss undoes leaves a file nothing
	// refers to, which recovery removes (removeUnreferencedFiles).
	_ = s.opts.FS.Remove(filepath.Dir(p))
}

// Usage reports resource use against the quotas.
func (s *Store) Usage() api.Usage {
	segs, walBytes := s.wal.Stats()
	s.mu.RLock()
	n := len(s.colls)
	s.mu.RUnlock()
	return api.Usage{
		HotBytes: s.hotBytes.Load(), HotBytesQuota: s.opts.Quotas.HotBytes,
		WarmBytes: s.warmBytes.Load(), WarmBytesQuota: s.opts.Quotas.WarmBytes,
		ColdBytes:   s.coldBytes.Load(),
		Collections: n, CollectionsQuota: s.opts.Quotas.Collections,
		WALSegments: segs, WALBytes: walBytes,
	}
}
