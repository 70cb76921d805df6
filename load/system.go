package load

import (
	"context"
	"fmt"
	"time"
)

// System is a service under load as a run sees it: where it is, which
// API the load speaks to it, when it is ready, and how a workload is
// prepared on it. tierd's is load/workload.System; any service with a
// Go client can have one (examples/kvstore/kvload is a second).
type System interface {
	// Where describes the service for logs and the report, e.g. its URL.
	Where() string
	// API names the protocol the workload speaks ("rest", "grpc", ...).
	// The report records it, and merging shards that spoke different
	// APIs is refused.
	API() string
	// Ready returns nil once the service answers.
	Ready(ctx context.Context) error
	// Setup prepares a workload on the service (creates and seeds its
	// data) and returns it.
	Setup(ctx context.Context) (Workload, error)
}

// Workload is a prepared workload: the operations a run mixes, and the
// removal of what its setup created.
type Workload interface {
	// Ops returns the operations with a positive weight, in a fixed
	// order.
	Ops() []Op
	// Cleanup removes what the setup created.
	Cleanup(ctx context.Context) error
}

// WaitReady polls sys.Ready every 200 ms until it passes or limit has
// passed; the error then wraps the last answer.
func WaitReady(ctx context.Context, sys System, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		err := sys.Ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load: %s not ready: %w", sys.Where(), err)
		case <-t.C:
		}
	}
}
