package cleanup

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLookupProcess(t *testing.T) {
	ctx := context.Background()
	p, err := LookupProcess(ctx, os.Getpid())
	require.NoError(t, err)
	assert.False(t, p.Zombie)
	assert.WithinDuration(t, time.Now(), p.Start, time.Hour, "this test process started recently")
	again, err := LookupProcess(ctx, os.Getpid())
	require.NoError(t, err)
	assert.True(t, SameStart(FormatStart(p.Start), FormatStart(again.Start)), "%v vs %v", p.Start, again.Start)

	for _, pid := range []int{0, -1, 1 << 40, exitedPID(t)} {
		_, err := LookupProcess(ctx, pid)
		require.ErrorIs(t, err, ErrNoProcess, "pid %d", pid)
	}
}

// exitedPID returns the PID of a child that has exited and been reaped.
func exitedPID(t *testing.T) int {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func TestProcessLiveness(t *testing.T) {
	ctx := context.Background()
	self, err := LookupProcess(ctx, os.Getpid())
	require.NoError(t, err)
	pid := strconv.Itoa(os.Getpid())
	start := FormatStart(self.Start)
	tests := []struct {
		name       string
		pid, start string
		want       Liveness
	}{
		{"this process", pid, start, LivenessAlive},
		{"within the tolerance", pid, FormatStart(self.Start.Add(StartTolerance / 2)), LivenessAlive},
		{"PID reused (other start)", pid, FormatStart(self.Start.Add(-time.Hour)), LivenessDead},
		{"no such process", strconv.Itoa(exitedPID(t)), start, LivenessDead},
		{"malformed pid", "abc", start, LivenessDead},
		{"zero pid", "0", start, LivenessDead},
		{"older harness's start (clock ticks)", pid, "123456", LivenessUnknown},
		{"malformed start", pid, "yesterday", LivenessUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ProcessLiveness(ctx, tt.pid, tt.start))
		})
	}
}

func TestStartFormat(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 456_000_000, time.UTC)
	s := FormatStart(at)
	assert.Equal(t, "1796605323456", s)
	got, err := ParseStart(s)
	require.NoError(t, err)
	assert.True(t, at.Equal(got))
	tests := []struct {
		a, b string
		same bool
	}{
		{s, s, true},
		{s, FormatStart(at.Add(StartTolerance)), true},
		{s, FormatStart(at.Add(-StartTolerance)), true},
		{s, FormatStart(at.Add(StartTolerance + time.Millisecond)), false},
		{s, "123456", false},
		{"", "", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.same, SameStart(tt.a, tt.b), "%q %q", tt.a, tt.b)
	}
}

func TestLocalOrigin(t *testing.T) {
	ctx := context.Background()
	o := LocalOrigin(ctx)
	require.NotEmpty(t, o)
	assert.Equal(t, o, LocalOrigin(ctx), "stable within a process")
	assert.True(t, strings.HasPrefix(string(o), runtime.GOOS+":"), "%s", o)
	if runtime.GOOS == "linux" {
		boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		require.NoError(t, err)
		assert.Contains(t, string(o), "boot="+strings.TrimSpace(string(boot)))
		ns, err := os.Readlink("/proc/self/ns/pid")
		require.NoError(t, err)
		assert.Contains(t, ns, strings.TrimPrefix(string(o)[strings.Index(string(o), "pidns="):], "pidns="))
	}
}

func TestNewRunLabels(t *testing.T) {
	r, err := NewRun()
	require.NoError(t, err)
	l := r.Labels()
	assert.Equal(t, "true", l[LabelManaged])
	assert.Len(t, l[LabelRun], 12)
	assert.Equal(t, string(LocalOrigin(context.Background())), l[LabelOrigin])
	assert.Equal(t, strconv.Itoa(os.Getpid()), l[LabelPID])
	assert.NotEmpty(t, l[LabelHost])
	assert.Equal(t, LivenessAlive, ProcessLiveness(context.Background(), l[LabelPID], l[LabelPIDStarted]))
	if runtime.GOOS == "linux" {
		// Older harness versions sharing the engine judge the run by /proc's
		// clock ticks: the label keeps that form, so they see it alive.
		b, err := os.ReadFile("/proc/self/stat")
		require.NoError(t, err)
		fields := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+1:])
		assert.Equal(t, fields[19], l[LabelPIDStart])
		assert.NotEqual(t, l[LabelPIDStarted], l[LabelPIDStart])
	} else {
		assert.Equal(t, l[LabelPIDStarted], l[LabelPIDStart])
	}
}
