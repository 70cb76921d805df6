//go:build e2e

package cleanup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/dockerenv"
	"github.com/tierchaos/tierchaos/harness/images"
)

// TestMain serves as the watchdog's entry point too: StartWatchdog
// re-executes this test binary.
func TestMain(m *testing.M) {
	if RunWatchdogIfRequested() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// docker returns a client, failing under CI and skipping elsewhere when no
// engine answers.
func docker(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := dockerenv.Client(ctx)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and no Docker engine answers: %v", err)
		}
		t.Skipf("SKIP: no Docker engine answers (%v); set CI=true to make this a failure", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli.Client
}

func randomID(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// plant creates a container (never started), a network and a volume with
// run's labels, and removes whatever is left of them when t ends.
func plant(ctx context.Context, t *testing.T, cli *client.Client, image string, run Run) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := RemoveRun(ctx, cli, run.ID)
		assert.NoError(t, err)
	})
	name := "tierchaos-cleanup-e2e-" + run.ID
	_, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name, Config: &container.Config{Image: image, Labels: run.Labels()},
	})
	require.NoError(t, err)
	_, err = cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Labels: run.Labels()})
	require.NoError(t, err)
	_, err = cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: run.Labels()})
	require.NoError(t, err)
}

// left counts the containers, networks and volumes of a run.
func left(ctx context.Context, t *testing.T, cli *client.Client, runID string) [3]int {
	t.Helper()
	f := make(client.Filters).Add("label", LabelRun+"="+runID)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	require.NoError(t, err)
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	require.NoError(t, err)
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	require.NoError(t, err)
	return [3]int{len(cs.Items), len(ns.Items), len(vs.Items)}
}

// TestRemoveDeadLeavesOtherOrigins plants the objects of four runs on the
// engine and runs RemoveDead as every harness start does: the dead run of
// this origin is removed; the live run of this origin, a run of another
// origin whose PID is dead here, and a run of an older harness without an
// origin stay (they are minutes old, far below the foreign age).
func TestRemoveDeadLeavesOtherOrigins(t *testing.T) {
	t.Setenv(EnvForeignAge, "") // the default age, whatever the caller set
	cli := docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set, err := images.Ensure(ctx, cli, images.Options{Progress: os.Stderr})
	require.NoError(t, err)

	alive, err := NewRun()
	require.NoError(t, err)
	self, err := LookupProcess(ctx, os.Getpid())
	require.NoError(t, err)
	dead := alive
	dead.ID = randomID(t)
	// This PID, reused by us. The older harness's label stays right, so
	// that older harness versions sharing this engine leave every planted
	// run alone.
	dead.PIDStarted = FormatStart(self.Start.Add(-time.Hour))
	foreign := dead
	foreign.ID = randomID(t)
	foreign.Origin = Origin("e2e-other-host:" + randomID(t))
	legacy := dead
	legacy.ID = randomID(t)
	legacy.Origin = ""
	for _, r := range []Run{alive, dead, foreign, legacy} {
		plant(ctx, t, cli, set.Toxiproxy, r)
	}
	require.Equal(t, LivenessDead, ProcessLiveness(ctx, foreign.Labels()[LabelPID], foreign.PIDStarted),
		"the other origin's run would count as dead if it were judged here")

	rep, err := RemoveDead(ctx, cli)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rep.Removed(), 3, "%+v", rep)
	assert.GreaterOrEqual(t, rep.Kept, 9, "%+v", rep)
	assert.Equal(t, [3]int{0, 0, 0}, left(ctx, t, cli, dead.ID), "dead run of this origin")
	assert.Equal(t, [3]int{1, 1, 1}, left(ctx, t, cli, alive.ID), "live run of this origin")
	assert.Equal(t, [3]int{1, 1, 1}, left(ctx, t, cli, foreign.ID), "run of another origin")
	assert.Equal(t, [3]int{1, 1, 1}, left(ctx, t, cli, legacy.ID), "run without an origin")
}

// TestWatchdogRemovesTheRunAndReports starts a real watchdog for a run
// with a volume left behind: stopping it removes the volume, and what the
// watchdog logged reaches the caller (here a buffer; standard error in the
// harness) before its log file is removed.
func TestWatchdogRemovesTheRunAndReports(t *testing.T) {
	cli := docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := NewRun()
	require.NoError(t, err)
	_, err = cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "tierchaos-cleanup-e2e-" + run.ID, Labels: run.Labels()})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = RemoveRun(context.Background(), cli, run.ID) })

	wd, err := StartWatchdog(run)
	require.NoError(t, err)
	assert.Equal(t, WatchdogLogPath(run.ID), wd.LogPath())
	assert.FileExists(t, wd.LogPath())
	var relayed bytes.Buffer
	wd.relay = &relayed
	require.NoError(t, wd.Stop())

	assert.Equal(t, [3]int{0, 0, 0}, left(ctx, t, cli, run.ID))
	out := relayed.String()
	assert.True(t, strings.Contains(out, "removed the run's objects") && strings.Contains(out, "volumes=1"), "relayed log:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		assert.Contains(t, line, "component=tierchaos-watchdog run="+run.ID, "only the watchdog's own lines")
	}
	assert.NoFileExists(t, wd.LogPath())
}
