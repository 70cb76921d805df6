package load_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/httpop"
)

// stallServer answers at once, except that from the request with sequence
// number stallSeq on it holds every request that arrives before
// (arrival of stallSeq) + stall until that moment.
type stallServer struct {
	stallSeq int
	stall    time.Duration

	mu       sync.Mutex
	stallEnd time.Time
}

func (s *stallServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.Atoi(r.URL.Query().Get("seq"))
	if err != nil {
		http.Error(w, "bad seq", http.StatusBadRequest)
		return
	}
	now := time.Now()
	s.mu.Lock()
	if seq == s.stallSeq && s.stallEnd.IsZero() {
		s.stallEnd = now.Add(s.stall)
	}
	end := s.stallEnd
	s.mu.Unlock()
	if seq >= s.stallSeq && !end.IsZero() && now.Before(end) {
		t := time.NewTimer(end.Sub(now))
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// end returns when the stall ended (zero if it never began).
func (s *stallServer) end() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stallEnd
}

// expectedPercentile computes the p-th percentile (nearest rank, as HDR
// does) of the latencies implied by the stall schedule: request k is due at
// k/rate after the run's start; every request from stallSeq on that is due
// before the stall's end waits until then, any other request is answered at
// once (taken as 0). The stall's end is the one the server observed, so a
// late arrival of request stallSeq on a loaded machine (which shifts the
// whole stall) does not count against the driver.
func expectedPercentile(rate float64, dur time.Duration, stallSeq int, stallEnd time.Duration, p float64) time.Duration {
	n := int(rate * dur.Seconds())
	lat := make([]float64, n)
	for k := stallSeq; k < n; k++ {
		due := float64(k) / rate
		if due < stallEnd.Seconds() {
			lat[k] = stallEnd.Seconds() - due
		}
	}
	sort.Float64s(lat)
	rank := int(p/100*float64(n) + 0.5)
	rank = max(1, min(rank, n))
	return time.Duration(lat[rank-1] * float64(time.Second))
}

// TestAccuracyUnderStall checks coordinated-omission correction: against a
// server that stalls for a known window, corrected p95/p99 must match the
// values computed from the stall schedule within 5%, whether the driver may
// keep sending during the stall (open loop) or is limited to 8 requests in
// flight (where uncorrected service times hide the stall).
func TestAccuracyUnderStall(t *testing.T) {
	const (
		rate  = 50.0
		dur   = 6 * time.Second
		stall = 2 * time.Second
	)
	stallAt := time.Second
	tests := []struct {
		name        string
		maxInFlight int
	}{
		{"open loop", 0},
		{"8 in flight", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stallSeq := int(rate * stallAt.Seconds())
			stalls := &stallServer{stallSeq: stallSeq, stall: stall}
			srv := httptest.NewServer(stalls)
			t.Cleanup(srv.Close)
			client := httpop.New(httpop.Options{MaxConns: 512})
			t.Cleanup(client.Close)
			op := load.Op{Name: "get", Weight: 1, Do: func(ctx context.Context, seq uint64) error {
				return client.Do(ctx, httpop.Request{URL: srv.URL + "/?seq=" + strconv.FormatUint(seq, 10)})
			}}
			res, err := load.Run(context.Background(), load.Config{
				Ops: []load.Op{op}, Rate: rate, Duration: dur, MaxInFlight: tt.maxInFlight,
				Pacing: load.PacingFine, LateAfter: 100 * time.Millisecond, Interval: time.Second,
			})
			require.NoError(t, err)
			o := res.Overall
			require.Equal(t, int64(rate*dur.Seconds()), o.Scheduled)
			require.Equal(t, o.Scheduled, o.OK, "errors: %v", o.Errors)

			require.False(t, stalls.end().IsZero(), "the stall happened")
			stallEnd := stalls.end().Sub(res.Start)
			t.Logf("stall ended %v after the start (nominal %v)", stallEnd, stallAt+stall)
			want95 := expectedPercentile(rate, dur, stallSeq, stallEnd, 95)
			want99 := expectedPercentile(rate, dur, stallSeq, stallEnd, 99)
			t.Logf("%-12s %10s %10s %12s", "percentile", "expected", "corrected", "uncorrected")
			t.Logf("%-12s %10v %10v %12v", "p95", want95, o.Latency.P95, o.Service.P95)
			t.Logf("%-12s %10v %10v %12v", "p99", want99, o.Latency.P99, o.Service.P99)
			t.Logf("peak in flight %d, start lag p50 %v max %v", res.PeakInFlight, o.StartLag.P50, o.StartLag.Max)

			for _, c := range []struct {
				name      string
				want, got time.Duration
			}{{"p95", want95, o.Latency.P95}, {"p99", want99, o.Latency.P99}} {
				relErr := math.Abs(float64(c.got-c.want)) / float64(c.want)
				assert.LessOrEqual(t, relErr, 0.05, fmt.Sprintf("corrected %s: want %v got %v", c.name, c.want, c.got))
			}
			if tt.maxInFlight > 0 {
				// Only the few requests in flight when the stall began saw it
				// as service time: the uncorrected p95 hides the stall.
				assert.Less(t, o.Service.P95, want95/2)
				assert.Greater(t, o.Late, int64(0), "requests queued behind the limit start late")
			} else {
				assert.GreaterOrEqual(t, res.PeakInFlight, int(rate*stall.Seconds()*0.9))
			}
		})
	}
}
