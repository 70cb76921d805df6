package monitor

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/process"
)

// Proc samples a local process through gopsutil: /proc on Linux, the
// kernel's process table on macOS and other systems.
type Proc struct {
	pid int
	p   *process.Process
	env common.EnvMap
}

// NewProc returns a sampler of process pid, after one reading to make sure
// the process can be sampled. procRoot ("" for /proc) names
// another mount of the proc file system on Linux (for example the host's,
// seen from a container); other systems have none and ignore it.
func NewProc(pid int, procRoot string) (*Proc, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return nil, fmt.Errorf("%w: pid %d out of range", ErrSample, pid)
	}
	s := &Proc{pid: pid}
	if procRoot != "" {
		s.env = common.EnvMap{common.HostProcEnvKey: procRoot}
	}
	p, err := process.NewProcessWithContext(s.ctx(context.Background()), int32(pid))
	if err != nil {
		return nil, fmt.Errorf("%w: pid %d: %w", ErrSample, pid, err)
	}
	s.p = p
	if _, err := s.Sample(context.Background()); err != nil {
		return nil, err // a process that cannot be sampled now never will be
	}
	return s, nil
}

// ctx carries procRoot to gopsutil.
func (p *Proc) ctx(ctx context.Context) context.Context {
	if p.env == nil {
		return ctx
	}
	return context.WithValue(ctx, common.EnvKey, p.env)
}

// Name implements Sampler.
func (p *Proc) Name() string { return "proc:" + strconv.Itoa(p.pid) }

// Sample implements Sampler: user + system CPU time and resident memory.
func (p *Proc) Sample(ctx context.Context) (Raw, error) {
	ctx = p.ctx(ctx)
	times, err := p.p.TimesWithContext(ctx)
	if err != nil {
		return Raw{}, fmt.Errorf("%w: pid %d: cpu times: %w", ErrSample, p.pid, err)
	}
	mem, err := p.p.MemoryInfoWithContext(ctx)
	if err != nil {
		return Raw{}, fmt.Errorf("%w: pid %d: memory: %w", ErrSample, p.pid, err)
	}
	return Raw{
		CPU: time.Duration((times.User + times.System) * float64(time.Second)),
		RSS: mem.RSS,
	}, nil
}
