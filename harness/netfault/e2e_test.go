//go:build e2e

package netfault_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/netfault"
	"github.com/tierchaos/tierchaos/harness/tierd"
)

// Each test observes a fault at a host-side client whose traffic runs
// through the stack's S3 proxy, then its removal. Timing assertions are
// lower bounds the fault causes (with a 5% margin); removal is shown by the
// fastest of three requests falling below that bound again.

func TestLatencyWithJitter(t *testing.T) {
	const latency, jitter = 300 * time.Millisecond, 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		toxic netfault.Toxic
	}{
		{"downstream", netfault.Latency(latency).Jitter(jitter)},
		{"upstream", netfault.Latency(latency).Jitter(jitter).Upstream()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			base := e.fastest(3, func() result { return e.health(e.hc, 10*time.Second) })
			f := e.proxy.ApplyT(t, tc.toxic)
			lo, hi := time.Duration(1<<63-1), time.Duration(0)
			for range 8 {
				d := e.ok(e.health(e.hc, 10*time.Second)).elapsed
				atLeast(t, d, latency-jitter, "a request under "+tc.toxic.String())
				lo, hi = min(lo, d), max(hi, d)
			}
			// Without jitter the spread is a few ms; with ±100 ms drawn
			// uniformly, 8 draws spread less than 20 ms with p < 1e-6.
			assert.GreaterOrEqual(t, hi-lo, 20*time.Millisecond, "no jitter seen: 8 delays within [%v, %v]", lo, hi)
			require.NoError(t, f.Remove(t.Context()))
			e.noToxics(f.Names()...)
			after := e.fastest(3, func() result { return e.health(e.hc, 10*time.Second) })
			assert.Less(t, after, latency-jitter, "latency still there after removal")
			t.Logf("%s: baseline %v, under fault %v..%v, after removal %v", tc.toxic, base, lo, hi, after)
		})
	}
}

func TestBandwidth(t *testing.T) {
	const size, rate = 64 << 10, 64 // 64 KiB at 64 KB/s: about 1 s
	want := time.Duration(size) * time.Millisecond / rate * 7 / 10
	t.Run("downstream", func(t *testing.T) {
		e := newEnv(t)
		key, data := e.object("obj", size)
		get := func() result {
			start := time.Now()
			obj, err := e.s3.GetObject(t.Context(), tierd.Bucket, key, minio.GetObjectOptions{})
			require.NoError(t, err)
			defer obj.Close()
			buf := make([]byte, 0, size)
			n, err := readAll(obj, &buf)
			if err == nil {
				require.Equal(t, data, buf)
			}
			return result{elapsed: time.Since(start), status: http.StatusOK, n: n, err: err}
		}
		base := e.fastest(3, get)
		f := e.proxy.ApplyT(t, netfault.Bandwidth(rate))
		slow := e.ok(get()).elapsed
		atLeast(t, slow, want, "a 64 KiB GetObject at 64 KB/s")
		require.NoError(t, f.Remove(t.Context()))
		after := e.fastest(3, get)
		assert.Less(t, after, want, "bandwidth limit still there after removal")
		t.Logf("bandwidth 64KB/s downstream, GetObject 64 KiB: baseline %v, under fault %v, after removal %v", base, slow, after)
	})
	t.Run("upstream", func(t *testing.T) {
		e := newEnv(t)
		key, data := e.object("obj", size)
		put := func() result { return e.do(e.hc, http.MethodPut, e.putURL(key), data, 30*time.Second) }
		base := e.fastest(3, put)
		f := e.proxy.ApplyT(t, netfault.Bandwidth(rate).Upstream())
		slow := e.ok(put()).elapsed
		atLeast(t, slow, want, "a 64 KiB PUT at 64 KB/s")
		require.NoError(t, f.Remove(t.Context()))
		after := e.fastest(3, put)
		assert.Less(t, after, want, "bandwidth limit still there after removal")
		t.Logf("bandwidth 64KB/s upstream, PUT 64 KiB: baseline %v, under fault %v, after removal %v", base, slow, after)
	})
}

func TestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		toxic    netfault.Toxic
		deadline time.Duration // the client's
		class    errClass
		atLeast  time.Duration
	}{
		// Timeout 0: data stops and the connection stays open, so the
		// client's own deadline ends the request.
		{"forever/downstream", netfault.Timeout(0), time.Second, classTimeout, time.Second},
		{"forever/upstream", netfault.Timeout(0).Upstream(), time.Second, classTimeout, time.Second},
		// Timeout d: data stops and Toxiproxy closes the connection after d.
		{"300ms/downstream", netfault.Timeout(300 * time.Millisecond), 10 * time.Second, classClosed, 300 * time.Millisecond},
		{"300ms/upstream", netfault.Timeout(300 * time.Millisecond).Upstream(), 10 * time.Second, classClosed, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.proxy.ApplyT(t, tc.toxic)
			r := e.health(e.hc, tc.deadline)
			require.Error(t, r.err, "request under %s", tc.toxic)
			require.Equal(t, tc.class, classify(r.err), "error %v", r.err)
			atLeast(t, r.elapsed, tc.atLeast, "a request under "+tc.toxic.String())
			require.NoError(t, f.Remove(t.Context()))
			e.ok(e.health(e.hc, 10*time.Second))
			t.Logf("%s: failed after %v with %s (%v); fine after removal", tc.toxic, r.elapsed, classify(r.err), r.err)
		})
	}
}

func TestResetPeer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		toxic netfault.Toxic
		after time.Duration
	}{
		{"downstream", netfault.ResetPeer(0), 0},
		{"upstream", netfault.ResetPeer(0).Upstream(), 0},
		{"downstream/after 300ms", netfault.ResetPeer(300 * time.Millisecond), 300 * time.Millisecond},
		{"upstream/after 300ms", netfault.ResetPeer(300 * time.Millisecond).Upstream(), 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.proxy.ApplyT(t, tc.toxic)
			for range 3 {
				r := e.health(e.hc, 10*time.Second)
				require.Error(t, r.err, "request under %s", tc.toxic)
				// Through Docker's port proxy a reset reaches the client as
				// a reset or as EOF: both are "closed".
				require.Equal(t, classClosed, classify(r.err), "error %v", r.err)
				atLeast(t, r.elapsed, tc.after, "a request under "+tc.toxic.String())
				t.Logf("%s: failed after %v: %v", tc.toxic, r.elapsed, r.err)
			}
			require.NoError(t, f.Remove(t.Context()))
			e.ok(e.health(e.hc, 10*time.Second))
		})
	}
}

func TestLimitData(t *testing.T) {
	const size, limit = 64 << 10, 2000
	t.Run("downstream", func(t *testing.T) {
		e := newEnv(t)
		key, _ := e.object("obj", size)
		url := e.getURL(key)
		f := e.proxy.ApplyT(t, netfault.LimitData(limit))
		r := e.do(e.hc, http.MethodGet, url, nil, 10*time.Second)
		require.Error(t, r.err)
		require.Equal(t, classClosed, classify(r.err), "error %v", r.err)
		// The limit counts headers too, so the body is cut below it.
		require.Less(t, r.n, int64(limit))
		require.NoError(t, f.Remove(t.Context()))
		r2 := e.ok(e.do(e.hc, http.MethodGet, url, nil, 10*time.Second))
		require.EqualValues(t, size, r2.n)
		t.Logf("limit_data %dB downstream: got %d body bytes, then %v; after removal all %d", limit, r.n, r.err, r2.n)
	})
	t.Run("upstream", func(t *testing.T) {
		e := newEnv(t)
		key, data := e.object("obj", size)
		// A new key: the cut PUT must leave nothing behind.
		cutKey := key + "-cut"
		f := e.proxy.ApplyT(t, netfault.LimitData(limit).Upstream())
		_, cutErr := e.s3.PutObject(t.Context(), tierd.Bucket, cutKey, bytesReader(data), size, minio.PutObjectOptions{})
		require.Error(t, cutErr)
		require.Equal(t, classClosed, classify(cutErr), "error %v", cutErr)
		_, serr := stack.S3.StatObject(t.Context(), tierd.Bucket, cutKey, minio.StatObjectOptions{})
		require.Equal(t, "NoSuchKey", minio.ToErrorResponse(serr).Code, "the cut PUT stored an object: %v", serr)
		require.NoError(t, f.Remove(t.Context()))
		_, err := e.s3.PutObject(t.Context(), tierd.Bucket, cutKey, bytesReader(data), size, minio.PutObjectOptions{})
		require.NoError(t, err)
		info, err := stack.S3.StatObject(t.Context(), tierd.Bucket, cutKey, minio.StatObjectOptions{})
		require.NoError(t, err)
		require.EqualValues(t, size, info.Size)
		t.Logf("limit_data %dB upstream: PutObject failed with %v; after removal stored %d bytes", limit, cutErr, info.Size)
	})
}

func TestSlowClose(t *testing.T) {
	const delay = 500 * time.Millisecond
	for _, tc := range []struct {
		name  string
		toxic netfault.Toxic
		// connectionClose makes MinIO close after its answer (the close
		// travels downstream); halfClose makes the client close its side
		// first (the close travels upstream, and MinIO closes on seeing it).
		connectionClose, halfClose bool
	}{
		{"downstream", netfault.SlowClose(delay), true, false},
		{"upstream", netfault.SlowClose(delay).Upstream(), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			exchange := func() result {
				d, err := e.rawExchange(tc.connectionClose, tc.halfClose)
				return result{elapsed: d, status: http.StatusOK, err: err}
			}
			base := e.fastest(3, exchange)
			f := e.proxy.ApplyT(t, tc.toxic)
			slow := exchange().elapsed
			atLeast(t, slow, delay, "the close under "+tc.toxic.String())
			require.NoError(t, f.Remove(t.Context()))
			after := e.fastest(3, exchange)
			assert.Less(t, after, delay, "slow close still there after removal")
			t.Logf("%s: close seen after %v (baseline %v, after removal %v)", tc.toxic, slow, base, after)
		})
	}
}

func TestSlicer(t *testing.T) {
	const size, avg, variation, delay = 64 << 10, 500, 50, 5 * time.Millisecond
	// Each piece is at most avg+variation bytes and followed by a pause.
	want := time.Duration(size/(avg+variation)) * delay
	t.Run("downstream", func(t *testing.T) {
		e := newEnv(t)
		key, _ := e.object("obj", size)
		url := e.getURL(key)
		get := func() result { return e.do(e.hc, http.MethodGet, url, nil, 30*time.Second) }
		f := e.proxy.ApplyT(t, netfault.Slicer(avg, variation, delay))
		r := e.ok(get())
		require.EqualValues(t, size, r.n)
		atLeast(t, r.elapsed, want, "a sliced 64 KiB GET")
		require.NoError(t, f.Remove(t.Context()))
		after := e.fastest(3, get)
		assert.Less(t, after, want, "slicer still there after removal")
		t.Logf("slicer %d±%dB/%v downstream, GET 64 KiB: %v (bound %v), after removal %v", avg, variation, delay, r.elapsed, want, after)
	})
	t.Run("upstream", func(t *testing.T) {
		e := newEnv(t)
		key, data := e.object("obj", size)
		url := e.putURL(key)
		put := func() result { return e.do(e.hc, http.MethodPut, url, data, 30*time.Second) }
		f := e.proxy.ApplyT(t, netfault.Slicer(avg, variation, delay).Upstream())
		r := e.ok(put())
		atLeast(t, r.elapsed, want, "a sliced 64 KiB PUT")
		require.NoError(t, f.Remove(t.Context()))
		after := e.fastest(3, put)
		assert.Less(t, after, want, "slicer still there after removal")
		t.Logf("slicer %d±%dB/%v upstream, PUT 64 KiB: %v (bound %v), after removal %v", avg, variation, delay, r.elapsed, want, after)
	})
}

func TestDown(t *testing.T) {
	e := newEnv(t)
	// A keep-alive connection exists before the proxy goes down.
	e.ok(e.health(e.hc, 10*time.Second))
	require.True(t, e.ok(e.health(e.hc, 10*time.Second)).reused, "no keep-alive connection to start from")
	f := e.proxy.DownT(t)
	for _, hc := range []*http.Client{e.hc, e.fresh} {
		r := e.health(hc, 10*time.Second)
		require.Error(t, r.err)
		// Docker's port proxy accepts and then closes; without it the
		// connection is refused.
		require.Contains(t, []errClass{classClosed, classRefused}, classify(r.err), "error %v", r.err)
		t.Logf("down: request failed with %s: %v", classify(r.err), r.err)
	}
	// A second Down is counted: removing one keeps the proxy down.
	f2, err := e.proxy.Down(t.Context())
	require.NoError(t, err)
	require.NoError(t, f.Remove(t.Context()))
	require.Error(t, e.health(e.fresh, 10*time.Second).err, "proxy up while a Down fault is outstanding")
	require.NoError(t, f2.Remove(t.Context()))
	e.ok(e.health(e.hc, 10*time.Second))
	require.NoError(t, f2.Remove(t.Context()), "second Remove must be a no-op")
}

func TestDownDuring(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.proxy.DownDuring(ctx, time.Minute) }()
	// The proxy goes down...
	require.Eventually(t, func() bool { return e.health(e.fresh, 5*time.Second).err != nil },
		10*time.Second, 20*time.Millisecond)
	// ...and comes back when the context ends long before the window.
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	e.ok(e.health(e.fresh, 10*time.Second))
}

// TestKeepAliveConnectionSeesFault proves that a fault applied is a fault in
// effect for a client that already holds a keep-alive connection.
func TestKeepAliveConnectionSeesFault(t *testing.T) {
	const latency = 400 * time.Millisecond
	e := newEnv(t)
	e.ok(e.health(e.hc, 10*time.Second))
	require.True(t, e.ok(e.health(e.hc, 10*time.Second)).reused, "no keep-alive connection to start from")

	f := e.proxy.ApplyT(t, netfault.Latency(latency))
	r := e.ok(e.health(e.hc, 10*time.Second))
	atLeast(t, r.elapsed, latency, "the keep-alive client's next request")
	assert.False(t, r.reused, "Apply should have closed the old connection")
	r2 := e.ok(e.health(e.hc, 10*time.Second))
	assert.True(t, r2.reused)
	atLeast(t, r2.elapsed, latency, "the following request on the new keep-alive connection")
	require.NoError(t, f.Remove(t.Context()))
	// Removal reaches the live connection: the same client, on the same
	// kept-alive connection, is fast again.
	r3 := e.ok(e.health(e.hc, 10*time.Second))
	assert.True(t, r3.reused)
	assert.Less(t, r3.elapsed, latency, "latency still there after removal")
	t.Logf("keep-alive: next request %v on a new connection, then %v; after removal %v on the kept connection", r.elapsed, r2.elapsed, r3.elapsed)

	// The KeepingConnections view leaves the connection in place.
	f2 := e.proxy.KeepingConnections().ApplyT(t, netfault.Latency(latency))
	r4 := e.ok(e.health(e.hc, 10*time.Second))
	assert.True(t, r4.reused, "KeepingConnections closed the connection")
	t.Logf("KeepingConnections: the kept connection's next request took %v (Toxiproxy added the toxic to the live connection itself)", r4.elapsed)
	require.NoError(t, f2.Remove(t.Context()))
}

func TestToxicityIsDrawnPerConnection(t *testing.T) {
	e := newEnv(t)
	f := e.proxy.ApplyT(t, netfault.ResetPeer(0).Toxicity(0))
	for range 10 {
		e.ok(e.health(e.fresh, 10*time.Second))
	}
	require.NoError(t, f.Remove(t.Context()))

	e.proxy.ApplyT(t, netfault.ResetPeer(0).Toxicity(0.5))
	failed := 0
	const n = 24
	for range n {
		r := e.health(e.fresh, 10*time.Second)
		if r.err != nil {
			require.Equal(t, classClosed, classify(r.err), "error %v", r.err)
			failed++
		}
	}
	// All 24 alike has probability 2^-23 when each draws 0.5.
	assert.Greater(t, failed, 0)
	assert.Less(t, failed, n)
	t.Logf("reset_peer with toxicity 0.5: %d of %d fresh connections reset", failed, n)
}

func TestFaultsCoexistAndRemoveExactly(t *testing.T) {
	const latency = 200 * time.Millisecond
	e := newEnv(t)
	a := e.proxy.ApplyT(t, netfault.Latency(latency))
	b := e.proxy.ApplyT(t, netfault.Latency(latency))
	require.NotEqual(t, a.Names(), b.Names())
	atLeast(t, e.ok(e.health(e.hc, 10*time.Second)).elapsed, 2*latency, "a request under two latency faults")
	require.NoError(t, a.Remove(t.Context()))
	e.noToxics(a.Names()...)
	ts, err := e.proxy.Toxics(t.Context())
	require.NoError(t, err)
	require.Len(t, ts, 1)
	require.Equal(t, b.Names()[0], ts[0].Name)
	atLeast(t, e.ok(e.health(e.hc, 10*time.Second)).elapsed, latency, "a request under the remaining fault")
	require.NoError(t, b.Remove(t.Context()))
	e.noToxics()
}

func TestApplyTRemovesAtCleanup(t *testing.T) {
	e := newEnv(t)
	var names []string
	t.Run("inner", func(t *testing.T) {
		names = e.proxy.ApplyT(t, netfault.Timeout(0), netfault.Bandwidth(1).Upstream()).Names()
		e.proxy.DownT(t)
		require.Len(t, names, 2)
	})
	e.noToxics()
	e.ok(e.health(e.fresh, 10*time.Second))
}

func TestDuring(t *testing.T) {
	const latency, window = 300 * time.Millisecond, 1500 * time.Millisecond
	e := newEnv(t)
	done := make(chan error, 1)
	go func() { done <- e.proxy.During(t.Context(), window, netfault.Latency(latency)) }()
	// Load runs while the window is open: some request sees the latency.
	require.Eventually(t, func() bool {
		r := e.health(e.hc, 10*time.Second)
		return r.err == nil && r.elapsed >= latency
	},
		10*time.Second, time.Millisecond)
	require.NoError(t, <-done)
	e.noToxics()
	assert.Less(t, e.fastest(3, func() result { return e.health(e.hc, 10*time.Second) }), latency)

	// Cancelled early, During still removes its toxics.
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- e.proxy.During(ctx, time.Minute, netfault.Latency(latency)) }()
	require.Eventually(t, func() bool {
		ts, err := e.proxy.Toxics(t.Context())
		return err == nil && len(ts) == 1
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))
	e.noToxics()
}

func TestApplyRejectsBadToxicsAndAddsNothing(t *testing.T) {
	e := newEnv(t)
	_, err := e.proxy.Apply(t.Context(), netfault.Latency(time.Second), netfault.Latency(-time.Millisecond))
	require.ErrorIs(t, err, netfault.ErrInvalid)
	var ne *netfault.Error
	require.ErrorAs(t, err, &ne)
	require.Equal(t, netfault.CodeNegativeDuration, ne.Code)
	e.noToxics()
}
