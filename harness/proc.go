package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStart returns field 22 (starttime) of /proc/PID/stat.
func procStart(pid int) (string, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns fields 3 (state, 'Z' for a zombie) and 22 (starttime)
// of /proc/PID/stat.
func procStat(pid int) (byte, string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, "", fmt.Errorf("short /proc/%d/stat", pid)
	}
	return fields[0][0], fields[19], nil
}
