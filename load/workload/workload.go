// Package workload is the default tierd workload: a seeded set of
// collections (a share of them demoted to warm or cold before the run) and
// three operations, search, insert and tier control, mixed 70/20/10 by
// default. Every random choice derives from the seed and the request's
// sequence number, so a run is reproducible.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcclient"
)

// ErrConfig is returned (wrapped) for an invalid configuration or mix.
var ErrConfig = errors.New("workload: invalid config")

// Operation names.
const (
	OpSearch = "search"
	OpInsert = "insert"
	OpTier   = "tier"
)

// Mix is the weight of each operation.
type Mix map[string]float64

// DefaultMix is the seed plan's mix.
func DefaultMix() Mix { return Mix{OpSearch: 70, OpInsert: 20, OpTier: 10} }

// ParseMix parses "search=70,insert=20,tier=10". Omitted ops get weight 0.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%w: mix entry %q is not op=weight", ErrConfig, part)
		}
		name = strings.TrimSpace(name)
		if name != OpSearch && name != OpInsert && name != OpTier {
			return nil, fmt.Errorf("%w: unknown op %q in mix (want search, insert, tier)", ErrConfig, name)
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("%w: weight of %q must be a number ≥ 0, got %q", ErrConfig, name, val)
		}
		m[name] = w
	}
	var sum float64
	for _, w := range m {
		sum += w
	}
	if !(sum > 0) {
		return nil, fmt.Errorf("%w: mix %q has no positive weight", ErrConfig, s)
	}
	return m, nil
}

// String renders the mix in ParseMix's format, ops in a fixed order.
func (m Mix) String() string {
	var parts []string
	for _, n := range []string{OpSearch, OpInsert, OpTier} {
		if w, ok := m[n]; ok {
			parts = append(parts, n+"="+strconv.FormatFloat(w, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

// Config describes the data set and the mix.
type Config struct {
	// Seed drives every random choice.
	Seed uint64
	// Prefix starts every collection name (default "load").
	Prefix string
	// Collections is how many collections to create (default 32).
	Collections int
	// Dimension of every vector (default 64).
	Dimension int
	// Metric of every collection (default cosine).
	Metric api.Metric
	// Vectors is how many seeded vectors each collection holds (default 200).
	// Inserts replace vectors within this id space, so the data set (and
	// tierd's memory) stays the same size however long the run.
	Vectors int
	// WarmShare and ColdShare are the shares of collections demoted to warm
	// and cold before the run (default 0.2 and 0.1).
	WarmShare, ColdShare float64
	// K is the number of search results (default 10).
	K int
	// InsertBatch is the number of vectors per insert (default 10).
	InsertBatch int
	// Mix weights the ops (default DefaultMix).
	Mix Mix
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "load"
	}
	if c.Collections == 0 {
		c.Collections = 32
	}
	if c.Dimension == 0 {
		c.Dimension = 64
	}
	if c.Metric == "" {
		c.Metric = api.MetricCosine
	}
	if c.Vectors == 0 {
		c.Vectors = 200
	}
	if c.WarmShare == 0 && c.ColdShare == 0 {
		c.WarmShare, c.ColdShare = 0.2, 0.1
	}
	if c.K == 0 {
		c.K = 10
	}
	if c.InsertBatch == 0 {
		c.InsertBatch = 10
	}
	if c.Mix == nil {
		c.Mix = DefaultMix()
	}
	return c
}

// Validate reports the first problem with c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Collections < 1:
		return fmt.Errorf("%w: collections %d must be ≥ 1", ErrConfig, c.Collections)
	case c.Dimension < 1:
		return fmt.Errorf("%w: dimension %d must be ≥ 1", ErrConfig, c.Dimension)
	case !c.Metric.Valid():
		return fmt.Errorf("%w: metric %q", ErrConfig, c.Metric)
	case c.Vectors < 1:
		return fmt.Errorf("%w: vectors %d must be ≥ 1", ErrConfig, c.Vectors)
	case c.WarmShare < 0 || c.ColdShare < 0 || c.WarmShare+c.ColdShare > 1:
		return fmt.Errorf("%w: warm share %v and cold share %v must be ≥ 0 and add up to ≤ 1", ErrConfig, c.WarmShare, c.ColdShare)
	case api.ValidateK(c.K) != nil:
		return fmt.Errorf("%w: k: %w", ErrConfig, api.ValidateK(c.K))
	case c.InsertBatch < 1 || c.InsertBatch > c.Vectors:
		return fmt.Errorf("%w: insert batch %d must be in 1..vectors (%d)", ErrConfig, c.InsertBatch, c.Vectors)
	}
	if err := api.ValidateName(c.name(c.Collections - 1)); err != nil {
		return fmt.Errorf("%w: prefix %q: %w", ErrConfig, c.Prefix, err)
	}
	return nil
}

func (c Config) name(i int) string { return fmt.Sprintf("%s-%d", c.Prefix, i) }

// collection is the workload's view of one collection.
type collection struct {
	name string
	// tier is the last tier tierd reported (an api.Tier).
	tier atomic.Value
	// transitioning (capacity 1) serialises this workload's own tier
	// requests on the collection, so that the mix does not race itself
	// into 409s.
	transitioning chan struct{}
}

// Workload drives tierd.
type Workload struct {
	cfg   Config
	c     client.API
	colls []*collection
}

// NewHTTPClient returns an HTTP client for the tierd client with a
// keep-alive pool sized for an open-loop run.
func NewHTTPClient(maxConns int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = maxConns
	tr.MaxIdleConnsPerHost = maxConns
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Setup creates the collections (replacing any of the same name), loads
// their seeded vectors and demotes the configured shares to warm and cold.
// c is either of tierd's clients: REST (client.New) or gRPC
// (load/grpcop); every operation goes through it.
func Setup(ctx context.Context, c client.API, cfg Config) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	w := &Workload{cfg: cfg, c: c}
	nWarm := int(float64(cfg.Collections) * cfg.WarmShare)
	nCold := int(float64(cfg.Collections) * cfg.ColdShare)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range cfg.Collections {
		col := &collection{name: cfg.name(i), transitioning: make(chan struct{}, 1)}
		w.colls = append(w.colls, col)
		target := api.TierHot
		switch {
		case i < nCold:
			target = api.TierCold
		case i < nCold+nWarm:
			target = api.TierWarm
		}
		g.Go(func() error { return w.seed(gctx, i, col, target) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Workload) seed(ctx context.Context, i int, col *collection, target api.Tier) error {
	cfg := w.cfg
	req := api.CreateCollectionRequest{Name: col.name, Dimension: cfg.Dimension, Metric: cfg.Metric}
	if _, err := w.c.CreateCollection(ctx, req); client.CodeOf(err) == api.CodeAlreadyExists {
		if err := w.c.DeleteCollection(ctx, col.name); err != nil {
			return fmt.Errorf("workload: replace %s: %w", col.name, err)
		}
		if _, err := w.c.CreateCollection(ctx, req); err != nil {
			return fmt.Errorf("workload: create %s: %w", col.name, err)
		}
	} else if err != nil {
		return fmt.Errorf("workload: create %s: %w", col.name, err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)<<32|0xc0ffee))
	const batch = 500
	for start := 0; start < cfg.Vectors; start += batch {
		n := min(batch, cfg.Vectors-start)
		vs := make([]api.Vector, n)
		for j := range vs {
			vs[j] = api.Vector{ID: vectorID(start + j), Values: randomVector(rng, cfg.Dimension)}
		}
		if _, err := w.c.Insert(ctx, col.name, vs); err != nil {
			return fmt.Errorf("workload: seed %s: %w", col.name, err)
		}
	}
	col.tier.Store(api.TierHot)
	if target != api.TierHot {
		got, err := w.c.SetTier(ctx, col.name, target)
		if err != nil {
			return fmt.Errorf("workload: demote %s to %s: %w", col.name, target, err)
		}
		col.tier.Store(got.Tier)
	}
	return nil
}

// Collections returns the collection names.
func (w *Workload) Collections() []string {
	names := make([]string, len(w.colls))
	for i, c := range w.colls {
		names[i] = c.name
	}
	return names
}

// String describes the prepared workload for the run's log: its
// collections per tier.
func (w *Workload) String() string { return fmt.Sprintf("collections per tier %v", w.Tiers()) }

// Tiers counts the collections per tier as last reported by tierd.
func (w *Workload) Tiers() map[api.Tier]int {
	m := map[api.Tier]int{}
	for _, c := range w.colls {
		if t, ok := c.tier.Load().(api.Tier); ok {
			m[t]++
		}
	}
	return m
}

// Ops returns the operations with a positive weight in the mix, in a
// fixed order.
func (w *Workload) Ops() []load.Op {
	all := []load.Op{
		{Name: OpSearch, Weight: w.cfg.Mix[OpSearch], Do: w.search},
		{Name: OpInsert, Weight: w.cfg.Mix[OpInsert], Do: w.insert},
		{Name: OpTier, Weight: w.cfg.Mix[OpTier], Do: w.setTier},
	}
	var ops []load.Op
	for _, op := range all {
		if op.Weight > 0 {
			ops = append(ops, op)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Weight > ops[j].Weight })
	return ops
}

// Cleanup deletes the workload's collections.
func (w *Workload) Cleanup(ctx context.Context) error {
	var errs []error
	for _, c := range w.colls {
		if err := w.c.DeleteCollection(ctx, c.name); err != nil && client.CodeOf(err) != api.CodeNotFound {
			errs = append(errs, fmt.Errorf("workload: delete %s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

// rng returns the random source of request seq.
func (w *Workload) rng(seq uint64) *rand.Rand {
	return rand.New(rand.NewPCG(w.cfg.Seed^0x5eed, seq))
}

func (w *Workload) search(ctx context.Context, seq uint64) error {
	r := w.rng(seq)
	col := w.colls[r.IntN(len(w.colls))]
	_, err := w.c.Search(ctx, col.name, randomVector(r, w.cfg.Dimension), w.cfg.K)
	if err == nil {
		col.tier.Store(api.TierHot) // a search promotes transparently
	}
	return coded(err)
}

func (w *Workload) insert(ctx context.Context, seq uint64) error {
	r := w.rng(seq)
	col := w.colls[r.IntN(len(w.colls))]
	vs := make([]api.Vector, w.cfg.InsertBatch)
	for i := range vs {
		vs[i] = api.Vector{ID: vectorID(r.IntN(w.cfg.Vectors)), Values: randomVector(r, w.cfg.Dimension)}
	}
	_, err := w.c.Insert(ctx, col.name, vs)
	if err == nil {
		col.tier.Store(api.TierHot)
	}
	return coded(err)
}

// setTier moves a collection that has no tier request of ours in flight
// to another tier: from hot down to warm or cold, from warm to cold or
// back to hot, from cold up to warm or hot. A request that meets a running
// transition is retried with exponential backoff; its latency includes
// the waits.
func (w *Workload) setTier(ctx context.Context, seq uint64) error {
	r := w.rng(seq)
	start := r.IntN(len(w.colls))
	col := w.acquire(ctx, start)
	if col == nil {
		return ctx.Err()
	}
	defer func() { <-col.transitioning }()
	cur, _ := col.tier.Load().(api.Tier)
	var choices []api.Tier
	switch cur {
	case api.TierWarm:
		choices = []api.Tier{api.TierCold, api.TierHot}
	case api.TierCold:
		choices = []api.Tier{api.TierWarm, api.TierHot}
	default:
		choices = []api.Tier{api.TierWarm, api.TierCold}
	}
	target := choices[r.IntN(len(choices))]
	for attempt := 1; ; attempt++ {
		got, err := w.c.SetTier(ctx, col.name, target)
		if err == nil {
			col.tier.Store(got.Tier)
			return nil
		}
		// 409 transition_in_progress means another transition of this
		// collection (e.g. a search's transparent promotion) is running:
		// a tier controller waits and retries, as tierd's docs advise.
		if client.CodeOf(err) != api.CodeTransitionInProgress || attempt == tierRetries {
			return coded(err)
		}
		t := time.NewTimer(tierBackoff << (attempt - 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return coded(err)
		}
	}
}

// A tier request that meets a running transition is retried up to
// tierRetries times, tierBackoff, 2×, 4×, ... apart (≈1.3 s in all).
const (
	tierRetries = 8
	tierBackoff = 10 * time.Millisecond
)

// acquire takes the tier-request slot of the first free collection from
// start on; when every collection has one of our tier requests in flight
// it waits for the one at start. It returns nil if ctx ends first.
func (w *Workload) acquire(ctx context.Context, start int) *collection {
	for i := range w.colls {
		c := w.colls[(start+i)%len(w.colls)]
		select {
		case c.transitioning <- struct{}{}:
			return c
		default:
		}
	}
	c := w.colls[start]
	select {
	case c.transitioning <- struct{}{}:
		return c
	case <-ctx.Done():
		return nil
	}
}

// coded gives tierd's error code to the driver's error accounting, the
// same over both APIs; an answer without one counts under its HTTP status
// (http_<status>) or its gRPC status (grpc_<status>; a deadline as
// timeout, as over HTTP).
func coded(err error) error {
	if err == nil {
		return nil
	}
	if code := client.CodeOf(err); code != "" {
		return load.WithCode(code, err)
	}
	var e *client.Error
	if errors.As(err, &e) {
		return &load.StatusError{Status: e.StatusCode}
	}
	var ge *grpcclient.Error
	if errors.As(err, &ge) {
		return fmt.Errorf("%w: %w", &load.GRPCStatusError{Status: ge.Status}, err)
	}
	return err
}

func vectorID(i int) string { return "v" + strconv.Itoa(i) }

func randomVector(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	// Cosine rejects a zero query; make sure there is none.
	v[0] += 1e-3
	return v
}
