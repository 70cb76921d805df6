package fault

import (
	"context"
	"errors"
	"fmt"

	"github.com/tierchaos/tierchaos/harness"
	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
)

// KindPowerCut cuts tierd's power (in process, on the power-loss layer):
// writes no fsync covers are lost or torn, directory changes no folder
// fsync covers are undone, and tierd starts again on what remains.
const KindPowerCut = "process.power_cut"

// PowerCut is a power cut of tierd's machine, an instant of the process
// family (it excludes kills, restarts and pauses). Only an in-process
// tierd started with harness.Options.PowerLoss can lose power; elsewhere
// Run fails with CodeUnsupported.
type PowerCut struct {
	// Seed draws which unsynced writes survive a torn cut.
	Seed uint64 `json:"seed,omitempty"`
	// Torn keeps a seeded prefix of each file's unsynced writes (the last
	// one possibly cut inside); false drops them all.
	Torn bool `json:"torn,omitempty"`
}

// Kind is KindPowerCut.
func (PowerCut) Kind() string { return KindPowerCut }

// Family is FamilyProcess.
func (PowerCut) Family() Family { return FamilyProcess }

// Validate has nothing to check: every seed is valid.
func (PowerCut) Validate() error { return nil }

// String describes the fault.
func (p PowerCut) String() string {
	if p.Torn {
		return fmt.Sprintf("%s torn seed=%d", KindPowerCut, p.Seed)
	}
	return KindPowerCut
}

// IsInstant is true.
func (PowerCut) IsInstant() bool { return true }

// Run cuts the power and waits until tierd serves again.
func (p PowerCut) Run(ctx context.Context, s *harness.Stack) error {
	if err := s.PowerLossReady(); err != nil {
		return &Error{Code: CodeUnsupported, Kind: p.Kind(), Msg: "tierd cannot lose power on this stack", Err: err}
	}
	if _, err := s.CutPower(ctx, powerloss.CutOptions{Seed: p.Seed, Torn: p.Torn}); err != nil {
		if errors.Is(err, harness.ErrPowerLossUnsupported) {
			return &Error{Code: CodeUnsupported, Kind: p.Kind(), Msg: "tierd cannot lose power on this stack", Err: err}
		}
		return fmt.Errorf("fault %s: %w", p.Kind(), err)
	}
	return nil
}
