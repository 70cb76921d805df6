// Package grpcclient is a Go client for tierd's gRPC API (tierd.v1.Tierd
// and the health service). It has the method set of the REST client
// (client.API) and the same semantics; its errors carry the same stable
// codes.
package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/grpcapi"
	"github.com/tierchaos/tierchaos/system/grpcapi/tierdv1"
)

// Error is an error status of the server.
type Error struct {
	// Method is the gRPC method's short name (e.g. "Search").
	Method string
	// Status is the gRPC status code.
	Status codes.Code
	// Code is the stable error code (api.Code*) of the status's ErrorInfo
	// detail; payload_too_large for a ResourceExhausted status without one
	// (the gRPC library refused a message over the size limit); "" for any
	// other status without one (a status of the gRPC library itself).
	Code string
	// Message is the server's explanation.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("tierd gRPC %s: %s: %s", e.Method, e.Status, e.Message)
	}
	return fmt.Sprintf("tierd gRPC %s: %s %s: %s", e.Method, e.Status, e.Code, e.Message)
}

// ErrorCode returns the stable error code (client.CodeOf).
func (e *Error) ErrorCode() string { return e.Code }

// Option customises a Client.
type Option func(*Client)

// WithToken sets the bearer token sent on the API methods (tierd's
// auth.api_token / TIERD_API_TOKEN); it is also sent on the admin methods
// unless WithAdminToken sets another one.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// WithAdminToken sets the bearer token sent on the admin methods
// (GetWorkerState, ControlWorker, GetUsage: tierd's auth.admin_token /
// TIERD_ADMIN_TOKEN).
func WithAdminToken(token string) Option {
	return func(c *Client) { c.adminToken = token }
}

// WithDialOptions adds gRPC dial options to Dial's defaults (plaintext,
// no receive size limit), e.g. a context dialer that finds a moving server
// or a shorter reconnect backoff. New ignores them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *Client) { c.dialOpts = append(c.dialOpts, opts...) }
}

// Client talks to one tierd over gRPC.
type Client struct {
	conn       *grpc.ClientConn // nil when built by New over a caller's connection
	api        tierdv1.TierdClient
	health     healthpb.HealthClient
	token      string
	adminToken string
	dialOpts   []grpc.DialOption
}

var _ client.API = (*Client)(nil)

// New returns a client over an existing connection (which the caller closes).
func New(cc grpc.ClientConnInterface, opts ...Option) *Client {
	c := &Client{api: tierdv1.NewTierdClient(cc), health: healthpb.NewHealthClient(cc)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Dial returns a client of the tierd at target (e.g. "127.0.0.1:9090"),
// over plaintext (tierd serves no TLS); Close releases the connection.
func Dial(target string, opts ...Option) (*Client, error) {
	var o Client
	for _, opt := range opts {
		opt(&o)
	}
	dialOpts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A page of vectors may exceed gRPC's default 4 MiB; tierd bounds it.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32))}, o.dialOpts...)
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("tierd gRPC %s: %w", target, err)
	}
	c := New(conn, opts...)
	c.conn = conn
	return c, nil
}

// Conn returns the connection Dial opened (nil for New), e.g. to share it
// between clients of other options.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection Dial opened (nothing for New).
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// ctx adds the bearer token of the method's scope to ctx.
func (c *Client) ctx(ctx context.Context, admin bool) context.Context {
	tok := c.token
	if admin && c.adminToken != "" {
		tok = c.adminToken
	}
	if tok == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// wrap converts a call's error to an *Error (a status) or wraps it.
func wrap(method string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("tierd gRPC %s: %w", method, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("tierd gRPC %s: %w", method, err)
	}
	code := grpcapi.ReasonOf(err)
	if code == "" && st.Code() == codes.ResourceExhausted {
		// The gRPC library's own refusal of a message over the size limit
		// (tierd's limits.max_body_bytes), before tierd sees it.
		code = api.CodePayloadTooLarge
	}
	return &Error{Method: method, Status: st.Code(), Code: code, Message: st.Message()}
}

// CreateCollection creates a collection.
func (c *Client) CreateCollection(ctx context.Context, req api.CreateCollectionRequest) (api.Collection, error) {
	resp, err := c.api.CreateCollection(c.ctx(ctx, false), &tierdv1.CreateCollectionRequest{
		Name: req.Name, Dimension: int64(req.Dimension), Metric: string(req.Metric),
	})
	if err != nil {
		return api.Collection{}, wrap("CreateCollection", err)
	}
	return grpcapi.CollectionFromProto(resp.GetCollection()), nil
}

// ListCollections lists all collections.
func (c *Client) ListCollections(ctx context.Context) ([]api.Collection, error) {
	resp, err := c.api.ListCollections(c.ctx(ctx, false), &tierdv1.ListCollectionsRequest{})
	if err != nil {
		return nil, wrap("ListCollections", err)
	}
	return grpcapi.CollectionsFromProto(resp.GetCollections()), nil
}

// GetCollection returns a collection's state.
func (c *Client) GetCollection(ctx context.Context, name string) (api.Collection, error) {
	resp, err := c.api.GetCollection(c.ctx(ctx, false), &tierdv1.GetCollectionRequest{Name: name})
	if err != nil {
		return api.Collection{}, wrap("GetCollection", err)
	}
	return grpcapi.CollectionFromProto(resp.GetCollection()), nil
}

// DeleteCollection deletes a collection and its objects.
func (c *Client) DeleteCollection(ctx context.Context, name string) error {
	_, err := c.api.DeleteCollection(c.ctx(ctx, false), &tierdv1.DeleteCollectionRequest{Name: name})
	return wrap("DeleteCollection", err)
}

// Insert adds or replaces vectors and returns how many were inserted.
func (c *Client) Insert(ctx context.Context, name string, vectors []api.Vector) (int, error) {
	resp, err := c.api.Insert(c.ctx(ctx, false), &tierdv1.InsertRequest{Name: name, Vectors: grpcapi.VectorsToProto(vectors)})
	if err != nil {
		return 0, wrap("Insert", err)
	}
	return int(resp.GetInserted()), nil
}

// Search returns the exact top-k of vector, best first.
func (c *Client) Search(ctx context.Context, name string, vector []float32, k int) ([]api.Result, error) {
	resp, err := c.api.Search(c.ctx(ctx, false), &tierdv1.SearchRequest{Name: name, Vector: vector, K: int64(k)})
	if err != nil {
		return nil, wrap("Search", err)
	}
	return grpcapi.ResultsFromProto(resp.GetResults()), nil
}

// ListVectors returns one page of the collection's vectors: up to limit
// (0: the server's default, api.DefaultListLimit) vectors with ids greater
// than after ("" starts at the beginning), ids ascending, values exact.
// page.Next is the after of the next page, "" on the last page.
func (c *Client) ListVectors(ctx context.Context, name, after string, limit int) (api.VectorPage, error) {
	resp, err := c.api.ListVectors(c.ctx(ctx, false), &tierdv1.ListVectorsRequest{Name: name, After: after, Limit: int64(limit)})
	if err != nil {
		return api.VectorPage{}, wrap("ListVectors", err)
	}
	return api.VectorPage{Vectors: grpcapi.VectorsFromProto(resp.GetVectors()), Next: resp.GetNext()}, nil
}

// AllVectors pages through every vector of the collection with pages of
// pageSize (0: the server's default) and returns them, ids ascending. The
// pages are read one after the other, not as one snapshot (see the REST
// client's AllVectors).
func (c *Client) AllVectors(ctx context.Context, name string, pageSize int) ([]api.Vector, error) {
	return client.AllPages(ctx, name, pageSize, c.ListVectors)
}

// SetTier moves a collection to target and returns its new state.
func (c *Client) SetTier(ctx context.Context, name string, target api.Tier) (api.Collection, error) {
	resp, err := c.api.SetTier(c.ctx(ctx, false), &tierdv1.SetTierRequest{Name: name, Target: string(target)})
	if err != nil {
		return api.Collection{}, wrap("SetTier", err)
	}
	return grpcapi.CollectionFromProto(resp.GetCollection()), nil
}

// check asks the health service about service ("" for the server).
func (c *Client) check(ctx context.Context, service string) error {
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return wrap("Health.Check", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return &Error{Method: "Health.Check", Status: codes.Unavailable, Code: api.CodeStorageUnavailable,
			Message: fmt.Sprintf("service %q is %s", service, s)}
	}
	return nil
}

// Healthz checks liveness: the health service answers SERVING for the server.
func (c *Client) Healthz(ctx context.Context) error { return c.check(ctx, "") }

// Readyz checks readiness: the health service answers SERVING for tierd.v1.Tierd.
func (c *Client) Readyz(ctx context.Context) error { return c.check(ctx, "tierd.v1.Tierd") }

// CreateSnapshot stores the collection's current content as a snapshot.
func (c *Client) CreateSnapshot(ctx context.Context, name string) (api.Snapshot, error) {
	resp, err := c.api.CreateSnapshot(c.ctx(ctx, false), &tierdv1.CreateSnapshotRequest{Name: name})
	if err != nil {
		return api.Snapshot{}, wrap("CreateSnapshot", err)
	}
	return grpcapi.SnapshotFromProto(resp.GetSnapshot()), nil
}

// ListSnapshots lists the collection's snapshots, oldest first.
func (c *Client) ListSnapshots(ctx context.Context, name string) ([]api.Snapshot, error) {
	resp, err := c.api.ListSnapshots(c.ctx(ctx, false), &tierdv1.ListSnapshotsRequest{Name: name})
	if err != nil {
		return nil, wrap("ListSnapshots", err)
	}
	return grpcapi.SnapshotsFromProto(resp.GetSnapshots()), nil
}

// Restore replaces the collection's content with the snapshot's.
func (c *Client) Restore(ctx context.Context, name, snapshotID string) (api.Collection, error) {
	resp, err := c.api.Restore(c.ctx(ctx, false), &tierdv1.RestoreRequest{Name: name, Snapshot: snapshotID})
	if err != nil {
		return api.Collection{}, wrap("Restore", err)
	}
	return grpcapi.CollectionFromProto(resp.GetCollection()), nil
}

// Worker sends an action (api.WorkerPause, api.WorkerResume,
// api.WorkerRunOnce) to the background worker and returns its state.
func (c *Client) Worker(ctx context.Context, action string) (api.WorkerState, error) {
	resp, err := c.api.ControlWorker(c.ctx(ctx, true), &tierdv1.ControlWorkerRequest{Action: action})
	if err != nil {
		return api.WorkerState{}, wrap("ControlWorker", err)
	}
	return grpcapi.WorkerStateFromProto(resp.GetWorker()), nil
}

// WorkerState returns the background worker's state and last cycle.
func (c *Client) WorkerState(ctx context.Context) (api.WorkerState, error) {
	resp, err := c.api.GetWorkerState(c.ctx(ctx, true), &tierdv1.GetWorkerStateRequest{})
	if err != nil {
		return api.WorkerState{}, wrap("GetWorkerState", err)
	}
	return grpcapi.WorkerStateFromProto(resp.GetWorker()), nil
}

// Usage returns resource use against the quotas.
func (c *Client) Usage(ctx context.Context) (api.Usage, error) {
	resp, err := c.api.GetUsage(c.ctx(ctx, true), &tierdv1.GetUsageRequest{})
	if err != nil {
		return api.Usage{}, wrap("GetUsage", err)
	}
	return grpcapi.UsageFromProto(resp), nil
}
