package cleanup

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// legacyStart returns field 22 (starttime, clock ticks since boot) of
// /proc/PID/stat: the start older harness versions label and judge runs by.
func legacyStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", fmt.Errorf("cleanup: process %d: %w", pid, err)
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("cleanup: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return "", fmt.Errorf("cleanup: short /proc/%d/stat", pid)
	}
	return fields[19], nil
}
