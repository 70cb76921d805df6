// Package kvload is the example key-value store's workload for the load
// driver: a load.System over kvclient that seeds a key space and mixes
// gets, puts and compare-and-sets. It is the proof that the runner
// (load/runner) drives a service it knows nothing about; tierd's
// workload (load/workload) is built the same way.
package kvload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tierchaos/tierchaos/examples/kvstore/kvclient"
	"github.com/tierchaos/tierchaos/load"
)

// Operation names.
const (
	OpGet = "get"
	OpPut = "put"
	OpCAS = "cas"
)

// CodeNotFound is the code a get of a missing key counts under.
const CodeNotFound = "not_found"

// ErrConfig is returned (wrapped) for an invalid configuration.
var ErrConfig = errors.New("kvload: invalid config")

// Config is the workload: Keys keys named Prefix-0..Prefix-(Keys-1),
// seeded before the run, and the weights of the operations.
type Config struct {
	Seed   uint64
	Prefix string // default "load"
	Keys   int    // default 64
	// Get, Put and CAS are the operations' weights (default 70/20/10).
	Get, Put, CAS float64
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "load"
	}
	if c.Keys == 0 {
		c.Keys = 64
	}
	if c.Get == 0 && c.Put == 0 && c.CAS == 0 {
		c.Get, c.Put, c.CAS = 70, 20, 10
	}
	return c
}

// Validate reports a bad configuration as an error wrapping ErrConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Keys < 1:
		return fmt.Errorf("%w: %d keys: want at least 1", ErrConfig, c.Keys)
	case c.Get < 0 || c.Put < 0 || c.CAS < 0:
		return fmt.Errorf("%w: negative weight in get=%g put=%g cas=%g", ErrConfig, c.Get, c.Put, c.CAS)
	}
	return nil
}

// System is the store at one URL with the workload's configuration.
type System struct {
	url string
	c   *kvclient.Client
	cfg Config
}

// New returns the store at url as a load.System; its client keeps up to
// 64 idle connections and gives a request at most timeout (default 10 s).
func New(url string, cfg Config, timeout time.Duration) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 64, 64
	hc := &http.Client{Transport: tr, Timeout: timeout}
	return &System{url: url, c: kvclient.New(url, hc), cfg: cfg.withDefaults()}, nil
}

// Where is the store's URL.
func (s *System) Where() string { return s.url }

// API is "http": the store has one API.
func (s *System) API() string { return "http" }

// Ready gets a key: any answer but a transport error means the store
// serves.
func (s *System) Ready(ctx context.Context) error {
	_, err := s.c.Get(ctx, s.cfg.Prefix+"-ready")
	var e *kvclient.Error
	if err == nil || errors.Is(err, kvclient.ErrNotFound) || errors.As(err, &e) {
		return nil
	}
	return err
}

// Setup puts every key's first value ("0").
func (s *System) Setup(ctx context.Context) (load.Workload, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range s.cfg.Keys {
		g.Go(func() error {
			if err := s.c.Put(gctx, s.key(i), "0"); err != nil {
				return fmt.Errorf("kvload: seed %s: %w", s.key(i), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return &workload{s: s}, nil
}

func (s *System) key(i int) string { return s.cfg.Prefix + "-" + strconv.Itoa(i) }

// workload is the seeded key space.
type workload struct{ s *System }

// String describes the workload for the run's log.
func (w *workload) String() string {
	return fmt.Sprintf("%d keys %s-*", w.s.cfg.Keys, w.s.cfg.Prefix)
}

// Ops returns get, put and cas with their weights (those above zero).
func (w *workload) Ops() []load.Op {
	cfg := w.s.cfg
	all := []load.Op{
		{Name: OpGet, Weight: cfg.Get, Do: w.get},
		{Name: OpPut, Weight: cfg.Put, Do: w.put},
		{Name: OpCAS, Weight: cfg.CAS, Do: w.cas},
	}
	var ops []load.Op
	for _, op := range all {
		if op.Weight > 0 {
			ops = append(ops, op)
		}
	}
	return ops
}

// Cleanup deletes every key.
func (w *workload) Cleanup(ctx context.Context) error {
	var errs []error
	for i := range w.s.cfg.Keys {
		if err := w.s.c.Delete(ctx, w.s.key(i)); err != nil && !errors.Is(err, kvclient.ErrNotFound) {
			errs = append(errs, fmt.Errorf("kvload: delete %s: %w", w.s.key(i), err))
		}
	}
	return errors.Join(errs...)
}

// rng is request seq's random source: a run is reproducible from its seed.
func (w *workload) rng(seq uint64) *rand.Rand {
	return rand.New(rand.NewPCG(w.s.cfg.Seed^0x6b76, seq))
}

func (w *workload) get(ctx context.Context, seq uint64) error {
	r := w.rng(seq)
	_, err := w.s.c.Get(ctx, w.s.key(r.IntN(w.s.cfg.Keys)))
	return coded(err)
}

func (w *workload) put(ctx context.Context, seq uint64) error {
	r := w.rng(seq)
	return coded(w.s.c.Put(ctx, w.s.key(r.IntN(w.s.cfg.Keys)), strconv.FormatUint(seq, 10)))
}

// cas sets a key from the value a get just read: a write between the
// two makes it fail as a conflict, which is an answer, not an error.
func (w *workload) cas(ctx context.Context, seq uint64) error {
	r := w.rng(seq)
	key := w.s.key(r.IntN(w.s.cfg.Keys))
	v, err := w.s.c.Get(ctx, key)
	if err != nil {
		return coded(err)
	}
	_, err = w.s.c.CompareAndSet(ctx, key, v, strconv.FormatUint(seq, 10))
	return coded(err)
}

// coded gives the store's errors their stable code for the report.
func coded(err error) error {
	var e *kvclient.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kvclient.ErrNotFound):
		return load.WithCode(CodeNotFound, err)
	case errors.As(err, &e) && e.Code != "":
		return load.WithCode(e.Code, err)
	}
	return err
}
