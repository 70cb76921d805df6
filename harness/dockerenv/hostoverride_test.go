package dockerenv

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecideHostOverride(t *testing.T) {
	const sock = "unix:///var/run/docker.sock"
	tests := []struct {
		name   string
		env    HostEnv
		set    bool
		reason string
	}{
		{"local socket inside a container", HostEnv{DaemonHost: sock, InContainer: true, GOOS: "linux"}, true, ReasonLocalSocket},
		{"DOCKER_HOST on a local socket inside a container", HostEnv{DockerHostEnv: "unix:///run/user/1000/docker.sock", DaemonHost: "unix:///run/user/1000/docker.sock", InContainer: true, GOOS: "linux"}, true, ReasonLocalSocket},
		{"user's own setting", HostEnv{UserSet: true, UserValue: "10.0.0.5", DaemonHost: sock, InContainer: true, GOOS: "linux"}, false, ReasonUserSet},
		{"user set it empty", HostEnv{UserSet: true, DaemonHost: sock, InContainer: true, GOOS: "linux"}, false, ReasonUserSet},
		{"local socket on a plain host", HostEnv{DaemonHost: sock, GOOS: "linux"}, false, ReasonNotContainer},
		{"remote tcp DOCKER_HOST", HostEnv{DockerHostEnv: "tcp://ci-docker:2376", DaemonHost: "tcp://ci-docker:2376", InContainer: true, GOOS: "linux"}, false, ReasonRemoteEnv},
		{"ssh DOCKER_HOST (client dials through a helper)", HostEnv{DockerHostEnv: "ssh://me@builder", DaemonHost: "http://docker.example.com", InContainer: true, GOOS: "linux"}, false, ReasonRemoteEnv},
		{"remote engine from a Docker context", HostEnv{DaemonHost: "tcp://10.1.2.3:2375", InContainer: true, GOOS: "linux"}, false, ReasonRemoteEngine},
		{"ssh engine from a Docker context", HostEnv{DaemonHost: "ssh://me@builder", InContainer: true, GOOS: "linux"}, false, ReasonRemoteEngine},
		{"Docker Desktop engine seen from a dev container", HostEnv{DaemonHost: sock, InContainer: true, DockerDesktop: true, GOOS: "linux"}, false, ReasonDesktop},
		{"macOS", HostEnv{DaemonHost: "unix:///Users/me/.docker/run/docker.sock", GOOS: "darwin"}, false, ReasonNotLinux},
		{"Windows named pipe", HostEnv{DaemonHost: "npipe:////./pipe/docker_engine", GOOS: "windows"}, false, ReasonRemoteEngine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecideHostOverride(tt.env)
			require.NoError(t, err)
			assert.Equal(t, tt.set, d.Set)
			assert.Equal(t, tt.reason, d.Reason)
			if tt.set {
				assert.Equal(t, Loopback, d.Value)
			} else {
				assert.Empty(t, d.Value)
			}
		})
	}
}

func TestDecideHostOverrideRejectsBadHosts(t *testing.T) {
	tests := []struct {
		name string
		env  HostEnv
		bad  string
	}{
		{"DOCKER_HOST without scheme", HostEnv{DockerHostEnv: "/var/run/docker.sock", DaemonHost: "unix:///var/run/docker.sock", GOOS: "linux"}, "/var/run/docker.sock"},
		{"DOCKER_HOST unparseable", HostEnv{DockerHostEnv: "tcp://[::1", DaemonHost: "unix:///var/run/docker.sock", GOOS: "linux"}, "tcp://[::1"},
		{"resolved engine without scheme", HostEnv{DaemonHost: "docker.sock", GOOS: "linux"}, "docker.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecideHostOverride(tt.env)
			var de *Error
			require.True(t, errors.As(err, &de), "%v", err)
			assert.Equal(t, CodeBadDockerHost, de.Code)
			assert.Equal(t, tt.bad, de.Value)
		})
	}
}

func TestIsDockerDesktop(t *testing.T) {
	assert.True(t, IsDockerDesktop("Docker Desktop", "docker-desktop"))
	assert.True(t, IsDockerDesktop("Docker Desktop", "host"))
	assert.False(t, IsDockerDesktop("Debian GNU/Linux 12 (bookworm)", "vm"))
	assert.False(t, IsDockerDesktop("Ubuntu 24.04 LTS", "ci-runner"))
}

func TestDefaultsLeaveTheHostOverrideToTheDecision(t *testing.T) {
	d := Defaults()
	assert.Equal(t, "true", d[EnvRyukDisabled])
	assert.NotContains(t, d, EnvHostOverride)
}
