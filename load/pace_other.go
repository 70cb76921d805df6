//go:build !unix

package load

import "time"

// kernelSleep falls back to the runtime timer where nanosleep is unavailable.
func kernelSleep(d time.Duration) { time.Sleep(d) }
