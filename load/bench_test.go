package load

import (
	"context"
	"testing"
	"time"
)

// BenchmarkDriverOverhead drives a no-op op as fast as the scheduler can
// go (a rate far above what it reaches), so ns/op and allocs/op are the
// driver's own cost per request: scheduling, hand-off, timing, recording.
func BenchmarkDriverOverhead(b *testing.B) {
	const rate = 5e6
	op := Simple("noop", 1, func(context.Context) error { return nil })
	b.ReportAllocs()
	b.ResetTimer()
	res, err := Run(context.Background(), Config{
		Ops: []Op{op}, Rate: rate, Duration: time.Duration(float64(b.N) / rate * float64(time.Second)),
		Pacing: PacingCoarse, LateAfter: time.Hour, Tick: 100 * time.Millisecond, Interval: time.Second,
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.Overall.Completed == 0 && b.N > 1 {
		b.Fatal("nothing completed")
	}
	b.ReportMetric(float64(res.Overall.Completed)/float64(b.N), "completed/op")
}
