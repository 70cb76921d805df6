package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/grpcapi"
	"github.com/tierchaos/tierchaos/system/grpcapi/tierdv1"
)

// tierdService is the full name of the gRPC service.
const tierdService = "tierd.v1.Tierd"

// adminMethods are the gRPC methods behind the admin token (the
// /v1/admin/ routes of the REST API).
var adminMethods = map[string]bool{
	tierdv1.Tierd_GetWorkerState_FullMethodName: true,
	tierdv1.Tierd_ControlWorker_FullMethodName:  true,
	tierdv1.Tierd_GetUsage_FullMethodName:       true,
}

// GRPCServer returns a gRPC server with the tierd.v1.Tierd service (the
// REST API's operations over the same store, validation and limits), the
// standard health service (SERVING while the server is ready) and server
// reflection. The tierd.v1 methods take the same bearer tokens as the
// REST routes (metadata "authorization: Bearer <token>") and share the
// REST API's in-flight limit; health and reflection are open. Messages
// are limited to limits.max_body_bytes. Stop it (GracefulStop) before
// Close.
func (s *Server) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(s.cfg.Limits.MaxBodyBytes)),
		grpc.ChainUnaryInterceptor(s.grpcRecover, s.grpcAuthorize, s.grpcLimit),
	}, opts...)
	gs := grpc.NewServer(opts...)
	tierdv1.RegisterTierdServer(gs, &grpcService{s: s})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	serving := healthpb.HealthCheckResponse_NOT_SERVING
	if s.ready.Load() {
		serving = healthpb.HealthCheckResponse_SERVING
	}
	hs.SetServingStatus("", serving)
	hs.SetServingStatus(tierdService, serving)
	s.healthMu.Lock()
	s.health = append(s.health, hs)
	s.healthMu.Unlock()
	return gs
}

// shutdownHealth marks every gRPC health service NOT_SERVING (Close).
func (s *Server) shutdownHealth() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	for _, hs := range s.health {
		hs.Shutdown()
	}
}

// grpcRecover turns a panic in a handler into an internal error.
func (s *Server) grpcRecover(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic in gRPC handler", "method", info.FullMethod, "panic", v)
			resp, err = nil, grpcapi.Status(api.CodeInternal, genericMessages[api.CodeInternal]).Err()
		}
	}()
	return handler(ctx, req)
}

// grpcAuthorize requires the bearer token of the method's scope (the same
// tokens as the REST routes) on the tierd.v1 methods.
func (s *Server) grpcAuthorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/"+tierdService+"/") {
		return handler(ctx, req)
	}
	sc := scopeAPI
	if adminMethods[info.FullMethod] {
		sc = scopeAdmin
	}
	want := s.requiredToken(sc)
	if want == "" {
		return handler(ctx, req)
	}
	got, ok := grpcBearer(ctx)
	if ok && tokenMatches(got, want) {
		return handler(ctx, req)
	}
	msg := "this method requires a bearer token (metadata authorization: Bearer <token>)"
	if ok {
		msg = "the bearer token is not valid for this method"
	}
	s.metrics.unauthenticated.Inc()
	return nil, grpcapi.Status(api.CodeUnauthenticated, msg).Err()
}

// grpcBearer returns the token of the "authorization: Bearer <token>"
// metadata of ctx.
func grpcBearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	vs := md.Get("authorization")
	if len(vs) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// grpcLimit takes a token of the in-flight limit the REST API uses for a
// tierd.v1 call; without one the call fails at once with overloaded.
func (s *Server) grpcLimit(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/"+tierdService+"/") {
		return handler(ctx, req)
	}
	select {
	case s.inFlight <- struct{}{}:
	default:
		s.metrics.overloaded.Inc()
		return nil, grpcapi.Status(api.CodeOverloaded, overloadedMessage(s.cfg.HTTP.MaxInFlight)).Err()
	}
	defer func() { <-s.inFlight }()
	return handler(ctx, req)
}

// grpcError converts err of a call about the collection name ("" for
// none) to a status with the same code and public message a REST answer
// would carry. A call whose client went away gets its context's status.
func (s *Server) grpcError(ctx context.Context, method, name string, err error) error {
	if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil {
		s.metrics.cancelled.Inc()
		s.log.Debug("gRPC call ended by the client", "method", method, "err", err)
		return status.FromContextError(ctx.Err()).Err()
	}
	code := api.CodeOf(err)
	if api.HTTPStatus(code) >= 500 && code != api.CodeOverloaded {
		s.log.Warn("gRPC call failed", "method", method, "code", code, "err", err)
	}
	return grpcapi.Status(code, s.publicMessage(name, code, err)).Err()
}

// grpcService implements tierdv1.TierdServer over the server's store and
// worker, as the REST handlers do.
type grpcService struct {
	tierdv1.UnimplementedTierdServer
	s *Server
}

func (g *grpcService) CreateCollection(ctx context.Context, req *tierdv1.CreateCollectionRequest) (*tierdv1.CreateCollectionResponse, error) {
	c, err := g.s.store.Create(ctx, api.CreateCollectionRequest{
		Name: req.GetName(), Dimension: int(req.GetDimension()), Metric: api.Metric(req.GetMetric()),
	})
	if err != nil {
		return nil, g.s.grpcError(ctx, "CreateCollection", "", err)
	}
	return &tierdv1.CreateCollectionResponse{Collection: grpcapi.CollectionToProto(c)}, nil
}

func (g *grpcService) ListCollections(ctx context.Context, _ *tierdv1.ListCollectionsRequest) (*tierdv1.ListCollectionsResponse, error) {
	return &tierdv1.ListCollectionsResponse{Collections: grpcapi.CollectionsToProto(g.s.store.List(ctx))}, nil
}

func (g *grpcService) GetCollection(ctx context.Context, req *tierdv1.GetCollectionRequest) (*tierdv1.GetCollectionResponse, error) {
	c, err := g.s.store.Get(ctx, req.GetName())
	if err != nil {
		return nil, g.s.grpcError(ctx, "GetCollection", req.GetName(), err)
	}
	return &tierdv1.GetCollectionResponse{Collection: grpcapi.CollectionToProto(c)}, nil
}

func (g *grpcService) DeleteCollection(ctx context.Context, req *tierdv1.DeleteCollectionRequest) (*tierdv1.DeleteCollectionResponse, error) {
	if err := g.s.store.Delete(ctx, req.GetName()); err != nil {
		return nil, g.s.grpcError(ctx, "DeleteCollection", req.GetName(), err)
	}
	return &tierdv1.DeleteCollectionResponse{}, nil
}

func (g *grpcService) Insert(ctx context.Context, req *tierdv1.InsertRequest) (*tierdv1.InsertResponse, error) {
	n, err := g.s.store.Insert(ctx, req.GetName(), grpcapi.VectorsFromProto(req.GetVectors()))
	if err != nil {
		return nil, g.s.grpcError(ctx, "Insert", req.GetName(), err)
	}
	return &tierdv1.InsertResponse{Inserted: int64(n)}, nil
}

func (g *grpcService) ListVectors(ctx context.Context, req *tierdv1.ListVectorsRequest) (*tierdv1.ListVectorsResponse, error) {
	limit := int(req.GetLimit())
	if req.GetLimit() == 0 {
		limit = api.DefaultListLimit
	}
	if err := validatePage(req.GetAfter(), limit); err != nil {
		return nil, g.s.grpcError(ctx, "ListVectors", req.GetName(), err)
	}
	page, err := g.s.store.ListVectors(ctx, req.GetName(), req.GetAfter(), limit)
	if err != nil {
		return nil, g.s.grpcError(ctx, "ListVectors", req.GetName(), err)
	}
	return &tierdv1.ListVectorsResponse{Vectors: grpcapi.VectorsToProto(page.Vectors), Next: page.Next}, nil
}

func (g *grpcService) Search(ctx context.Context, req *tierdv1.SearchRequest) (*tierdv1.SearchResponse, error) {
	res, err := g.s.store.Search(ctx, req.GetName(), req.GetVector(), int(req.GetK()))
	if err != nil {
		return nil, g.s.grpcError(ctx, "Search", req.GetName(), err)
	}
	return &tierdv1.SearchResponse{Results: grpcapi.ResultsToProto(res)}, nil
}

func (g *grpcService) SetTier(ctx context.Context, req *tierdv1.SetTierRequest) (*tierdv1.SetTierResponse, error) {
	c, err := g.s.store.SetTier(ctx, req.GetName(), api.Tier(req.GetTarget()))
	if err != nil {
		return nil, g.s.grpcError(ctx, "SetTier", req.GetName(), err)
	}
	return &tierdv1.SetTierResponse{Collection: grpcapi.CollectionToProto(c)}, nil
}

func (g *grpcService) CreateSnapshot(ctx context.Context, req *tierdv1.CreateSnapshotRequest) (*tierdv1.CreateSnapshotResponse, error) {
	sn, err := g.s.store.CreateSnapshot(ctx, req.GetName())
	if err != nil {
		return nil, g.s.grpcError(ctx, "CreateSnapshot", req.GetName(), err)
	}
	return &tierdv1.CreateSnapshotResponse{Snapshot: grpcapi.SnapshotToProto(sn)}, nil
}

func (g *grpcService) ListSnapshots(ctx context.Context, req *tierdv1.ListSnapshotsRequest) (*tierdv1.ListSnapshotsResponse, error) {
	list, err := g.s.store.ListSnapshots(ctx, req.GetName())
	if err != nil {
		return nil, g.s.grpcError(ctx, "ListSnapshots", req.GetName(), err)
	}
	return &tierdv1.ListSnapshotsResponse{Snapshots: grpcapi.SnapshotsToProto(list)}, nil
}

func (g *grpcService) Restore(ctx context.Context, req *tierdv1.RestoreRequest) (*tierdv1.RestoreResponse, error) {
	c, err := g.s.store.Restore(ctx, req.GetName(), req.GetSnapshot())
	if err != nil {
		return nil, g.s.grpcError(ctx, "Restore", req.GetName(), err)
	}
	return &tierdv1.RestoreResponse{Collection: grpcapi.CollectionToProto(c)}, nil
}

func (g *grpcService) GetWorkerState(_ context.Context, _ *tierdv1.GetWorkerStateRequest) (*tierdv1.GetWorkerStateResponse, error) {
	return &tierdv1.GetWorkerStateResponse{Worker: grpcapi.WorkerStateToProto(g.s.worker.State())}, nil
}

func (g *grpcService) ControlWorker(ctx context.Context, req *tierdv1.ControlWorkerRequest) (*tierdv1.ControlWorkerResponse, error) {
	st, err := g.s.workerAction(ctx, req.GetAction())
	if err != nil {
		return nil, g.s.grpcError(ctx, "ControlWorker", "", err)
	}
	return &tierdv1.ControlWorkerResponse{Worker: grpcapi.WorkerStateToProto(st)}, nil
}

func (g *grpcService) GetUsage(_ context.Context, _ *tierdv1.GetUsageRequest) (*tierdv1.GetUsageResponse, error) {
	return grpcapi.UsageToProto(g.s.store.Usage()), nil
}

// StopGRPC stops gs gracefully (no new calls, the running ones finish)
// until ctx ends, then at once, and says so in its error.
func StopGRPC(ctx context.Context, gs *grpc.Server) error {
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		gs.Stop()
		<-done
		return fmt.Errorf("gRPC graceful stop: %w", ctx.Err())
	}
}
