package netfault

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	tpserver "github.com/Shopify/toxiproxy/v2"
	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture is an in-process Toxiproxy with one proxy in front of an HTTP
// server that answers "ok".
type fixture struct {
	client *toxiproxy.Client
	api    *toxiproxy.Proxy
	proxy  *Proxy
	url    string // through the proxy
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := tpserver.NewServer(tpserver.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api := httptest.NewServer(srv.Routes())
	t.Cleanup(api.Close)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	c := toxiproxy.NewClient(api.URL)
	tp, err := c.CreateProxy("test", "127.0.0.1:0", up.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tp.Delete() })
	p, err := New(tp)
	require.NoError(t, err)
	return &fixture{client: c, api: tp, proxy: p, url: "http://" + tp.Listen + "/"}
}

func (f *fixture) toxics(t *testing.T) toxiproxy.Toxics {
	t.Helper()
	ts, err := f.proxy.Toxics(t.Context())
	require.NoError(t, err)
	return ts
}

func (f *fixture) enabled(t *testing.T) bool {
	t.Helper()
	p, err := f.client.Proxy(f.api.Name)
	require.NoError(t, err)
	return p.Enabled
}

// get sends one request and reports whether it ran on a reused
// connection.
func get(t *testing.T, hc *http.Client, url string) (reused bool, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	if err != nil {
		return reused, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return reused, err
}

func TestNewRejectsNil(t *testing.T) {
	_, err := New(nil)
	require.ErrorIs(t, err, ErrInvalid)
	var ne *Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, CodeNilProxy, ne.Code)
}

func TestApplyAddsUniquelyNamedToxicsAndRemoveTakesThemAway(t *testing.T) {
	f := newFixture(t)
	all := []Toxic{
		Latency(100 * time.Millisecond).Jitter(10 * time.Millisecond),
		Bandwidth(64).Upstream(),
		Timeout(0).Toxicity(0.5),
		ResetPeer(5 * time.Millisecond),
		LimitData(10),
		SlowClose(time.Millisecond),
		Slicer(10, 1, 3*time.Microsecond),
	}
	a, err := f.proxy.Apply(t.Context(), all...)
	require.NoError(t, err)
	b, err := f.proxy.Apply(t.Context(), all[0])
	require.NoError(t, err)
	require.Len(t, a.Names(), len(all))
	require.NotContains(t, a.Names(), b.Names()[0])

	byName := map[string]toxiproxy.Toxic{}
	for _, tx := range f.toxics(t) {
		byName[tx.Name] = tx
	}
	require.Len(t, byName, len(all)+1)
	for i, name := range a.Names() {
		got, ok := byName[name]
		require.True(t, ok, "toxic %s not on the proxy", name)
		want := all[i].spec()
		assert.Equal(t, want.typ, got.Type)
		assert.Equal(t, string(want.stream), got.Stream)
		assert.Equal(t, want.toxicity, got.Toxicity)
		for k, v := range want.attrs {
			assert.EqualValues(t, v, got.Attributes[k], "%s attribute %s", name, k)
		}
	}

	require.NoError(t, a.Remove(t.Context()))
	ts := f.toxics(t)
	require.Len(t, ts, 1, "Remove must take away exactly its own toxics")
	assert.Equal(t, b.Names()[0], ts[0].Name)
	require.NoError(t, a.Remove(t.Context()), "a second Remove is a no-op")
	require.NoError(t, b.Remove(t.Context()))
	assert.Empty(t, f.toxics(t))
}

// badToxic is accepted by validation but refused by Toxiproxy.
type badToxic struct{ LatencyToxic }

func (badToxic) Type() string { return "no_such_toxic" }
func (t badToxic) spec() spec {
	s := t.LatencyToxic.spec()
	s.typ = t.Type()
	return s
}

func TestApplyLeavesNothingOnFailure(t *testing.T) {
	f := newFixture(t)
	t.Run("invalid toxic", func(t *testing.T) {
		_, err := f.proxy.Apply(t.Context(), Latency(time.Second), Bandwidth(0))
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("no toxics", func(t *testing.T) {
		_, err := f.proxy.Apply(t.Context())
		var ne *Error
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, CodeNoToxics, ne.Code)
	})
	t.Run("nil toxic", func(t *testing.T) {
		_, err := f.proxy.Apply(t.Context(), Latency(time.Second), nil)
		var ne *Error
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, CodeNilToxic, ne.Code)
	})
	t.Run("toxiproxy refuses the second toxic", func(t *testing.T) {
		_, err := f.proxy.Apply(t.Context(), Latency(time.Second), badToxic{Latency(time.Second)})
		require.ErrorIs(t, err, ErrToxiproxy)
		var ae *toxiproxy.ApiError
		require.ErrorAs(t, err, &ae, "the Toxiproxy error is kept as the cause")
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.proxy.Apply(ctx, Latency(time.Second))
		require.ErrorIs(t, err, context.Canceled)
	})
	assert.Empty(t, f.toxics(t))
	assert.True(t, f.enabled(t))
}

func TestApplyDropsKeepAliveConnectionsUnlessKeeping(t *testing.T) {
	f := newFixture(t)
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	_, err := get(t, hc, f.url)
	require.NoError(t, err)
	reused, err := get(t, hc, f.url)
	require.NoError(t, err)
	require.True(t, reused, "no keep-alive connection to start from")

	fa, err := f.proxy.Apply(t.Context(), Latency(time.Millisecond))
	require.NoError(t, err)
	reused, err = get(t, hc, f.url)
	require.NoError(t, err)
	assert.False(t, reused, "Apply must drop the existing connection")
	require.NoError(t, fa.Remove(t.Context()))

	reused, err = get(t, hc, f.url)
	require.NoError(t, err)
	require.True(t, reused)
	fk, err := f.proxy.KeepingConnections().Apply(t.Context(), Latency(time.Millisecond))
	require.NoError(t, err)
	reused, err = get(t, hc, f.url)
	require.NoError(t, err)
	assert.True(t, reused, "KeepingConnections must leave the connection alone")
	require.NoError(t, fk.Remove(t.Context()))
	assert.True(t, f.enabled(t))
}

func TestDownIsCountedAndClearResets(t *testing.T) {
	f := newFixture(t)
	d1, err := f.proxy.Down(t.Context())
	require.NoError(t, err)
	d2, err := f.proxy.Down(t.Context())
	require.NoError(t, err)
	assert.False(t, f.enabled(t))

	// Apply while down keeps the proxy down.
	lat, err := f.proxy.Apply(t.Context(), Latency(time.Millisecond))
	require.NoError(t, err)
	assert.False(t, f.enabled(t))

	require.NoError(t, d1.Remove(t.Context()))
	assert.False(t, f.enabled(t), "still down: d2 is outstanding")
	require.NoError(t, d1.Remove(t.Context()))
	assert.False(t, f.enabled(t), "removing d1 twice must not count twice")
	require.NoError(t, d2.Remove(t.Context()))
	assert.True(t, f.enabled(t))

	d3, err := f.proxy.Down(t.Context())
	require.NoError(t, err)
	require.NoError(t, f.proxy.Clear(t.Context()))
	assert.True(t, f.enabled(t))
	assert.Empty(t, f.toxics(t))

	// Faults from before Clear are no-ops to remove, even with a new Down
	// outstanding.
	d4, err := f.proxy.Down(t.Context())
	require.NoError(t, err)
	require.NoError(t, d3.Remove(t.Context()))
	require.NoError(t, lat.Remove(t.Context()))
	assert.False(t, f.enabled(t), "an old Down must not lift a new one")
	require.NoError(t, d4.Remove(t.Context()))
	assert.True(t, f.enabled(t))
}

func TestDuringRemovesAfterTheWindowAndOnCancel(t *testing.T) {
	f := newFixture(t)
	err := f.proxy.During(t.Context(), 0, Latency(time.Millisecond))
	var ne *Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, CodeNonPositiveWindow, ne.Code)

	done := make(chan error, 1)
	go func() { done <- f.proxy.During(t.Context(), 50*time.Millisecond, Latency(time.Millisecond)) }()
	require.NoError(t, <-done)
	assert.Empty(t, f.toxics(t))

	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- f.proxy.During(ctx, time.Hour, Latency(time.Millisecond)) }()
	require.Eventually(t, func() bool {
		ts, err := f.proxy.Toxics(t.Context())
		return err == nil && len(ts) == 1
	}, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Empty(t, f.toxics(t))

	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- f.proxy.DownDuring(ctx, time.Hour) }()
	// Probe through the proxy rather than asking Toxiproxy's API: its
	// proxy listing reads the enabled flag without a lock (a data race
	// inside Toxiproxy while the proxy is being disabled).
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	require.Eventually(t, func() bool {
		_, err := get(t, hc, f.url)
		return err != nil
	}, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.True(t, f.enabled(t))
}

func TestTestHelpersRemoveAtCleanup(t *testing.T) {
	f := newFixture(t)
	t.Run("inner", func(t *testing.T) {
		f.proxy.ApplyT(t, Latency(time.Millisecond), Timeout(0))
		f.proxy.DownT(t)
		require.Len(t, f.toxics(t), 2)
		require.False(t, f.enabled(t))
	})
	assert.Empty(t, f.toxics(t))
	assert.True(t, f.enabled(t))
}

func TestConcurrentFaultsOnOneProxy(t *testing.T) {
	f := newFixture(t)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			fault, err := f.proxy.Apply(t.Context(), Latency(time.Millisecond), Bandwidth(100).Upstream())
			if err == nil {
				err = fault.Remove(t.Context())
			}
			errs <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
	assert.Empty(t, f.toxics(t))
	assert.True(t, f.enabled(t))
}

func TestErrorMatching(t *testing.T) {
	e := apiErr(errors.New("boom"), "add %s", "x")
	assert.ErrorIs(t, e, ErrToxiproxy)
	assert.NotErrorIs(t, e, ErrInvalid)
	assert.Contains(t, e.Error(), "boom")
}
