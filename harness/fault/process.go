package fault

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Process, worker, disk and MinIO fault kinds.
const (
	// KindProcessKill SIGKILLs tierd (in process: abandons it) and starts
	// it again on the same data.
	KindProcessKill = "process.kill"
	// KindProcessRestart stops tierd gracefully and starts it again.
	KindProcessRestart = "process.restart"
	// KindProcessPause freezes tierd (docker pause; in process every API
	// request is held) until removed.
	KindProcessPause = "process.pause"
	// KindProcessReconfigure restarts tierd on the same data with other
	// TIERD_* settings (Env), which stay in force afterwards.
	KindProcessReconfigure = "process.reconfigure"
	// KindWorkerRunOnce runs one worker cycle now (POST /v1/admin/worker
	// run_once).
	KindWorkerRunOnce = "worker.run_once"
	// KindWorkerPause pauses tierd's background worker until removed
	// (resume).
	KindWorkerPause = "worker.pause"
	// KindDiskFill fills tierd's data filesystem to ENOSPC until removed.
	KindDiskFill = "disk.fill"
	// KindMinIOStop stops MinIO until removed (then starts it).
	KindMinIOStop = "minio.stop"
	// KindMinIORestart restarts MinIO.
	KindMinIORestart = "minio.restart"
)

// envName is what a setting of process.reconfigure must be named like
// (the service decides which settings it knows).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Process is a fault of the service's process: kill (SIGKILL, then
// start), restart (graceful), reconfigure (restart with Env) as instants;
// pause as a window.
type Process struct {
	Action string `json:"-"`
	// Env holds the settings (environment variables, e.g. tierd's
	// TIERD_*) of a reconfigure ("" removes one).
	Env map[string]string `json:"env,omitempty"`
}

// Kind is "process." followed by the action.
func (p Process) Kind() string { return "process." + p.Action }

// Family is FamilyProcess.
func (Process) Family() Family { return FamilyProcess }

// Validate checks the action and, for reconfigure, the settings' names.
func (p Process) Validate() error {
	switch p.Action {
	case "kill", "restart", "pause":
		if len(p.Env) > 0 {
			return invalid(p.Kind(), "env is only for process.reconfigure")
		}
	case "reconfigure":
		if len(p.Env) == 0 {
			return invalid(p.Kind(), "no settings in env")
		}
		for k := range p.Env {
			if !envName.MatchString(k) {
				return invalid(p.Kind(), "setting %q is not an environment variable name", k)
			}
		}
	default:
		return &Error{Code: CodeUnknownKind, Kind: p.Kind(), Msg: "unknown process action"}
	}
	return nil
}

// String describes the fault.
func (p Process) String() string {
	if p.Action != "reconfigure" {
		return p.Kind()
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		kv = append(kv, k+"="+p.Env[k])
	}
	return p.Kind() + " " + strings.Join(kv, " ")
}

// IsInstant reports whether the action happens at one moment.
func (p Process) IsInstant() bool { return p.Action != "pause" }

// Run kills, restarts or reconfigures tierd and waits until it is ready.
func (p Process) Run(ctx context.Context, s Stack) error {
	var err error
	switch p.Action {
	case "kill":
		err = s.Core().RestartService(ctx, false)
	case "restart":
		err = s.Core().RestartService(ctx, true)
	case "reconfigure":
		err = s.Core().Reconfigure(ctx, p.Env)
	default:
		return invalid(p.Kind(), "not an instant")
	}
	if err != nil {
		return fmt.Errorf("fault %s: %w", p.Kind(), err)
	}
	return nil
}

// Apply pauses tierd; Remove unpauses it.
func (p Process) Apply(ctx context.Context, s Stack) (Active, error) {
	if p.Action != "pause" {
		return nil, invalid(p.Kind(), "not a window")
	}
	if err := s.Core().PauseService(ctx); err != nil {
		return nil, fmt.Errorf("fault %s: %w", p.Kind(), err)
	}
	return active(func(ctx context.Context) error {
		if err := s.Core().UnpauseService(ctx); err != nil {
			return fmt.Errorf("fault %s: unpause: %w", p.Kind(), err)
		}
		return nil
	}), nil
}

// Worker is a fault of tierd's background worker: run_once (instant) or
// pause (window, resumed at removal).
type Worker struct {
	Action string `json:"-"`
}

// Kind is "worker." followed by the action.
func (w Worker) Kind() string { return "worker." + w.Action }

// Family is FamilyWorker.
func (Worker) Family() Family { return FamilyWorker }

// Validate checks the action.
func (w Worker) Validate() error {
	if w.Action != "run_once" && w.Action != "pause" {
		return &Error{Code: CodeUnknownKind, Kind: w.Kind(), Msg: "unknown worker action"}
	}
	return nil
}

// String describes the fault.
func (w Worker) String() string { return w.Kind() }

// IsInstant reports whether the action happens at one moment.
func (w Worker) IsInstant() bool { return w.Action == "run_once" }

// Run runs one worker cycle. A cycle that reports errors (S3 down, a full
// disk) is what faults are for, not a harness error; only a request that
// did not reach tierd fails.
func (w Worker) Run(ctx context.Context, s Stack) error {
	if w.Action != "run_once" {
		return invalid(w.Kind(), "not an instant")
	}
	wc, err := workerOf(s, w.Kind())
	if err != nil {
		return err
	}
	if err := wc.WorkerAction(ctx, "run_once"); err != nil {
		return fmt.Errorf("fault %s: %w", w.Kind(), err)
	}
	return nil
}

// workerOf returns s's worker controls, or CodeUnsupported.
func workerOf(s Stack, kind string) (WorkerController, error) {
	wc, ok := s.(WorkerController)
	if !ok {
		return nil, &Error{Code: CodeUnsupported, Kind: kind, Msg: "the service on this stack has no worker controls (WorkerController)"}
	}
	return wc, nil
}

// Apply pauses the worker; Remove resumes it.
func (w Worker) Apply(ctx context.Context, s Stack) (Active, error) {
	if w.Action != "pause" {
		return nil, invalid(w.Kind(), "not a window")
	}
	wc, err := workerOf(s, w.Kind())
	if err != nil {
		return nil, err
	}
	if err := wc.WorkerAction(ctx, "pause"); err != nil {
		return nil, fmt.Errorf("fault %s: %w", w.Kind(), err)
	}
	return active(func(ctx context.Context) error {
		if err := wc.WorkerAction(ctx, "resume"); err != nil {
			return fmt.Errorf("fault %s: resume: %w", w.Kind(), err)
		}
		return nil
	}), nil
}

// Disk fills tierd's data filesystem to ENOSPC (a window: freed at
// removal). It needs a stack with tierd's data on a tmpfs of the harness
// (tierd.Options.TierdDataTmpfs, see Stack.DataTmpfs).
type Disk struct{}

// Kind is KindDiskFill.
func (Disk) Kind() string { return KindDiskFill }

// Family is FamilyDisk.
func (Disk) Family() Family { return FamilyDisk }

// Validate has nothing to check.
func (Disk) Validate() error { return nil }

// String describes the fault.
func (Disk) String() string { return KindDiskFill }

// Apply fills the data filesystem; Remove frees it.
func (d Disk) Apply(ctx context.Context, s Stack) (Active, error) {
	if err := s.Core().DataTmpfs(); err != nil {
		return nil, &Error{Code: CodeUnsupported, Kind: d.Kind(), Msg: "tierd's data is not on a tmpfs of the harness", Err: err}
	}
	if _, err := s.Core().FillData(ctx); err != nil {
		return nil, fmt.Errorf("fault %s: %w", d.Kind(), err)
	}
	return active(func(ctx context.Context) error {
		if err := s.Core().FreeData(ctx); err != nil {
			return fmt.Errorf("fault %s: free: %w", d.Kind(), err)
		}
		return nil
	}), nil
}

// MinIO is a fault of MinIO itself: stop (window: started again at
// removal) or restart (instant). It needs tierd.Options.RestartableMinIO.
type MinIO struct {
	Action string `json:"-"`
}

// Kind is "minio." followed by the action.
func (m MinIO) Kind() string { return "minio." + m.Action }

// Family is FamilyMinIO.
func (MinIO) Family() Family { return FamilyMinIO }

// Validate checks the action.
func (m MinIO) Validate() error {
	if m.Action != "stop" && m.Action != "restart" {
		return &Error{Code: CodeUnknownKind, Kind: m.Kind(), Msg: "unknown MinIO action"}
	}
	return nil
}

// String describes the fault.
func (m MinIO) String() string { return m.Kind() }

// IsInstant reports whether the action happens at one moment.
func (m MinIO) IsInstant() bool { return m.Action == "restart" }

// Run restarts MinIO and waits until it is ready.
func (m MinIO) Run(ctx context.Context, s Stack) error {
	if m.Action != "restart" {
		return invalid(m.Kind(), "not an instant")
	}
	if err := s.Core().RestartMinIO(ctx); err != nil {
		return fmt.Errorf("fault %s: %w", m.Kind(), err)
	}
	return nil
}

// Apply stops MinIO; Remove starts it and waits until it is ready.
func (m MinIO) Apply(ctx context.Context, s Stack) (Active, error) {
	if m.Action != "stop" {
		return nil, invalid(m.Kind(), "not a window")
	}
	if err := s.Core().StopMinIO(ctx); err != nil {
		return nil, fmt.Errorf("fault %s: %w", m.Kind(), err)
	}
	return active(func(ctx context.Context) error {
		if err := s.Core().StartMinIO(ctx); err != nil {
			return fmt.Errorf("fault %s: start: %w", m.Kind(), err)
		}
		return nil
	}), nil
}
