package tierd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

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
// It wraps errors.ErrUnsupported.
var ErrPowerLossUnsupported = fmt.Errorf("harness: a power cut needs tierd in the test process on the power-loss layer (TIERCHAOS_SUT=inprocess, Options.PowerLoss): %w", errors.ErrUnsupported)

// PowerLossReady reports nil when CutPower can work on this stack, else
// why not (wrapping ErrPowerLossUnsupported).
func (s *Stack) PowerLossReady() error {
	if s.Mode != SUTInProcess {
		return fmt.Errorf("harness: tierd runs in %s mode: %w", s.Mode, ErrPowerLossUnsupported)
	}
	if !s.power.isOn() {
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
	in := s.inProcessTierd()
	if in == nil {
		return powerloss.Report{}, ErrNotRunning
	}
	if in.fs == nil {
		return powerloss.Report{}, fmt.Errorf("harness: tierd runs without the power-loss layer (Options.PowerLoss): %w", ErrPowerLossUnsupported)
	}
	// The layer loses what was not fsynced and freezes, so tierd changes
	// nothing more; then tierd dies as by a kill.
	rep, err := in.fs.Cut(co)
	if err = errors.Join(err, s.KillTierd(ctx)); err != nil {
		return rep, fmt.Errorf("harness: power cut: %w", err)
	}
	s.log.Info("power cut", "seed", co.Seed, "torn", co.Torn, "files", rep.Files, "lost_bytes", rep.LostBytes,
		"torn_files", rep.TornFiles, "undone_entries", len(rep.Undone))
	if err := s.StartTierd(ctx); err != nil {
		return rep, fmt.Errorf("harness: start tierd after the power cut: %w", err)
	}
	return rep, nil
}

// PowerCut is CutPower with the cut's options as plain values (the
// fault.PowerCutter of harness/fault): seed draws what a torn cut keeps.
func (s *Stack) PowerCut(ctx context.Context, seed uint64, torn bool) error {
	_, err := s.CutPower(ctx, powerloss.CutOptions{Seed: seed, Torn: torn})
	return err
}

// ArmPowerCut arranges for tierd's power to be cut when it next passes
// the transition hook point (one of the store.Hook* constants): the cut
// happens inside the transition, whose remaining steps then fail on the
// frozen data folder. PowerCutBeforeWALSync cuts before a WAL fsync. The
// channel receives the result when it fires; then call
// RestartAfterPowerCut. ClearFaults disarms a cut that has not fired. It
// needs PowerLossReady.
func (s *Stack) ArmPowerCut(point string, co powerloss.CutOptions) (<-chan PowerCutResult, error) {
	if err := s.PowerLossReady(); err != nil {
		return nil, err
	}
	s.log.Info("power cut armed", "point", point, "seed", co.Seed, "torn", co.Torn)
	fired := make(chan PowerCutResult, 1)
	if point != PowerCutBeforeWALSync {
		s.power.mu.Lock()
		defer s.power.mu.Unlock()
		s.power.armed = &armedCut{point: point, co: co, fired: fired}
		return fired, nil
	}
	// Armed on the current layer: it fires inside it.
	in := s.inProcessTierd()
	if in == nil || in.fs == nil {
		return nil, ErrNotRunning
	}
	walDir := filepath.Join(in.fs.Root(), "wal") + string(filepath.Separator)
	in.fs.CutBeforeSync(func(p string) bool {
		return strings.HasPrefix(p, walDir) && strings.HasSuffix(p, ".log")
	}, co, func(r powerloss.SyncCut) {
		fired <- PowerCutResult{Report: r.Report, Err: r.Err}
	})
	return fired, nil
}

// RestartAfterPowerCut ends a tierd whose power an armed cut cut (as
// KillTierd does) and starts it again on what remains.
func (s *Stack) RestartAfterPowerCut(ctx context.Context) error {
	if err := s.KillTierd(ctx); err != nil {
		return err
	}
	return s.StartTierd(ctx)
}

// disarmPowerCut drops a cut armed by ArmPowerCut at a hook point that
// has not fired.
func (s *Stack) disarmPowerCut() {
	s.power.mu.Lock()
	defer s.power.mu.Unlock()
	s.power.armed = nil
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
	if s.power.isOn() == on {
		return nil
	}
	if err := s.StopTierd(ctx); err != nil {
		return err
	}
	s.power.mu.Lock()
	s.power.on = on
	s.power.mu.Unlock()
	s.log.Info("power-loss layer", "on", on)
	return s.StartTierd(ctx)
}

// armedCut is a power cut waiting for a hook point.
type armedCut struct {
	point string
	co    powerloss.CutOptions
	fired chan PowerCutResult
}

// PowerCutResult is what an armed power cut did when it fired.
type PowerCutResult struct {
	Report powerloss.Report
	Err    error
}

// isOn reports whether new instances start on the power-loss layer.
func (p *power) isOn() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on
}

// hook cuts fs's power if a cut is armed for point. It runs inside the
// transition, which then fails on the frozen file system.
func (p *power) hook(fs *powerloss.FS, point string) {
	p.mu.Lock()
	a := p.armed
	if a == nil || a.point != point {
		p.mu.Unlock()
		return
	}
	p.armed = nil
	p.mu.Unlock()
	rep, err := fs.Cut(a.co)
	p.log.Info("power cut at a hook point", "point", point, "lost_bytes", rep.LostBytes, "undone_entries", len(rep.Undone), "err", err)
	a.fired <- PowerCutResult{Report: rep, Err: err}
}
