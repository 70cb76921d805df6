package nemesis

import (
	"context"

	core "github.com/tierchaos/tierchaos/harness/nemesis"
)

// ShrinkConfig drives Shrink.
type ShrinkConfig = core.ShrinkConfig[Traffic]

// ShrinkReport tells how shrinking went.
type ShrinkReport = core.ShrinkReport

// Shrink reduces a failing schedule while it keeps failing (core.Shrink);
// unless cfg has reductions of its own, the traffic is reduced to a lower
// rate, then to fewer collections.
func Shrink(ctx context.Context, sch Schedule, cfg ShrinkConfig) (Schedule, ShrinkReport, error) {
	if cfg.Reduce == nil {
		cfg.Reduce = []func(Traffic) (Traffic, bool){lowerRate, fewerCollections}
	}
	return core.Shrink(ctx, sch, cfg)
}

// lowerRate halves the rate, down to 10 requests per second.
func lowerRate(t Traffic) (Traffic, bool) {
	t.Rate = float64(int(t.Rate / 2))
	return t, t.Rate >= 10
}

// fewerCollections halves the collections, down to one.
func fewerCollections(t Traffic) (Traffic, bool) {
	t.Collections /= 2
	t.HotCollections = min(t.HotCollections, t.Collections)
	return t, t.Collections >= 1
}
