//go:build !linux

package cleanup

// legacyStart returns "": older harness versions ran on Linux only, so
// elsewhere there is no older form to keep (NewRun uses PIDStarted).
func legacyStart(int) (string, error) { return "", nil }
