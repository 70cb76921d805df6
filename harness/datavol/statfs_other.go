//go:build !linux

package datavol

import (
	"errors"
	"runtime"
)

// statfs is implemented for Linux only: the sidecar and tierd's data
// directories in the test process are on Linux.
func statfs(string) (Space, error) {
	return Space{}, errors.New("statfs of a data volume is implemented for Linux only, this is " + runtime.GOOS)
}
