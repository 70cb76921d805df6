//go:build !linux

package tmpfs

import (
	"context"
	"fmt"
	"runtime"
)

// helperProc has no use where New is unavailable.
type helperProc struct{}

// New answers ErrUnavailable: mount namespaces are a Linux feature.
func New(_ context.Context, size string, _ Mode) (*FS, error) {
	if _, err := ParseSize(size); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: mount namespaces need Linux, this is %s", ErrUnavailable, runtime.GOOS)
}

// Close does nothing: no FS exists here.
func (f *FS) Close() error { return nil }
