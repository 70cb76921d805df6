package dockerenv

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// HostEnv is what the host override decision depends on.
type HostEnv struct {
	// UserSet and UserValue: TESTCONTAINERS_HOST_OVERRIDE as found.
	UserSet   bool
	UserValue string
	// DockerHostEnv is DOCKER_HOST as set ("" when unset).
	DockerHostEnv string
	// DaemonHost is the engine endpoint the client resolved
	// (unix:///var/run/docker.sock, tcp://host:2376, ...).
	DaemonHost string
	// InContainer: this process runs in a container (InContainer).
	InContainer bool
	// DockerDesktop: the engine is Docker Desktop (IsDockerDesktop).
	DockerDesktop bool
	// GOOS is the operating system of this process.
	GOOS string
}

// HostOverride is the decision on TESTCONTAINERS_HOST_OVERRIDE.
type HostOverride struct {
	// Set is true when the harness sets the variable to Value.
	Set   bool
	Value string
	// Reason explains the decision.
	Reason string
}

// Loopback is the override the harness sets: it publishes every port on
// 127.0.0.1 only.
const Loopback = "127.0.0.1"

// ErrorCode is a stable, machine-readable code of a dockerenv error.
type ErrorCode string

// CodeBadDockerHost: DOCKER_HOST, or the endpoint the client resolved, is
// not a URL with a scheme.
const CodeBadDockerHost ErrorCode = "bad_docker_host"

// Error is a dockerenv error with a stable code.
type Error struct {
	Code  ErrorCode
	Value string
	Err   error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("dockerenv: %s: %q", e.Code, e.Value)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Reasons of decisions.
const (
	ReasonUserSet      = "set by the user; left as it is"
	ReasonRemoteEnv    = "DOCKER_HOST names a remote engine; Testcontainers uses its host"
	ReasonRemoteEngine = "the engine is not on a local Unix socket; Testcontainers uses its host"
	ReasonNotLinux     = "not Linux: the engine runs in a VM (Docker Desktop or alike) that forwards published ports to localhost"
	ReasonDesktop      = "the engine is Docker Desktop, which forwards published ports to the host"
	ReasonNotContainer = "not in a container: Testcontainers uses localhost"
	ReasonLocalSocket  = "local Unix socket seen from inside a container: ports published on 127.0.0.1 are reached on loopback, not on the bridge gateway Testcontainers would pick"
)

// DecideHostOverride decides whether the harness sets
// TESTCONTAINERS_HOST_OVERRIDE, and to what. Testcontainers, when it
// believes it runs in a container and talks to a Unix socket, looks for the
// engine's published ports on the bridge network's gateway; the harness
// publishes them on 127.0.0.1, so there (an engine in this container, or
// one sharing its network) the override to 127.0.0.1 is needed. It is never
// set for a remote engine (DOCKER_HOST or a context with tcp://, ssh://),
// for Docker Desktop, outside a container, or when the user set it.
func DecideHostOverride(e HostEnv) (HostOverride, error) {
	if e.UserSet {
		return HostOverride{Reason: ReasonUserSet}, nil
	}
	if e.DockerHostEnv != "" {
		scheme, err := schemeOf(e.DockerHostEnv)
		if err != nil {
			return HostOverride{}, err
		}
		if scheme != "unix" {
			return HostOverride{Reason: ReasonRemoteEnv}, nil
		}
	}
	scheme, err := schemeOf(e.DaemonHost)
	if err != nil {
		return HostOverride{}, err
	}
	switch {
	case scheme != "unix":
		return HostOverride{Reason: ReasonRemoteEngine}, nil
	case e.GOOS != "linux":
		return HostOverride{Reason: ReasonNotLinux}, nil
	case e.DockerDesktop:
		return HostOverride{Reason: ReasonDesktop}, nil
	case !e.InContainer:
		return HostOverride{Reason: ReasonNotContainer}, nil
	}
	return HostOverride{Set: true, Value: Loopback, Reason: ReasonLocalSocket}, nil
}

// schemeOf returns the lower-case scheme of a Docker endpoint URL.
func schemeOf(host string) (string, error) {
	u, err := url.Parse(host)
	if err != nil {
		return "", &Error{Code: CodeBadDockerHost, Value: host, Err: err}
	}
	if u.Scheme == "" {
		return "", &Error{Code: CodeBadDockerHost, Value: host, Err: errors.New("no scheme (want unix://, tcp://, ssh://, ...)")}
	}
	return strings.ToLower(u.Scheme), nil
}

// InContainer reports whether this process runs in a container: Docker
// writes /.dockerenv, Podman /run/.containerenv.
func InContainer() bool {
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(f); err == nil {
			return true
		}
	}
	return false
}

// IsDockerDesktop reports whether an engine with this operating system and
// name (from its /info) is Docker Desktop.
func IsDockerDesktop(operatingSystem, name string) bool {
	return strings.Contains(operatingSystem, "Docker Desktop") || name == "docker-desktop"
}
