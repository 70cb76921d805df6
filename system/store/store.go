// Package store is tierd's collection store: collections with their
// vectors in one of three tiers, exact search, and serialized tier
// transitions.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/snapshot"
	"github.com/tierchaos/tierchaos/system/vecmath"
)

// Options configures a Store.
type Options struct {
	Limits config.Limits
	// Cold is the object store of the cold tier; nil makes every cold
	// operation fail with storage_unavailable.
	Cold *cold.Store
	// Now returns the current time (tests may fix it); nil means time.Now.
	Now func() time.Time
}

// Store holds all collections.
type Store struct {
	opts Options
	log  *slog.Logger

	mu    sync.RWMutex
	colls map[string]*collection
}

// New returns an empty Store.
func New(opts Options, log *slog.Logger) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts, log: log, colls: map[string]*collection{}}
}

// collection is one collection. Lock order: trans, then writeMu, then mu.
type collection struct {
	name   string
	dim    int
	metric api.Metric

	// trans is held (capacity 1) by a tier transition.
	trans chan struct{}
	// writeMu serializes writers (inserts, transitions' data phases).
	writeMu sync.Mutex

	// mu guards the fields below; readers (search) take it shared.
	mu      sync.RWMutex
	deleted bool
	tier    api.Tier
	ids     []string
	vecs    []float32
	index   map[string]int
	count   int // number of vectors, also when not hot
	snap    *snapRef
	access  atomic.Int64 // unix nanos of the last search or insert
}

// snapRef locates the data of a non-hot collection.
type snapRef struct {
	id       string
	key      string
	size     int64
	checksum string
}

func (c *collection) view() api.Collection {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := api.Collection{
		Name: c.name, Dimension: c.dim, Metric: c.metric, Tier: c.tier, Vectors: c.count,
		LastAccess: time.Unix(0, c.access.Load()).UTC(),
	}
	if c.snap != nil {
		out.Snapshot, out.Checksum = c.snap.id, c.snap.checksum
		if c.tier == api.TierCold {
			out.Object = c.snap.key
		}
	}
	return out
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

// Create adds an empty hot collection.
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
	c := &collection{
		name: req.Name, dim: req.Dimension, metric: req.Metric,
		trans: make(chan struct{}, 1), tier: api.TierHot, index: map[string]int{},
	}
	s.touch(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.colls[req.Name] != nil {
		return api.Collection{}, api.Errorf(api.CodeAlreadyExists, "collection %q already exists", req.Name)
	}
	s.colls[req.Name] = c
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
	s.mu.RLock()
	cs := make([]*collection, 0, len(s.colls))
	for _, c := range s.colls {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	out := make([]api.Collection, len(cs))
	for i, c := range cs {
		out[i] = c.view()
	}
	slices.SortFunc(out, func(a, b api.Collection) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
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

// Delete removes a collection and its objects. It waits for a running
// transition to finish.
func (s *Store) Delete(ctx context.Context, name string) error {
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	if err := acquire(ctx, c, true); err != nil {
		return err
	}
	defer release(c)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		return notFound(name)
	}
	c.deleted = true
	c.ids, c.vecs, c.index = nil, nil, nil
	c.mu.Unlock()
	s.mu.Lock()
	delete(s.colls, name)
	s.mu.Unlock()
	if s.opts.Cold != nil {
		if err := s.opts.Cold.DeletePrefix(ctx, s.opts.Cold.CollectionPrefix(name)); err != nil {
			s.log.Warn("delete collection: objects left behind", "collection", name, "err", err)
		}
	}
	return nil
}

// Insert adds or replaces vectors. The batch is validated as a whole first.
func (s *Store) Insert(ctx context.Context, name string, vectors []api.Vector) (int, error) {
	c, err := s.lookup(name)
	if err != nil {
		return 0, err
	}
	if len(vectors) == 0 {
		return 0, api.Errorf(api.CodeInvalidArgument, "vectors must not be empty")
	}
	if len(vectors) > s.opts.Limits.MaxVectorsPerInsert {
		return 0, api.Errorf(api.CodePayloadTooLarge, "insert of %d vectors exceeds the limit of %d per request", len(vectors), s.opts.Limits.MaxVectorsPerInsert)
	}
	for i, v := range vectors {
		if err := api.ValidateVectorID(v.ID); err != nil {
			return 0, api.Errorf(api.CodeInvalidArgument, "vector %d: %s", i, err.Error())
		}
		if err := api.ValidateValues(v.Values, c.dim); err != nil {
			return 0, api.Errorf(api.CodeInvalidArgument, "vector %d (%q): %s", i, v.ID, err.Error())
		}
	}
	for {
		c.writeMu.Lock()
		c.mu.RLock()
		tier, deleted := c.tier, c.deleted
		c.mu.RUnlock()
		if deleted {
			c.writeMu.Unlock()
			return 0, notFound(name)
		}
		if tier != api.TierHot {
			c.writeMu.Unlock()
			if err := s.promote(ctx, c); err != nil {
				return 0, err
			}
			continue
		}
		c.mu.Lock()
		for _, v := range vectors {
			if i, ok := c.index[v.ID]; ok {
				copy(c.vecs[i*c.dim:(i+1)*c.dim], v.Values)
				continue
			}
			c.index[v.ID] = len(c.ids)
			c.ids = append(c.ids, v.ID)
			c.vecs = append(c.vecs, v.Values...)
		}
		c.count = len(c.ids)
		c.mu.Unlock()
		c.writeMu.Unlock()
		s.touch(c)
		return len(vectors), nil
	}
}

// Search returns the exact top-k of query.
func (s *Store) Search(ctx context.Context, name string, query []float32, k int) ([]api.Result, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if err := api.ValidateK(k); err != nil {
		return nil, &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	if err := api.ValidateValues(query, c.dim); err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "query: %s", err.Error())
	}
	sc, err := vecmath.NewScorer(c.metric, query)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "query: %s", err.Error())
	}
	for {
		c.mu.RLock()
		if c.deleted {
			c.mu.RUnlock()
			return nil, notFound(name)
		}
		if c.tier != api.TierHot {
			c.mu.RUnlock()
			if err := s.promote(ctx, c); err != nil {
				return nil, err
			}
			continue
		}
		top := vecmath.NewTopK(c.metric, k)
		for i, id := range c.ids {
			top.Push(id, sc.Score(c.vecs[i*c.dim:(i+1)*c.dim]))
		}
		c.mu.RUnlock()
		s.touch(c)
		return top.Results(), nil
	}
}

// promote makes c hot for a search or insert, waiting for a running transition.
func (s *Store) promote(ctx context.Context, c *collection) error {
	if err := acquire(ctx, c, true); err != nil {
		return err
	}
	defer release(c)
	return s.toHot(ctx, c)
}

// SetTier moves a collection to target. A concurrent transition of the
// same collection makes it fail at once with transition_in_progress.
func (s *Store) SetTier(ctx context.Context, name string, target api.Tier) (api.Collection, error) {
	c, err := s.lookup(name)
	if err != nil {
		return api.Collection{}, err
	}
	if !target.Valid() {
		return api.Collection{}, api.Errorf(api.CodeInvalidArgument, "target must be hot, warm or cold, got %q", target)
	}
	if err := acquire(ctx, c, false); err != nil {
		return api.Collection{}, err
	}
	defer release(c)
	switch target {
	case api.TierHot:
		err = s.toHot(ctx, c)
	case api.TierCold:
		err = s.toCold(ctx, c)
	default:
		err = api.Errorf(api.CodeUnimplemented, "tier %q is not implemented yet", target)
	}
	if err != nil {
		return api.Collection{}, err
	}
	return c.view(), nil
}

func (s *Store) coldStore() (*cold.Store, error) {
	if s.opts.Cold == nil {
		return nil, api.Errorf(api.CodeStorageUnavailable, "no object store configured (set TIERD_S3_ENDPOINT)")
	}
	return s.opts.Cold, nil
}

// storageError maps a cold-tier error to an API error.
func storageError(what string, err error) error {
	switch {
	case errors.Is(err, snapshot.ErrCorrupt):
		return api.Errorf(api.CodeDataCorrupted, "%s: %w", what, err)
	case errors.Is(err, cold.ErrMissing):
		return api.Errorf(api.CodeDataCorrupted, "%s: %w", what, err)
	default:
		return api.Errorf(api.CodeStorageUnavailable, "%s: %w", what, err)
	}
}

// toCold demotes a hot collection to cold: encode, upload and verify, then
// flip and drop the memory. The caller holds the transition slot.
func (s *Store) toCold(ctx context.Context, c *collection) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.RLock()
	tier, deleted := c.tier, c.deleted
	c.mu.RUnlock()
	if deleted {
		return notFound(c.name)
	}
	if tier == api.TierCold {
		return nil
	}
	cs, err := s.coldStore()
	if err != nil {
		return err
	}
	// writeMu excludes every writer, so the data can be read without mu.
	data, info, err := snapshot.EncodeBytes(c.dim, c.ids, c.vecs)
	if err != nil {
		return api.Errorf(api.CodeInternal, "encode snapshot of %q: %w", c.name, err)
	}
	id := s.newID()
	key := cs.DataKey(c.name, id)
	start := s.opts.Now()
	if err := cs.Upload(ctx, key, data, info); err != nil {
		s.log.Warn("demotion to cold failed; collection stays hot", "collection", c.name, "key", key, "err", err)
		return storageError(fmt.Sprintf("demote %q to cold", c.name), err)
	}
	c.mu.Lock()
	c.tier = api.TierCold
	c.snap = &snapRef{id: id, key: key, size: info.Size, checksum: info.Checksum}
	c.ids, c.vecs, c.index = nil, nil, nil
	c.mu.Unlock()
	s.log.Info("demoted to cold", "collection", c.name, "key", key, "bytes", info.Size, "vectors", info.Count, "took", s.opts.Now().Sub(start))
	return nil
}

// toHot promotes a cold collection: download, verify, decode, flip, and
// delete the object. The caller holds the transition slot.
func (s *Store) toHot(ctx context.Context, c *collection) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.RLock()
	tier, deleted, ref := c.tier, c.deleted, c.snap
	c.mu.RUnlock()
	if deleted {
		return notFound(c.name)
	}
	if tier == api.TierHot {
		return nil
	}
	cs, err := s.coldStore()
	if err != nil {
		return err
	}
	data, err := cs.Download(ctx, ref.key)
	if err != nil {
		return storageError(fmt.Sprintf("promote %q", c.name), err)
	}
	ids, vecs, err := snapshot.Decode(ref.key, data, ref.size, ref.checksum, c.dim)
	if err != nil {
		s.log.Error("snapshot failed verification; not served", "collection", c.name, "key", ref.key, "err", err)
		return storageError(fmt.Sprintf("promote %q", c.name), err)
	}
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	c.mu.Lock()
	c.tier, c.snap = api.TierHot, nil
	c.ids, c.vecs, c.index, c.count = ids, vecs, index, len(ids)
	c.mu.Unlock()
	if err := cs.Delete(ctx, ref.key); err != nil {
		s.log.Warn("promotion: cold object not deleted", "collection", c.name, "key", ref.key, "err", err)
	}
	return nil
}
