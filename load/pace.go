package load

import (
	"context"
	"time"
)

// fineThreshold is the longest wait that fine pacing does in the kernel;
// longer waits use the runtime timer for all but this much.
const fineThreshold = 2 * time.Millisecond

// pacer waits until a request is due.
type pacer struct {
	fine  bool
	timer *time.Timer
}

func newPacer(p Pacing) *pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pacer{fine: p == PacingFine, timer: t}
}

// sleep waits for d, returning false if ctx ends first.
func (p *pacer) sleep(ctx context.Context, d time.Duration) bool {
	if p.fine && d <= fineThreshold {
		kernelSleep(d)
		return ctx.Err() == nil
	}
	if p.fine {
		d -= fineThreshold / 2 // wake early, the caller finishes in the kernel
	}
	p.timer.Reset(d)
	select {
	case <-p.timer.C:
		return true
	case <-ctx.Done():
		p.timer.Stop()
		return false
	}
}
