// Package cleanup labels every Docker object a tierchaos run creates and
// removes them without Ryuk: at the end of a run, from a watchdog process
// when the test process dies (panic, timeout, Ctrl-C), and at the next start
// for leftovers of runs whose process is gone.
package cleanup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Label keys put on every container, network and volume of a run.
const (
	LabelManaged  = "org.tierchaos.managed"
	LabelRun      = "org.tierchaos.run"
	LabelPID      = "org.tierchaos.pid"
	LabelPIDStart = "org.tierchaos.pid-start"
)

// Run identifies one harness run (one test process).
type Run struct {
	ID string
	// PID and PIDStart identify the owning process; PIDStart (the start
	// time in clock ticks from /proc) guards against PID reuse.
	PID      int
	PIDStart string
}

// NewRun returns a Run owned by the current process.
func NewRun() (Run, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Run{}, fmt.Errorf("cleanup: run id: %w", err)
	}
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return Run{}, err
	}
	return Run{ID: hex.EncodeToString(b[:]), PID: pid, PIDStart: start}, nil
}

// Labels returns the labels for objects of this run.
func (r Run) Labels() map[string]string {
	return map[string]string{
		LabelManaged:  "true",
		LabelRun:      r.ID,
		LabelPID:      strconv.Itoa(r.PID),
		LabelPIDStart: r.PIDStart,
	}
}

// Report counts what a removal removed.
type Report struct {
	Containers, Networks, Volumes int
}

// RemoveRun force-removes every container, then network and volume,
// labelled with the run id.
func RemoveRun(ctx context.Context, cli client.APIClient, runID string) (Report, error) {
	return remove(ctx, cli, func(labels map[string]string) bool { return labels[LabelRun] == runID })
}

// RemoveAll removes the objects of every tierchaos run, live or dead.
func RemoveAll(ctx context.Context, cli client.APIClient) (Report, error) {
	return remove(ctx, cli, func(map[string]string) bool { return true })
}

// RemoveDead removes the objects of every run whose owning process no
// longer exists on this host. Live runs of parallel test processes are left
// alone.
func RemoveDead(ctx context.Context, cli client.APIClient) (Report, error) {
	return remove(ctx, cli, func(labels map[string]string) bool {
		pid, err := strconv.Atoi(labels[LabelPID])
		if err != nil {
			return true // unparseable owner: cannot be alive
		}
		start, err := processStart(pid)
		return err != nil || start != labels[LabelPIDStart]
	})
}

func remove(ctx context.Context, cli client.APIClient, match func(map[string]string) bool) (Report, error) {
	var rep Report
	var errs []error
	f := make(client.Filters).Add("label", LabelManaged+"=true")
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return rep, fmt.Errorf("cleanup: list containers: %w", err)
	}
	for _, c := range cs.Items {
		if !match(c.Labels) {
			continue
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
			continue
		}
		rep.Containers++
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return rep, fmt.Errorf("cleanup: list networks: %w", err)
	}
	for _, n := range ns.Items {
		if !match(n.Labels) {
			continue
		}
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		rep.Networks++
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return rep, fmt.Errorf("cleanup: list volumes: %w", err)
	}
	for _, v := range vs.Items {
		if !match(v.Labels) {
			continue
		}
		if _, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
			continue
		}
		rep.Volumes++
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("cleanup: %w", errors.Join(errs...))
	}
	return rep, nil
}

// processStart returns field 22 (starttime) of /proc/PID/stat.
func processStart(pid int) (string, error) {
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
