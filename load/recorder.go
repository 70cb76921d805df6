package load

import (
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/load/hist"
)

// acc accumulates one op's samples.
type acc struct {
	lat, svc, lag             *hist.Histogram
	completed, ok, late, sent int64
	missed                    int64
	errs                      map[string]int64
}

func newAcc() *acc {
	return &acc{lat: hist.New(), svc: hist.New(), lag: hist.New(), errs: map[string]int64{}}
}

func (a *acc) merge(b *acc) {
	a.lat.Merge(b.lat)
	a.svc.Merge(b.svc)
	a.lag.Merge(b.lag)
	a.completed += b.completed
	a.ok += b.ok
	a.late += b.late
	a.sent += b.sent
	a.missed += b.missed
	for c, n := range b.errs {
		a.errs[c] += n
	}
}

func (a *acc) reset() {
	a.lat.Reset()
	a.svc.Reset()
	a.lag.Reset()
	a.completed, a.ok, a.late, a.sent, a.missed = 0, 0, 0, 0, 0
	clear(a.errs)
}

func (a *acc) empty() bool { return a.completed == 0 && a.sent == 0 && a.missed == 0 }

// result converts the accumulator to an OpResult over a window of length w.
func (a *acc) result(name string, w time.Duration, withHist bool) OpResult {
	r := OpResult{
		Name:      name,
		Scheduled: a.sent + a.missed,
		Sent:      a.sent,
		Missed:    a.missed,
		Late:      a.late,
		Completed: a.completed,
		OK:        a.ok,
		Errors:    make(map[string]int64, len(a.errs)),
		Latency:   a.lat.Summary(),
		Service:   a.svc.Summary(),
		StartLag:  a.lag.Summary(),
	}
	for c, n := range a.errs {
		r.Errors[c] = n
	}
	if s := w.Seconds(); s > 0 {
		r.TargetRate = float64(r.Scheduled) / s
		r.AchievedRate = float64(r.Sent) / s
		r.Throughput = float64(r.OK) / s
	}
	if withHist {
		r.LatencyHist = a.lat.Clone()
		r.ServiceHist = a.svc.Clone()
	}
	return r
}

// shard is one lock-protected set of accumulators; workers record into the
// shard of their id, so the lock is rarely contended.
type shard struct {
	mu  sync.Mutex
	ops []*acc
	_   [40]byte // keep neighbouring shards' locks off one cache line
}

func newShards(n, ops int) []*shard {
	s := make([]*shard, n)
	for i := range s {
		s[i] = &shard{ops: make([]*acc, ops)}
		for j := range s[i].ops {
			s[i].ops[j] = newAcc()
		}
	}
	return s
}

// record stores one finished request.
func (s *shard) record(op int, latency, service, lag time.Duration, late bool, code string) {
	s.mu.Lock()
	a := s.ops[op]
	a.lat.Record(latency)
	a.svc.Record(service)
	a.lag.Record(lag)
	a.completed++
	if late {
		a.late++
	}
	if code == "" {
		a.ok++
	} else {
		a.errs[code]++
	}
	s.mu.Unlock()
}

// drainInto moves the shard's samples into dst (one acc per op) and resets it.
func (s *shard) drainInto(dst []*acc) {
	s.mu.Lock()
	for i, a := range s.ops {
		if a.completed > 0 {
			dst[i].merge(a)
			a.reset()
		}
	}
	s.mu.Unlock()
}
