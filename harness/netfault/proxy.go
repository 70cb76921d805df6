package netfault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// cleanupTimeout bounds the removal a test helper registers with t.Cleanup
// and the removal at the end of During (which must run after the caller's
// context is gone).
const cleanupTimeout = 30 * time.Second

// Proxy applies faults to one Toxiproxy proxy. It is safe for concurrent
// use; faults applied through it (and through the views KeepingConnections
// returns) are serialized and tracked together.
//
// By default Apply drops the proxy's existing connections right after
// adding the toxics (see ResetConnections), so that a keep-alive client's
// next request runs through a new connection that carries every toxic from
// its first byte. KeepingConnections returns a view that does not.
type Proxy struct {
	st   *proxyState
	keep bool
}

// proxyState is what the views of one Proxy share.
type proxyState struct {
	mu  sync.Mutex
	log *slog.Logger
	// api and saver are private copies of the caller's *toxiproxy.Proxy:
	// Enable and Disable rewrite the struct they are called on, and the
	// caller's may be shared. api is never written after New (the toxic
	// calls and Name only read it); saver is used for Enable and Disable,
	// under mu.
	api, saver toxiproxy.Proxy
	// downs counts the Down faults not yet removed in generation gen; the
	// proxy is enabled again when it drops to zero. Clear starts a new
	// generation, after which older Down faults are no-ops to remove.
	downs int
	gen   uint64
}

// Option configures New.
type Option func(*proxyState)

// WithLogger sends the package's log lines (debug level: faults applied
// and removed) to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *proxyState) { s.log = l } }

// New wraps p. It copies p, so later changes to p (or its being shared)
// do not affect the returned Proxy; the copy's listen and upstream
// addresses are sent back to Toxiproxy when the proxy is disabled and
// enabled, so do not change them behind its back.
func New(p *toxiproxy.Proxy, opts ...Option) (*Proxy, error) {
	if p == nil {
		return nil, invalid(CodeNilProxy, "", "", "New needs a *toxiproxy.Proxy, got nil")
	}
	st := &proxyState{api: *p, saver: *p, log: slog.Default()}
	for _, o := range opts {
		o(st)
	}
	return &Proxy{st: st}, nil
}

// Name is the Toxiproxy proxy's name.
func (p *Proxy) Name() string { return p.st.api.Name }

// KeepingConnections returns a view of p whose Apply and During leave
// existing connections alone. Toxiproxy then adds the toxics to the live
// connections itself, which it does unreliably (a reset_peer added to a
// live connection closes it with FIN instead of RST, for one); use this
// only to study exactly that, or when the brief refusal of new connections
// during the reset must not happen.
func (p *Proxy) KeepingConnections() *Proxy { return &Proxy{st: p.st, keep: true} }

// Fault is one applied fault: the toxics one Apply added, or one Down.
// Remove undoes exactly that and nothing else.
type Fault struct {
	st    *proxyState
	desc  string
	names []string // toxic names; empty for Down
	down  bool
	gen   uint64

	mu      sync.Mutex
	removed bool
}

// Names are the unique Toxiproxy names of the fault's toxics (none for
// Down).
func (f *Fault) Names() []string { return append([]string(nil), f.names...) }

// String describes the fault.
func (f *Fault) String() string { return f.desc }

// Apply validates the toxics, adds them to the proxy under unique names
// and, unless p is a KeepingConnections view or the proxy is down, drops
// the proxy's existing connections so the fault is in effect for every
// request that follows. On error nothing of it is left applied. ctx is
// checked before each Toxiproxy call (a call itself is bounded by the
// Toxiproxy client's own timeout).
func (p *Proxy) Apply(ctx context.Context, toxics ...Toxic) (*Fault, error) {
	specs, descs, err := validate(toxics)
	if err != nil {
		return nil, err
	}
	id, err := faultID()
	if err != nil {
		return nil, err
	}
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	f := &Fault{st: st, desc: strings.Join(descs, ", "), gen: st.gen}
	for i, s := range specs {
		name := fmt.Sprintf("nf-%s-%d-%s-%s", id, i, s.typ, s.stream)
		err := ctx.Err()
		if err == nil {
			_, err = st.api.AddToxic(name, s.typ, string(s.stream), s.toxicity, s.attrs)
			if err != nil {
				err = apiErr(err, "add %s (%s) to proxy %s", name, descs[i], st.api.Name)
			}
		}
		if err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			return nil, errors.Join(err, st.removeToxics(rctx, f.names))
		}
		f.names = append(f.names, name)
	}
	if !p.keep && st.downs == 0 {
		if err := st.bounce(ctx); err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			return nil, errors.Join(err, st.removeToxics(rctx, f.names), st.setEnabled(rctx, true))
		}
	}
	st.log.Debug("netfault: applied", "proxy", st.api.Name, "fault", f.desc, "toxics", f.names, "reset_connections", !p.keep && st.downs == 0)
	return f, nil
}

// Down disables the proxy: it closes every connection through it and
// accepts no new ones until the returned fault is removed (with several
// Down faults outstanding, until the last is removed) or Clear is called.
func (p *Proxy) Down(ctx context.Context) (*Fault, error) {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.downs == 0 {
		if err := st.setEnabled(ctx, false); err != nil {
			return nil, err
		}
	}
	st.downs++
	st.log.Debug("netfault: applied", "proxy", st.api.Name, "fault", "down", "downs", st.downs)
	return &Fault{st: st, desc: "down", down: true, gen: st.gen}, nil
}

// Remove undoes the fault: it removes its toxics (ones already gone, e.g.
// after Clear, count as removed) or, for Down, enables the proxy again
// once no other Down fault is outstanding. Existing connections are left
// alone. Removing a fault twice is a no-op; a failed Remove may be retried.
func (f *Fault) Remove(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.removed {
		return nil
	}
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if f.down {
		if f.gen == st.gen && st.downs > 0 {
			if st.downs == 1 {
				if err := st.setEnabled(ctx, true); err != nil {
					return err
				}
			}
			st.downs--
		}
	} else if err := st.removeToxics(ctx, f.names); err != nil {
		return err
	}
	f.removed = true
	st.log.Debug("netfault: removed", "proxy", st.api.Name, "fault", f.desc, "toxics", f.names)
	return nil
}

// Clear removes every toxic on the proxy (this package's or anyone's) and
// enables it. Faults outstanding before Clear become no-ops to remove.
func (p *Proxy) Clear(ctx context.Context) error {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	active, err := st.api.Toxics()
	if err != nil {
		return apiErr(err, "list toxics of proxy %s", st.api.Name)
	}
	names := make([]string, 0, len(active))
	for _, t := range active {
		names = append(names, t.Name)
	}
	if err := st.removeToxics(ctx, names); err != nil {
		return err
	}
	if err := st.setEnabled(ctx, true); err != nil {
		return err
	}
	st.downs = 0
	st.gen++
	st.log.Debug("netfault: cleared", "proxy", st.api.Name, "toxics", names)
	return nil
}

// ResetConnections drops every existing connection through the proxy by
// disabling and enabling it (new connections are refused for the moment in
// between). It does nothing while the proxy is down.
func (p *Proxy) ResetConnections(ctx context.Context) error {
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.downs > 0 {
		return nil
	}
	return st.bounce(ctx)
}

// Toxics lists the toxics active on the proxy, as Toxiproxy reports them.
func (p *Proxy) Toxics(ctx context.Context) (toxiproxy.Toxics, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ts, err := p.st.api.Toxics()
	if err != nil {
		return nil, apiErr(err, "list toxics of proxy %s", p.st.api.Name)
	}
	return ts, nil
}

// During applies the toxics, waits for window (while the caller's load
// runs), and removes them again, also when ctx ends first; it returns
// ctx's error in that case, joined with any error of the removal.
func (p *Proxy) During(ctx context.Context, window time.Duration, toxics ...Toxic) error {
	if window <= 0 {
		return invalid(CodeNonPositiveWindow, "", "window", "must be above zero, got %v", window)
	}
	f, err := p.Apply(ctx, toxics...)
	if err != nil {
		return err
	}
	return hold(ctx, window, f)
}

// DownDuring takes the proxy down for window, like During.
func (p *Proxy) DownDuring(ctx context.Context, window time.Duration) error {
	if window <= 0 {
		return invalid(CodeNonPositiveWindow, "", "window", "must be above zero, got %v", window)
	}
	f, err := p.Down(ctx)
	if err != nil {
		return err
	}
	return hold(ctx, window, f)
}

func hold(ctx context.Context, window time.Duration, f *Fault) error {
	timer := time.NewTimer(window)
	defer timer.Stop()
	var cerr error
	select {
	case <-timer.C:
	case <-ctx.Done():
		cerr = fmt.Errorf("netfault: %s cut short: %w", f, ctx.Err())
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return errors.Join(cerr, f.Remove(rctx))
}

// ApplyT is Apply for tests: it fails t at once on error and registers the
// fault's removal with t.Cleanup, so the fault is gone at the end of the
// test whether it passed, failed or panicked.
func (p *Proxy) ApplyT(t testing.TB, toxics ...Toxic) *Fault {
	t.Helper()
	f, err := p.Apply(t.Context(), toxics...)
	if err != nil {
		t.Fatalf("netfault: apply: %v", err)
	}
	removeAtCleanup(t, f)
	return f
}

// DownT is Down for tests, with removal registered like ApplyT.
func (p *Proxy) DownT(t testing.TB) *Fault {
	t.Helper()
	f, err := p.Down(t.Context())
	if err != nil {
		t.Fatalf("netfault: down: %v", err)
	}
	removeAtCleanup(t, f)
	return f
}

func removeAtCleanup(t testing.TB, f *Fault) {
	t.Cleanup(func() {
		// t.Context is already done when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := f.Remove(ctx); err != nil {
			t.Errorf("netfault: remove %s at cleanup: %v", f, err)
		}
	})
}

func validate(toxics []Toxic) ([]spec, []string, error) {
	if len(toxics) == 0 {
		return nil, nil, invalid(CodeNoToxics, "", "", "no toxics given")
	}
	specs := make([]spec, len(toxics))
	descs := make([]string, len(toxics))
	for i, t := range toxics {
		if t == nil {
			return nil, nil, invalid(CodeNilToxic, "", "", "toxic %d is nil", i)
		}
		if err := t.Validate(); err != nil {
			return nil, nil, err
		}
		specs[i], descs[i] = t.spec(), t.String()
	}
	return specs, descs, nil
}

// faultID is a random tag that makes a fault's toxic names unique among
// all faults on the proxy, whichever Proxy value or process applied them.
func faultID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("netfault: fault id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// setEnabled, bounce and removeToxics are called with st.mu held.

// removeToxics removes the named toxics, counting a toxic Toxiproxy does
// not know as removed, and keeps going after a failure.
func (st *proxyState) removeToxics(ctx context.Context, names []string) error {
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("netfault: remove %s: %w", name, err))
			continue
		}
		err := st.api.RemoveToxic(name)
		var ae *toxiproxy.ApiError
		if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusNotFound) {
			errs = append(errs, apiErr(err, "remove %s from proxy %s", name, st.api.Name))
		}
	}
	return errors.Join(errs...)
}

func (st *proxyState) setEnabled(ctx context.Context, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if on {
		err = st.saver.Enable()
	} else {
		err = st.saver.Disable()
	}
	if err != nil {
		return apiErr(err, "set proxy %s enabled=%v", st.api.Name, on)
	}
	return nil
}

// bounce disables and enables the proxy, which closes all its connections.
func (st *proxyState) bounce(ctx context.Context) error {
	if err := st.setEnabled(ctx, false); err != nil {
		return err
	}
	// Enable even if ctx ended in between: never leave the proxy down.
	return st.setEnabled(context.WithoutCancel(ctx), true)
}
