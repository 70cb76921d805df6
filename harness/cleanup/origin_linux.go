package cleanup

import (
	"context"
	"os"
	"strings"
)

// localOrigin is "linux:boot=<boot id>:pidns=<inode of the PID namespace>".
// A part that cannot be read is replaced by the host name, which keeps
// origins apart between machines and containers with their own UTS
// namespace.
func localOrigin(context.Context) string {
	boot := "host-" + labelSafe(hostname())
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		boot = labelSafe(string(b))
	}
	pidns := "host-" + labelSafe(hostname())
	// The link reads "pid:[4026531836]".
	if l, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		if i, j := strings.IndexByte(l, '['), strings.IndexByte(l, ']'); i >= 0 && j > i+1 {
			pidns = l[i+1 : j]
		}
	}
	return "linux:boot=" + boot + ":pidns=" + pidns
}
