package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/images"
)

// TestServiceValidate: a Service that cannot run is refused with a
// stable error code and the field, before anything starts.
func TestServiceValidate(t *testing.T) {
	start := func(context.Context, InProcess) (Instance, error) { return nil, nil }
	ok := func() Service {
		return Service{
			Name:      "kvstore",
			Build:     &images.Own{Name: "kvstore", Package: "./cmd/kvstore"},
			Ports:     []Port{{Name: "api", Container: "8080/tcp"}},
			Ready:     Probe{Port: "api", Path: "/readyz"},
			DataDir:   "/data",
			InProcess: start,
		}
	}
	for _, tc := range []struct {
		name   string
		mode   string
		change func(*Service)
		code   ErrorCode
		field  string
	}{
		{name: "container", mode: ModeContainer, change: func(*Service) {}},
		{name: "inprocess", mode: ModeInProcess, change: func(*Service) {}},
		{name: "image instead of build", mode: ModeContainer, change: func(s *Service) { s.Build, s.Image = nil, "kv:1" }},
		{name: "ready func", mode: ModeContainer, change: func(s *Service) {
			s.Ready = Probe{Func: func(context.Context, func(string) (string, error)) error { return nil }}
		}},
		{name: "no name", mode: ModeContainer, change: func(s *Service) { s.Name = "" }, code: CodeBadService, field: "Service.Name"},
		{name: "upper-case name", mode: ModeContainer, change: func(s *Service) { s.Name = "KV" }, code: CodeBadService, field: "Service.Name"},
		{name: "port twice", mode: ModeContainer, change: func(s *Service) { s.Ports = append(s.Ports, s.Ports[0]) }, code: CodeBadService, field: "Service.Ports[1].Name"},
		{name: "port without protocol", mode: ModeContainer, change: func(s *Service) { s.Ports[0].Container = "8080" }, code: CodeBadService, field: "Service.Ports[0].Container"},
		{name: "no probe", mode: ModeContainer, change: func(s *Service) { s.Ready = Probe{} }, code: CodeBadService, field: "Service.Ready"},
		{name: "both probes", mode: ModeContainer, change: func(s *Service) {
			s.Ready.Func = func(context.Context, func(string) (string, error)) error { return nil }
		}, code: CodeBadService, field: "Service.Ready"},
		{name: "probe on unknown port", mode: ModeContainer, change: func(s *Service) { s.Ready.Port = "admin" }, code: CodeBadService, field: "Service.Ready.Port"},
		{name: "relative path", mode: ModeContainer, change: func(s *Service) { s.Ready.Path = "readyz" }, code: CodeBadService, field: "Service.Ready.Path"},
		{name: "relative data dir", mode: ModeContainer, change: func(s *Service) { s.DataDir = "data" }, code: CodeBadService, field: "Service.DataDir"},
		{name: "no image", mode: ModeContainer, change: func(s *Service) { s.Build = nil }, code: CodeModeUnsupported, field: "Service.Image"},
		{name: "no in-process start", mode: ModeInProcess, change: func(s *Service) { s.InProcess = nil }, code: CodeModeUnsupported, field: "Service.InProcess"},
		{name: "bad mode", mode: "vm", change: func(*Service) {}, code: CodeBadMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.change(&s)
			err := s.validate(tc.mode)
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Equal(t, tc.code, CodeOf(err), "%v", err)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.field, e.Field)
		})
	}
}

// TestGate: a shut gate holds requests until it opens; a request whose
// client gives up while held is dropped.
func TestGate(t *testing.T) {
	g := NewGate()
	served := make(chan struct{}, 2)
	h := g.Wrap(httpHandlerFunc(func() { served <- struct{}{} }))
	g.Shut()
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(context.Background(), h)
	}()
	require.Never(t, func() bool { return len(served) > 0 }, 100*msec, 10*msec, "held while shut")
	g.Open()
	<-done
	require.Len(t, served, 1)

	g.Shut()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	serve(ctx, h)
	require.Len(t, served, 1, "a request whose client gave up is not served")
	g.Open()
}

const msec = time.Millisecond

func httpHandlerFunc(f func()) http.Handler {
	return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { f() })
}

func serve(ctx context.Context, h http.Handler) {
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
}
