package nemesis

import "github.com/tierchaos/tierchaos/harness/fault"

// Excused reports whether the failure of applied[i] is explained by the
// run itself rather than by the harness: the step acts through the
// service (the worker family sends it a request) and its application
// overlapped a process-family step (a kill, restart, pause,
// reconfiguration or power cut, from its start until the service was
// ready again), so its request met the service down. Runners report such
// a failure as a note, never as a finding. A process step's own failure,
// and any step that does not go through the service, is never excused.
func Excused(applied []Applied, i int) bool {
	a := applied[i]
	if a.Error == "" || a.Kind == "" || a.Family != fault.FamilyWorker {
		return false
	}
	for j, p := range applied {
		if j == i || p.Kind == "" || p.Family != fault.FamilyProcess {
			continue
		}
		if a.Start <= p.End && p.Start <= a.End {
			return true
		}
	}
	return false
}
