//go:build !linux

package cleanup

import (
	"context"
	"runtime"
	"strconv"

	"github.com/shirou/gopsutil/v4/host"
)

// localOrigin is "<GOOS>:host=<machine id>:boot=<boot time, unix seconds>"
// (through gopsutil; the host name replaces a machine id that cannot be
// read). These systems have no PID namespaces, so the machine and its
// boot are where a PID means something.
func localOrigin(ctx context.Context) string {
	id, err := host.HostIDWithContext(ctx)
	if err != nil || id == "" {
		id = hostname()
	}
	boot := "unknown"
	if bt, err := host.BootTimeWithContext(ctx); err == nil {
		boot = strconv.FormatUint(bt, 10)
	}
	return runtime.GOOS + ":host=" + labelSafe(id) + ":boot=" + boot
}
