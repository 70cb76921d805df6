// Package dockerenv prepares the process environment that Testcontainers
// needs on machines without a container registry, and opens Docker clients
// the same way everywhere in the harness (the test process, its cleanup
// watchdog and the commands): through Testcontainers, which finds the
// engine from its own settings, DOCKER_HOST, the current Docker context or
// the default socket.
package dockerenv

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Environment variables this package reads or sets.
const (
	EnvRyukDisabled = "TESTCONTAINERS_RYUK_DISABLED"
	EnvHostOverride = "TESTCONTAINERS_HOST_OVERRIDE"
	EnvDockerHost   = "DOCKER_HOST"
)

// Defaults returns the environment variables the harness sets when the user
// has not set them: Ryuk cannot be pulled without a registry (the harness
// cleans up by label instead). TESTCONTAINERS_HOST_OVERRIDE is decided per
// engine (DecideHostOverride) once a client is open.
func Defaults() map[string]string {
	return map[string]string{EnvRyukDisabled: "true"}
}

// Prepare sets every variable of Defaults that is not already set. It must
// run before the first Testcontainers call of the process.
func Prepare() error {
	for k, v := range Defaults() {
		if _, ok := os.LookupEnv(k); ok {
			continue
		}
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("dockerenv: set %s: %w", k, err)
		}
	}
	return nil
}

// Client prepares the environment and opens a Docker client, failing when
// no engine answers; see Open.
func Client(ctx context.Context) (*testcontainers.DockerClient, error) {
	cli, _, err := Open(ctx)
	return cli, err
}

// Open prepares the environment, opens a Docker client (failing when no
// engine answers), and sets TESTCONTAINERS_HOST_OVERRIDE where
// DecideHostOverride says so; it returns that decision.
func Open(ctx context.Context) (*testcontainers.DockerClient, HostOverride, error) {
	if err := Prepare(); err != nil {
		return nil, HostOverride{}, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, HostOverride{}, fmt.Errorf("dockerenv: no Docker engine: %w", err)
	}
	d, err := applyHostOverride(ctx, cli.Client)
	if err != nil {
		_ = cli.Close()
		return nil, HostOverride{}, err
	}
	return cli, d, nil
}

// applyHostOverride gathers what DecideHostOverride needs and sets the
// variable when it says so. It asks the engine whether it is Docker
// Desktop only when that is the last open question.
func applyHostOverride(ctx context.Context, cli *client.Client) (HostOverride, error) {
	user, userSet := os.LookupEnv(EnvHostOverride)
	env := HostEnv{
		UserSet: userSet, UserValue: user,
		DockerHostEnv: os.Getenv(EnvDockerHost),
		DaemonHost:    cli.DaemonHost(),
		InContainer:   InContainer(),
		GOOS:          runtime.GOOS,
	}
	d, err := DecideHostOverride(env)
	if err != nil || !d.Set {
		return d, err
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return HostOverride{}, fmt.Errorf("dockerenv: engine info: %w", err)
	}
	env.DockerDesktop = IsDockerDesktop(info.Info.OperatingSystem, info.Info.Name)
	if d, err = DecideHostOverride(env); err != nil || !d.Set {
		return d, err
	}
	if err := os.Setenv(EnvHostOverride, d.Value); err != nil {
		return HostOverride{}, fmt.Errorf("dockerenv: set %s: %w", EnvHostOverride, err)
	}
	return d, nil
}
