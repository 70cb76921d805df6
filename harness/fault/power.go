package fault

import (
	"context"
	"errors"
	"fmt"
)

// KindPowerCut cuts tierd's power (in process, on the power-loss layer):
// writes no fsync covers are lost or torn, directory changes no folder
// fsync covers are undone, and tierd starts again on what remains.
const KindPowerCut = "process.power_cut"

// PowerCut is a power cut of tierd's machine, an instant of the process
// family (it excludes kills, restarts and pauses). Only an in-process
// tierd started with tierd.Options.PowerLoss can lose power; elsewhere
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
func (p PowerCut) Run(ctx context.Context, s Stack) error {
	pc, ok := s.(PowerCutter)
	if !ok {
		return &Error{Code: CodeUnsupported, Kind: p.Kind(), Msg: "the service on this stack cannot lose power (PowerCutter)"}
	}
	if err := pc.PowerLossReady(); err != nil {
		return &Error{Code: CodeUnsupported, Kind: p.Kind(), Msg: "tierd cannot lose power on this stack", Err: err}
	}
	if err := pc.PowerCut(ctx, p.Seed, p.Torn); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return &Error{Code: CodeUnsupported, Kind: p.Kind(), Msg: "tierd cannot lose power on this stack", Err: err}
		}
		return fmt.Errorf("fault %s: %w", p.Kind(), err)
	}
	return nil
}
