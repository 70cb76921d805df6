// Package dockerenv prepares the process environment that Testcontainers
// needs on machines without a container registry, and opens Docker clients.
package dockerenv

import (
	"context"
	"fmt"
	"os"

	"github.com/testcontainers/testcontainers-go"
)

// Defaults returns the environment variables the harness sets when the user
// has not set them: Ryuk cannot be pulled without a registry (the harness
// cleans up by label instead), and host-side clients must only ever connect
// to 127.0.0.1 (Testcontainers otherwise probes a gateway address when it
// believes it runs inside a container, as it does where /.dockerenv exists).
func Defaults() map[string]string {
	return map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	}
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
// no engine answers.
func Client(ctx context.Context) (*testcontainers.DockerClient, error) {
	if err := Prepare(); err != nil {
		return nil, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("dockerenv: no Docker engine: %w", err)
	}
	return cli, nil
}
