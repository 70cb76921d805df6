package monitor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/procfs"
)

// Proc samples a local process from /proc.
type Proc struct {
	pid int
	fs  procfs.FS
}

// NewProc returns a sampler of process pid, reading procRoot ("" for /proc).
func NewProc(pid int, procRoot string) (*Proc, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSample, err)
	}
	if _, err := fs.Proc(pid); err != nil {
		return nil, fmt.Errorf("%w: pid %d: %w", ErrSample, pid, err)
	}
	return &Proc{pid: pid, fs: fs}, nil
}

// Name implements Sampler.
func (p *Proc) Name() string { return "proc:" + strconv.Itoa(p.pid) }

// Sample implements Sampler.
func (p *Proc) Sample(context.Context) (Raw, error) {
	pr, err := p.fs.Proc(p.pid)
	if err != nil {
		return Raw{}, fmt.Errorf("%w: %w", ErrSample, err)
	}
	st, err := pr.Stat()
	if err != nil {
		return Raw{}, fmt.Errorf("%w: %w", ErrSample, err)
	}
	return Raw{
		CPU: time.Duration(st.CPUTime() * float64(time.Second)),
		RSS: uint64(st.ResidentMemory()),
	}, nil
}
