package load

import (
	"syscall"
	"time"
)

// kernelSleep blocks the calling thread for d in select(2) with no file
// descriptors, macOS's microsecond-resolution sleep (the standard library
// has no nanosleep for darwin). An interrupted select resumes until d has
// passed.
func kernelSleep(d time.Duration) {
	deadline := time.Now().Add(d)
	for rem := d; rem > 0; rem = time.Until(deadline) {
		tv := syscall.NsecToTimeval(max(int64(rem), int64(time.Microsecond)))
		if err := syscall.Select(0, nil, nil, nil, &tv); err != nil && err != syscall.EINTR {
			return
		}
	}
}
