package cleanup

import (
	"context"
	"os"
	"strings"
)

// Origin names where a run's process runs, as far as its PID means
// anything: two runs share an origin exactly when one can look the other's
// owning process up by PID. On Linux it is the kernel's boot id and the
// PID namespace ("linux:boot=<id>:pidns=<inode>"), so CI job containers
// sharing one Docker engine through a mounted socket, and machines sharing
// a remote engine, all have origins of their own. Elsewhere (macOS: no PID
// namespaces) it is the machine's id and boot time
// ("darwin:host=<id>:boot=<unix seconds>").
type Origin string

// LocalOrigin returns the origin of the calling process.
func LocalOrigin(ctx context.Context) Origin {
	return Origin(localOrigin(ctx))
}

// hostname is the machine's name for the informational host label, or
// "unknown".
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// labelSafe keeps a value usable in an origin (no separators of ours).
func labelSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ':' || r == '=' || r <= ' ' {
			return '-'
		}
		return r
	}, strings.TrimSpace(s))
}
