//go:build e2e

package dockerenv

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unsetenv unsets key for the test and restores it afterwards.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	old, had := os.LookupEnv(key)
	require.NoError(t, os.Unsetenv(key))
	t.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

// TestOpenAppliesTheDecision opens a client against this machine's engine
// twice: with the variable unset, Open sets it exactly when its decision
// says so; with the user's own value, Open leaves it alone.
func TestOpenAppliesTheDecision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	unsetenv(t, EnvHostOverride)
	cli, d, err := Open(ctx)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and no Docker engine answers: %v", err)
		}
		t.Skipf("SKIP: no Docker engine answers (%v)", err)
	}
	info, err := cli.Client.Info(ctx, client.InfoOptions{})
	require.NoError(t, err)
	want, err := DecideHostOverride(HostEnv{
		DockerHostEnv: os.Getenv(EnvDockerHost), DaemonHost: cli.DaemonHost(), InContainer: InContainer(),
		GOOS: runtime.GOOS, DockerDesktop: IsDockerDesktop(info.Info.OperatingSystem, info.Info.Name),
	})
	require.NoError(t, err)
	require.NoError(t, cli.Close())
	assert.Equal(t, want, d, "Open decides as DecideHostOverride does")
	got, set := os.LookupEnv(EnvHostOverride)
	assert.Equal(t, d.Set, set, d.Reason)
	assert.Equal(t, d.Value, got)
	t.Logf("decision here: %+v", d)

	t.Setenv(EnvHostOverride, "192.0.2.7")
	cli, d, err = Open(ctx)
	require.NoError(t, err)
	require.NoError(t, cli.Close())
	assert.False(t, d.Set)
	assert.Equal(t, ReasonUserSet, d.Reason)
	assert.Equal(t, "192.0.2.7", os.Getenv(EnvHostOverride))
}
