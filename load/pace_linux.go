package load

import (
	"syscall"
	"time"
)

// kernelSleep blocks the calling thread for d with nanosleep, which wakes
// ~60 µs late on Linux instead of the runtime timer's ~1 ms.
func kernelSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
