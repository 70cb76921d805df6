package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/harness/images"
)

// Modes of the service under test.
const (
	// ModeContainer runs the service in a container of its image (a black
	// box).
	ModeContainer = "container"
	// ModeInProcess runs the service inside the test process through its
	// Service.InProcess start function, so that -race sees its data races;
	// MinIO, Toxiproxy and the S3 fault layer still run in containers.
	ModeInProcess = "inprocess"
)

// EnvSUT selects the mode when Options.Mode is empty: "container" (the
// default) or "inprocess".
const EnvSUT = "TIERCHAOS_SUT"

// Service describes the user's service under test: how to get its image
// or start it in the test process, its ports, its environment, when it is
// ready, and where its data lives. The stack starts it after MinIO, the
// S3 fault layer and Toxiproxy, pointed at S3 through both fault layers.
type Service struct {
	// Name is the service's container name and network alias ("tierd",
	// "kvstore"): lower case letters, digits and '-'.
	Name string
	// Image is a ready image reference. Either it or Build is needed for
	// the container mode.
	Image string
	// Build builds the image from Go source (harness/images): a FROM
	// scratch image with the binary, running as images.RunUser.
	Build *images.Own
	// Cmd overrides the image's command (its arguments).
	Cmd []string
	// Ports are the service's ports, by name; each is published on
	// 127.0.0.1 of the host in the container mode (Stack.Endpoint).
	Ports []Port
	// Env returns the service's environment for where it runs: the S3
	// endpoint (the S3 fault layer, itself in front of Toxiproxy and
	// MinIO), credentials and bucket, and its data directory. The stack
	// adds Options.Env, and Reconfigure's settings, over it.
	Env func(t Target) map[string]string
	// Ready says when the service serves; polled with a deadline after
	// every start.
	Ready Probe
	// ReadyTimeout bounds the wait for readiness; one minute when zero.
	ReadyTimeout time.Duration
	// DataDir, when set, is where the service keeps its data in its
	// container: a Docker volume (a tmpfs volume with Options.DataTmpfs)
	// is mounted there and kept, with the data sidecar, across kills and
	// restarts. In process the service gets a directory of the stack.
	DataDir string
	// StopTimeout is how long a graceful stop waits before SIGKILL; 10 s
	// when zero.
	StopTimeout time.Duration
	// InProcess starts one instance of the service in the test process
	// (ModeInProcess); nil when the service only runs in a container.
	InProcess func(ctx context.Context, p InProcess) (Instance, error)
	// BeforeClear and AfterClear, when set, run at the start and at the
	// end of ClearFaults (AfterClear only while the service runs): the
	// adapter's own clearing, such as disarming a planted defect or
	// restoring the service's background state through its API.
	BeforeClear, AfterClear func(ctx context.Context) error
}

// Port is a named port of the service.
type Port struct {
	// Name is how tests ask for it ("api").
	Name string
	// Container is the port in the container, "8080/tcp".
	Container string
}

// Probe says when the service is ready: an HTTP GET of Path on the port
// named Port answering 2xx, or Func returning nil. Exactly one of Path
// and Func is set.
type Probe struct {
	Port string
	Path string
	Func func(ctx context.Context, endpoint func(port string) (string, error)) error
}

// Target is what Service.Env gets to point the service at the stack.
type Target struct {
	// Mode is ModeContainer or ModeInProcess.
	Mode string
	// S3Endpoint is host:port of the S3 fault layer as the service sees it
	// (inside the stack's network, or from the host in process). Plain
	// HTTP; path-style requests.
	S3Endpoint string
	// AccessKey and SecretKey are the run's random MinIO credentials.
	AccessKey, SecretKey string
	// Bucket exists when the service starts.
	Bucket string
	// DataDir is the service's data directory where it runs
	// (Service.DataDir in a container, a directory of the stack in
	// process); empty without one.
	DataDir string
}

// InProcess is what Service.InProcess gets to start an instance.
type InProcess struct {
	// Env is the service's environment (Service.Env plus the settings).
	Env map[string]string
	// DataDir is its data directory (kept across kills and restarts);
	// empty when Service.DataDir is.
	DataDir string
	// Logger is the stack's logger.
	Logger *slog.Logger
	// Gate holds requests while the stack pauses the service: wrap the
	// service's HTTP handlers with Gate.Wrap, or Pause has no effect.
	Gate *Gate
}

// Instance is one running in-process instance of the service. Its
// listeners bind 127.0.0.1.
type Instance interface {
	// Endpoints returns host:port by port name.
	Endpoints() map[string]string
	// Stop shuts the instance down gracefully.
	Stop(ctx context.Context) error
	// Kill ends it as SIGKILL ends a process: from Kill's return it
	// writes nothing more to its data directory, sends no request and
	// runs no background work, and nothing is flushed.
	Kill(ctx context.Context) error
	// Release frees what a dead process's kernel would (open files,
	// idle connections) of a killed instance; the stack calls it when it
	// closes.
	Release(ctx context.Context) error
}

// ErrorCode is a stable, machine-readable code of a stack error.
type ErrorCode string

// Error codes.
const (
	// CodeBadService: the Service description is incomplete or invalid.
	CodeBadService ErrorCode = "bad_service"
	// CodeBadMode: the mode is neither ModeContainer nor ModeInProcess.
	CodeBadMode ErrorCode = "bad_mode"
	// CodeModeUnsupported: the service cannot run in the mode asked for
	// (no InProcess start function, or no image nor build).
	CodeModeUnsupported ErrorCode = "mode_unsupported"
	// CodeBadSize: a tmpfs size is not a size.
	CodeBadSize ErrorCode = "bad_size"
	// CodeUnknownPort: Endpoint or Transport asked for a port the service
	// does not have.
	CodeUnknownPort ErrorCode = "unknown_port"
)

// Error is the error type of the stack's input checks; match it with
// errors.As and compare Code.
type Error struct {
	// Code is the stable error code.
	Code ErrorCode
	// Field names the offending field, if any ("Service.Ports[1].Name").
	Field string
	// Msg says what is wrong.
	Msg string
	// Err is the cause, if any (tmpfs.ErrBadSize for CodeBadSize).
	Err error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("stack: %s: %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("stack: %s: %s: %s", e.Code, e.Field, e.Msg)
}

// CodeOf returns the code of the first *Error in err's chain, or "".
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func badService(field, format string, args ...any) error {
	return &Error{Code: CodeBadService, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// validate checks the description for the mode it is to run in.
func (sv Service) validate(mode string) error {
	if !validName(sv.Name) {
		return badService("Service.Name", "%q: want lower case letters, digits and '-', starting with a letter", sv.Name)
	}
	seen := map[string]bool{}
	for i, p := range sv.Ports {
		field := fmt.Sprintf("Service.Ports[%d]", i)
		if p.Name == "" || seen[p.Name] {
			return badService(field+".Name", "%q: empty or used twice", p.Name)
		}
		seen[p.Name] = true
		num, proto, ok := strings.Cut(p.Container, "/")
		if !ok || (proto != "tcp" && proto != "udp") || !digits(num) {
			return badService(field+".Container", "%q: want <number>/tcp", p.Container)
		}
	}
	if (sv.Ready.Path == "") == (sv.Ready.Func == nil) {
		return badService("Service.Ready", "set exactly one of Path and Func")
	}
	if sv.Ready.Path != "" {
		if !strings.HasPrefix(sv.Ready.Path, "/") {
			return badService("Service.Ready.Path", "%q does not start with '/'", sv.Ready.Path)
		}
		if !seen[sv.Ready.Port] {
			return badService("Service.Ready.Port", "%q is none of Service.Ports", sv.Ready.Port)
		}
	}
	if sv.DataDir != "" && !strings.HasPrefix(sv.DataDir, "/") {
		return badService("Service.DataDir", "%q is not absolute", sv.DataDir)
	}
	switch mode {
	case ModeContainer:
		if sv.Image == "" && sv.Build == nil {
			return &Error{Code: CodeModeUnsupported, Field: "Service.Image", Msg: sv.Name + " has neither an image nor a build, so it cannot run in a container"}
		}
	case ModeInProcess:
		if sv.InProcess == nil {
			return &Error{Code: CodeModeUnsupported, Field: "Service.InProcess", Msg: sv.Name + " has no in-process start function"}
		}
	default:
		return &Error{Code: CodeBadMode, Msg: fmt.Sprintf("%s=%q: want %q or %q", EnvSUT, mode, ModeContainer, ModeInProcess)}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// port returns the container port of the port named name.
func (sv Service) port(name string) (Port, error) {
	for _, p := range sv.Ports {
		if p.Name == name {
			return p, nil
		}
	}
	return Port{}, &Error{Code: CodeUnknownPort, Field: "port", Msg: fmt.Sprintf("%s has no port %q", sv.Name, name)}
}
