package harness

import (
	"context"
	"errors"
	"fmt"

	"github.com/tierchaos/tierchaos/system/fsutil/powerloss"
)

// PowerCutBeforeWALSync is an ArmPowerCut point besides the store's hook
// points: just before the next fsync of a WAL segment takes effect, so
// the batch of inserts it would make durable (written, not yet
// acknowledged) is lost or, torn, partly on disk.
const PowerCutBeforeWALSync = "fsync:wal"

// ErrPowerLossUnsupported is wrapped by CutPower when the stack cannot cut
// tierd's power: tierd runs in a container (whose page cache is the host
// kernel's, which the harness cannot drop), or in the test process
// without Options.PowerLoss.
var ErrPowerLossUnsupported = errors.New("harness: a power cut needs tierd in the test process on the power-loss layer (TIERCHAOS_SUT=inprocess, Options.PowerLoss)")

// PowerLossReady reports nil when CutPower can work on this stack, else
// why not (wrapping ErrPowerLossUnsupported).
func (s *Stack) PowerLossReady() error {
	if s.Mode != SUTInProcess {
		return fmt.Errorf("harness: tierd runs in %s mode: %w", s.Mode, ErrPowerLossUnsupported)
	}
	if !s.powerLoss {
		return fmt.Errorf("harness: the stack was started without Options.PowerLoss: %w", ErrPowerLossUnsupported)
	}
	return nil
}

// CutPower cuts tierd's power: every write to its data folder that no
// fsync covers is lost or torn (co), every directory change since its
// folder's last fsync is undone, tierd dies on the spot, and is started
// again on what remains and waited for. It needs PowerLossReady.
func (s *Stack) CutPower(ctx context.Context, co powerloss.CutOptions) (powerloss.Report, error) {
	if err := s.PowerLossReady(); err != nil {
		return powerloss.Report{}, err
	}
	in, ok := s.currentSUT().(*inProcessSUT)
	if !ok {
		return powerloss.Report{}, fmt.Errorf("harness: no in-process tierd: %w", ErrPowerLossUnsupported)
	}
	rep, err := in.cutPower(co)
	if err != nil {
		return rep, fmt.Errorf("harness: power cut: %w", err)
	}
	s.log.Info("power cut", "seed", co.Seed, "torn", co.Torn, "files", rep.Files, "lost_bytes", rep.LostBytes,
		"torn_files", rep.TornFiles, "undone_entries", len(rep.Undone))
	if err := s.StartTierd(ctx); err != nil {
		return rep, fmt.Errorf("harness: start tierd after the power cut: %w", err)
	}
	return rep, nil
}

// ArmPowerCut arranges for tierd's power to be cut when it next passes
// the transition hook point (one of the store.Hook* constants): the cut
// happens inside the transition, whose remaining steps then fail on the
// frozen data folder. PowerCutBeforeWALSync cuts before a WAL fsync. The channel receives the result when it fires;
// then call RestartAfterPowerCut. ClearFaults disarms a cut that has not
// fired. It needs PowerLossReady.
func (s *Stack) ArmPowerCut(point string, co powerloss.CutOptions) (<-chan PowerCutResult, error) {
	if err := s.PowerLossReady(); err != nil {
		return nil, err
	}
	in, ok := s.currentSUT().(*inProcessSUT)
	if !ok {
		return nil, fmt.Errorf("harness: no in-process tierd: %w", ErrPowerLossUnsupported)
	}
	s.log.Info("power cut armed", "point", point, "seed", co.Seed, "torn", co.Torn)
	return in.arm(point, co)
}

// RestartAfterPowerCut ends a tierd whose power an armed cut cut (as
// KillTierd does) and starts it again on what remains.
func (s *Stack) RestartAfterPowerCut(ctx context.Context) error {
	if err := s.KillTierd(ctx); err != nil {
		return err
	}
	return s.StartTierd(ctx)
}

// disarmPowerCut drops a cut armed by ArmPowerCut that has not fired.
func (s *Stack) disarmPowerCut() {
	if in, ok := s.currentSUT().(*inProcessSUT); ok {
		in.disarm()
	}
}

// UsePowerLoss turns the power-loss layer on or off for an in-process
// tierd (Options.PowerLoss is where it starts): tierd is stopped
// gracefully and started again on the same data, on the layer or not. A
// test that turns it on for itself turns it off again in its cleanup.
// Turning it on with tierd in a container fails with
// ErrPowerLossUnsupported.
func (s *Stack) UsePowerLoss(ctx context.Context, on bool) error {
	if s.Mode != SUTInProcess {
		if on {
			return fmt.Errorf("harness: tierd runs in %s mode: %w", s.Mode, ErrPowerLossUnsupported)
		}
		return nil
	}
	in, ok := s.currentSUT().(*inProcessSUT)
	if !ok {
		return fmt.Errorf("harness: no in-process tierd: %w", ErrPowerLossUnsupported)
	}
	if s.powerLoss == on {
		return nil
	}
	if err := s.StopTierd(ctx); err != nil {
		return err
	}
	s.powerLoss = on
	in.mu.Lock()
	in.powerLoss = on
	in.mu.Unlock()
	s.log.Info("power-loss layer", "on", on)
	return s.StartTierd(ctx)
}
