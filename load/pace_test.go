package load

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestKernelSleepNeverWakesEarly checks the fine pacer's kernel sleep on
// this platform: it never returns before the asked duration, and a sleep
// is not a hang (the upper bound is loose: the machine may be loaded).
func TestKernelSleepNeverWakesEarly(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 50 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		t.Run(d.String(), func(t *testing.T) {
			for range 20 {
				start := time.Now()
				kernelSleep(d)
				took := time.Since(start)
				require.GreaterOrEqual(t, took, d, "woke early")
				require.Less(t, took, d+500*time.Millisecond, "slept far too long")
			}
		})
	}
}

// TestPacerSleep checks both pacing modes: a wait lasts at least its
// duration (a fine wait longer than fineThreshold may wake up to
// fineThreshold/2 early, by design: the scheduler finishes it in the
// kernel), and a cancelled context ends a long wait at once.
func TestPacerSleep(t *testing.T) {
	tests := []struct {
		name   string
		pacing Pacing
		d      time.Duration
		early  time.Duration
	}{
		{"fine-short", PacingFine, 500 * time.Microsecond, 0},
		{"fine-long", PacingFine, 20 * time.Millisecond, fineThreshold / 2},
		{"coarse", PacingCoarse, 5 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(tt.pacing)
			start := time.Now()
			require.True(t, p.sleep(context.Background(), tt.d))
			require.GreaterOrEqual(t, time.Since(start), tt.d-tt.early)

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			start = time.Now()
			require.False(t, p.sleep(ctx, time.Hour), "a cancelled context ends the wait")
			require.Less(t, time.Since(start), time.Second)
		})
	}
}
