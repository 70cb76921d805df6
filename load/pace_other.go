//go:build !linux && !darwin

package load

import "time"

// kernelSleep uses the runtime timer where the pacer has no kernel sleep of
// its own; start lag is measured and reported either way.
func kernelSleep(d time.Duration) { time.Sleep(d) }
