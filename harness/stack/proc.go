package stack

import (
	"context"

	"github.com/tierchaos/tierchaos/harness/cleanup"
)

// procStart returns the start time of process pid in cleanup's label form
// (cleanup.FormatStart), which tells it apart from a later process that
// reuses the PID.
func procStart(pid int) (string, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns whether process pid is a zombie (ended, not reaped) and
// its start time in cleanup's label form. It works wherever gopsutil reads
// processes (Linux, macOS).
func procStat(pid int) (zombie bool, start string, err error) {
	p, err := cleanup.LookupProcess(context.Background(), pid)
	if err != nil {
		return false, "", err
	}
	return p.Zombie, cleanup.FormatStart(p.Start), nil
}
