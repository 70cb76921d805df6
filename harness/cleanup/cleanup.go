// Package cleanup labels every Docker object a tierchaos run creates and
// removes them without Ryuk: at the end of a run, from a watchdog process
// when the test process dies (panic, timeout, Ctrl-C), and at the next start
// for leftovers of runs whose process is gone. Runs are judged by their
// owning process only where that process can be looked up (the same
// origin, see Origin); objects of other origins sharing the Docker engine
// are left alone until they are older than a generous age (Policy).
package cleanup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Label keys put on every container, network and volume of a run.
const (
	LabelManaged = "org.tierchaos.managed"
	LabelRun     = "org.tierchaos.run"
	// LabelOrigin holds the run's Origin: where its PID means something.
	LabelOrigin = "org.tierchaos.origin"
	// LabelHost is the host name of the run's machine or container, for
	// people reading labels; no decision depends on it.
	LabelHost = "org.tierchaos.host"
	LabelPID  = "org.tierchaos.pid"
	// LabelPIDStarted is the owner's start time in FormatStart's form; runs
	// of this origin are judged by it.
	LabelPIDStarted = "org.tierchaos.pid-started"
	// LabelPIDStart is the owner's start as older harness versions write
	// and judge it (clock ticks since boot from /proc on Linux): kept so
	// that an older harness sharing the engine sees this run as alive.
	LabelPIDStart = "org.tierchaos.pid-start"
)

// Run identifies one harness run (one test process).
type Run struct {
	ID string
	// Origin is where the owning process runs (see Origin); Host its host
	// name.
	Origin Origin
	Host   string
	// PID and PIDStarted identify the owning process; PIDStarted (its
	// start time in FormatStart's form, through gopsutil) guards against
	// PID reuse.
	PID        int
	PIDStarted string
	// PIDStart is the start as older harness versions wrote it (clock
	// ticks since boot from /proc/PID/stat on Linux; PIDStarted
	// elsewhere). The host tmpfs owner files of tierd's adapter (harness/tierd) use it.
	PIDStart string
}

// NewRun returns a Run owned by the current process.
func NewRun() (Run, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Run{}, fmt.Errorf("cleanup: run id: %w", err)
	}
	ctx := context.Background()
	pid := os.Getpid()
	p, err := LookupProcess(ctx, pid)
	if err != nil {
		return Run{}, err
	}
	started := FormatStart(p.Start)
	legacy, err := legacyStart(pid)
	if err != nil {
		return Run{}, err
	}
	if legacy == "" {
		legacy = started
	}
	return Run{
		ID: hex.EncodeToString(b[:]), Origin: LocalOrigin(ctx), Host: hostname(),
		PID: pid, PIDStarted: started, PIDStart: legacy,
	}, nil
}

// Labels returns the labels for objects of this run.
func (r Run) Labels() map[string]string {
	return map[string]string{
		LabelManaged:    "true",
		LabelRun:        r.ID,
		LabelOrigin:     string(r.Origin),
		LabelHost:       r.Host,
		LabelPID:        strconv.Itoa(r.PID),
		LabelPIDStarted: r.PIDStarted,
		LabelPIDStart:   r.PIDStart,
	}
}

// Report counts what a removal removed, and what RemoveDead left alone.
type Report struct {
	Containers, Networks, Volumes int
	// Kept counts the objects a policy judged and kept (live runs of this
	// origin, and young objects of other origins).
	Kept int
}

// Removed is the number of objects removed.
func (r Report) Removed() int { return r.Containers + r.Networks + r.Volumes }

// RemoveRun force-removes every container, then network and volume,
// labelled with the run id.
func RemoveRun(ctx context.Context, cli client.APIClient, runID string) (Report, error) {
	return remove(ctx, cli, func(labels map[string]string, _ time.Time) bool { return labels[LabelRun] == runID })
}

// RemoveAll removes the objects of every tierchaos run, live or dead, of
// every origin.
func RemoveAll(ctx context.Context, cli client.APIClient) (Report, error) {
	return remove(ctx, cli, func(map[string]string, time.Time) bool { return true })
}

// RemoveDead removes the objects of runs of this origin whose owning
// process is gone, and objects of other origins older than the foreign
// age (EnvForeignAge, default DefaultForeignAge). Live runs of parallel
// test processes, and runs of other machines or containers sharing the
// Docker engine, are left alone.
func RemoveDead(ctx context.Context, cli client.APIClient) (Report, error) {
	p, err := PolicyFromEnv(ctx, nil)
	if err != nil {
		return Report{}, err
	}
	return p.Sweep(ctx, cli)
}

// Sweep removes every tierchaos object the policy's Judge removes.
func (p Policy) Sweep(ctx context.Context, cli client.APIClient) (Report, error) {
	if p.Origin == "" {
		return Report{}, errNoOrigin
	}
	kept := 0
	rep, err := remove(ctx, cli, func(labels map[string]string, created time.Time) bool {
		v := p.Judge(ctx, labels, created)
		if !v.Remove {
			kept++
		}
		return v.Remove
	})
	rep.Kept = kept
	return rep, err
}

func remove(ctx context.Context, cli client.APIClient, match func(map[string]string, time.Time) bool) (Report, error) {
	var rep Report
	var errs []error
	f := make(client.Filters).Add("label", LabelManaged+"=true")
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return rep, fmt.Errorf("cleanup: list containers: %w", err)
	}
	for _, c := range cs.Items {
		if !match(c.Labels, unixTime(c.Created)) {
			continue
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", short(c.ID), err))
			continue
		}
		rep.Containers++
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return rep, fmt.Errorf("cleanup: list networks: %w", err)
	}
	for _, n := range ns.Items {
		if !match(n.Labels, n.Created) {
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
		created, _ := time.Parse(time.RFC3339Nano, v.CreatedAt) // zero when the driver gives none
		if !match(v.Labels, created) {
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

// unixTime is a Docker creation time in seconds, zero when unset.
func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

// short is the 12-character form of a Docker object id.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
