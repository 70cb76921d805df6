package chaos

import (
	"fmt"
	"syscall"

	"github.com/tierchaos/tierchaos/examples/kvstore/kvclient"
)

var (
	errUnknown = &kvclient.Error{Status: 503, Code: "s3_unavailable"}
	errRefused = fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
)
