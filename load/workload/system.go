package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/tierchaos/tierchaos/load"
	"github.com/tierchaos/tierchaos/load/grpcop"
	"github.com/tierchaos/tierchaos/system/client"
)

// The APIs of SystemOptions.API.
const (
	APIREST = "rest"
	APIGRPC = "grpc"
)

// SystemOptions describe the tierd a run drives and the workload on it.
type SystemOptions struct {
	// API is the tierd API the load speaks: APIREST ("", the default) at
	// URL, or APIGRPC at GRPCAddr over GRPCConns connections (default
	// grpcop.DefaultConns).
	API       string
	URL       string
	GRPCAddr  string
	GRPCConns int
	// APIToken and AdminToken are tierd's bearer tokens ("" for none).
	APIToken, AdminToken string
	// MaxInFlight sizes the REST client's keep-alive pool (default 512).
	MaxInFlight int
	// Timeout bounds each REST request (default 10 s).
	Timeout time.Duration
	// Workload is the data set and mix.
	Workload Config
}

// System is tierd as a load.System: its REST or gRPC client and the
// workload's configuration. Close releases the client.
type System struct {
	o     SystemOptions
	c     client.API
	where string
	close func() error
}

// NewSystem validates o and dials tierd's client (a gRPC dial does not
// wait for tierd).
func NewSystem(o SystemOptions) (*System, error) {
	if o.API == "" {
		o.API = APIREST
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 512
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	switch {
	case o.API != APIREST && o.API != APIGRPC:
		return nil, fmt.Errorf("%w: API %q: want %q or %q", ErrConfig, o.API, APIREST, APIGRPC)
	case o.API == APIREST && o.URL == "":
		return nil, fmt.Errorf("%w: no tierd URL", ErrConfig)
	case o.API == APIGRPC && o.GRPCAddr == "":
		return nil, fmt.Errorf("%w: no tierd gRPC address", ErrConfig)
	}
	if err := o.Workload.Validate(); err != nil {
		return nil, err
	}
	if o.API == APIGRPC {
		gc, err := grpcop.Dial(o.GRPCAddr, grpcop.Options{Conns: o.GRPCConns, Token: o.APIToken, AdminToken: o.AdminToken})
		if err != nil {
			return nil, fmt.Errorf("workload: %w", err)
		}
		return &System{o: o, c: gc, where: fmt.Sprintf("%s (gRPC, %d connections)", o.GRPCAddr, gc.Conns()), close: gc.Close}, nil
	}
	tc := client.New(o.URL, client.WithHTTPClient(NewHTTPClient(o.MaxInFlight, o.Timeout)),
		client.WithToken(o.APIToken), client.WithAdminToken(o.AdminToken))
	return &System{o: o, c: tc, where: o.URL, close: func() error { return nil }}, nil
}

// Where is tierd's URL, or its gRPC address and connection count.
func (s *System) Where() string { return s.where }

// API is APIREST or APIGRPC.
func (s *System) API() string { return s.o.API }

// Ready asks tierd's health check.
func (s *System) Ready(ctx context.Context) error { return s.c.Healthz(ctx) }

// Setup seeds the workload's collections (Setup).
func (s *System) Setup(ctx context.Context) (load.Workload, error) {
	w, err := Setup(ctx, s.c, s.o.Workload)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Close releases the client.
func (s *System) Close() error {
	if err := s.close(); err != nil {
		return fmt.Errorf("workload: close tierd's %s client: %w", s.o.API, err)
	}
	return nil
}
