package server_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/grpcapi"
	"github.com/tierchaos/tierchaos/system/grpcapi/tierdv1"
	"github.com/tierchaos/tierchaos/system/grpcclient"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

// both is one tierd serving REST (httptest) and gRPC (a loopback port).
type both struct {
	srv      *server.Server
	closed   bool // the test closed srv itself
	url      string
	grpcAddr string
}

// startBoth runs a server over a temp data dir with an in-memory object
// store, serving both APIs until the test ends.
func startBoth(t *testing.T, mod func(*config.Config), opts ...server.Option) *both {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.S3.OpTimeout = config.Duration(2 * time.Second)
	cfg.Worker.Paused = true
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), cfg, log, append([]server.Option{server.WithObjectStore(uploader.NewMemStore())}, opts...)...)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := srv.GRPCServer()
	b := &both{}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.GracefulStop()
		require.NoError(t, <-served)
		hs.Close()
		if !b.closed {
			require.NoError(t, srv.Close(context.Background()))
		}
	})
	b.srv, b.url, b.grpcAddr = srv, hs.URL, ln.Addr().String()
	return b
}

// clients returns the REST and the gRPC client of b, with the tokens.
func (b *both) clients(t *testing.T, token, adminToken string) map[string]client.API {
	t.Helper()
	gc, err := grpcclient.Dial(b.grpcAddr, grpcclient.WithToken(token), grpcclient.WithAdminToken(adminToken))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, gc.Close()) })
	return map[string]client.API{
		"rest": client.New(b.url, client.WithToken(token), client.WithAdminToken(adminToken)),
		"grpc": gc,
	}
}

// normalize drops what differs between two servers fed the same calls:
// times and snapshot ids (random).
func normalize(v any) any {
	switch x := v.(type) {
	case api.Collection:
		x.LastAccess = time.Time{}
		x.Snapshot = ""
		x.Object = strings.Split(x.Object, "/data/")[0]
		return x
	case []api.Collection:
		out := make([]api.Collection, len(x))
		for i, c := range x {
			out[i] = normalize(c).(api.Collection)
		}
		return out
	case api.Snapshot:
		x.ID, x.Created, x.Object = "", time.Time{}, ""
		return x
	case []api.Snapshot:
		out := make([]api.Snapshot, len(x))
		for i, s := range x {
			out[i] = normalize(s).(api.Snapshot)
		}
		return out
	case api.WorkerState:
		if x.Last != nil {
			c := *x.Last
			c.Started, c.Finished = time.Time{}, time.Time{}
			x.Last = &c
		}
		return x
	case []api.Result:
		if len(x) == 0 {
			return []api.Result{}
		}
	case []api.Vector:
		if len(x) == 0 {
			return []api.Vector{}
		}
	case api.VectorPage:
		x.Vectors = normalize(x.Vectors).([]api.Vector)
		return x
	}
	return v
}

// apiCase is one call (after its own setup) and the stable error code it
// must end with ("" for success).
type apiCase struct {
	name string
	run  func(ctx context.Context, c client.API) (any, error)
	code string
}

// restLocal names the cases whose input the REST client refuses itself
// (JSON has no NaN or Inf); the REST server's answer to non-finite values
// (1e39) is TestBadInputAnswers'.
var restLocal = map[string]bool{"insert NaN": true, "insert Inf": true, "search NaN": true}

func vec(id string, vals ...float32) api.Vector { return api.Vector{ID: id, Values: vals} }

// apiCases covers every operation of the API, bad inputs included. Every
// case runs after the fixture collection "c" (dimension 3, cosine, vectors
// a, b, c) exists.
func apiCases() []apiCase {
	create := func(name string, dim int, metric api.Metric) func(context.Context, client.API) (any, error) {
		return func(ctx context.Context, c client.API) (any, error) {
			return c.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: dim, Metric: metric})
		}
	}
	insert := func(name string, vs ...api.Vector) func(context.Context, client.API) (any, error) {
		return func(ctx context.Context, c client.API) (any, error) { return c.Insert(ctx, name, vs) }
	}
	search := func(name string, k int, q ...float32) func(context.Context, client.API) (any, error) {
		return func(ctx context.Context, c client.API) (any, error) { return c.Search(ctx, name, q, k) }
	}
	list := func(name, after string, limit int) func(context.Context, client.API) (any, error) {
		return func(ctx context.Context, c client.API) (any, error) { return c.ListVectors(ctx, name, after, limit) }
	}
	tier := func(name string, target api.Tier) func(context.Context, client.API) (any, error) {
		return func(ctx context.Context, c client.API) (any, error) { return c.SetTier(ctx, name, target) }
	}
	worker := func(action string) func(context.Context, client.API) (any, error) {
		return func(ctx context.Context, c client.API) (any, error) { return c.Worker(ctx, action) }
	}
	long := strings.Repeat("x", api.MaxIDLen+1)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	wide := make([]float32, 3000) // 12 KB in protobuf, more in JSON: over max_body_bytes
	return []apiCase{
		{"create", create("p1", 4, api.MetricL2), ""},
		{"create duplicate", create("c", 3, api.MetricCosine), api.CodeAlreadyExists},
		{"create bad name", create("Bad!", 3, api.MetricCosine), api.CodeInvalidArgument},
		{"create name too long", create(strings.Repeat("a", api.MaxNameLen+1), 3, api.MetricCosine), api.CodeInvalidArgument},
		{"create dimension 0", create("p2", 0, api.MetricCosine), api.CodeInvalidArgument},
		{"create dimension negative", create("p2", -3, api.MetricCosine), api.CodeInvalidArgument},
		{"create dimension over the limit", create("p2", 4097, api.MetricCosine), api.CodeInvalidArgument},
		{"create bad metric", create("p2", 3, "manhattan"), api.CodeInvalidArgument},
		{"create empty metric", create("p2", 3, ""), api.CodeInvalidArgument},
		{"get", func(ctx context.Context, c client.API) (any, error) { return c.GetCollection(ctx, "c") }, ""},
		{"get missing", func(ctx context.Context, c client.API) (any, error) { return c.GetCollection(ctx, "nope") }, api.CodeNotFound},
		{"get bad name", func(ctx context.Context, c client.API) (any, error) { return c.GetCollection(ctx, "a/b") }, api.CodeInvalidArgument},
		{"list collections", func(ctx context.Context, c client.API) (any, error) { return c.ListCollections(ctx) }, ""},
		{"insert", insert("c", vec("d", 0, 0, 1), vec("a", 1, 0.5, 0)), ""},
		{"insert wrong dimension", insert("c", vec("e", 1, 2)), api.CodeInvalidArgument},
		{"insert NaN", insert("c", vec("e", 1, nan, 0)), api.CodeInvalidArgument},
		{"insert Inf", insert("c", vec("e", 1, inf, 0)), api.CodeInvalidArgument},
		{"insert empty id", insert("c", vec("", 1, 2, 3)), api.CodeInvalidArgument},
		{"insert id too long", insert("c", vec(long, 1, 2, 3)), api.CodeInvalidArgument},
		{"insert no vectors", insert("c"), api.CodeInvalidArgument},
		{"insert over the batch limit", insert("c", vec("1", 1, 1, 1), vec("2", 1, 1, 1), vec("3", 1, 1, 1), vec("4", 1, 1, 1), vec("5", 1, 1, 1), vec("6", 1, 1, 1)), api.CodePayloadTooLarge},
		{"insert over the body limit", insert("c", api.Vector{ID: "w", Values: wide}), api.CodePayloadTooLarge},
		{"insert missing collection", insert("nope", vec("a", 1, 2, 3)), api.CodeNotFound},
		{"search", search("c", 2, 1, 0, 0), ""},
		{"search k over the count", search("c", 50, 0, 1, 0), ""},
		{"search k 0", search("c", 0, 1, 0, 0), api.CodeInvalidArgument},
		{"search k over the limit", search("c", api.MaxK+1, 1, 0, 0), api.CodeInvalidArgument},
		{"search wrong dimension", search("c", 1, 1, 0), api.CodeInvalidArgument},
		{"search NaN", search("c", 1, 1, nan, 0), api.CodeInvalidArgument},
		{"search missing", search("nope", 1, 1, 0, 0), api.CodeNotFound},
		{"list vectors", list("c", "", 0), ""},
		{"list vectors page", list("c", "a", 1), ""},
		{"list vectors after the end", list("c", "zzz", 10), ""},
		{"list vectors negative limit", list("c", "", -1), api.CodeInvalidArgument},
		{"list vectors limit over the maximum", list("c", "", api.MaxListLimit+1), api.CodeInvalidArgument},
		{"list vectors cursor too long", list("c", long, 1), api.CodeInvalidArgument},
		{"list vectors missing", list("nope", "", 0), api.CodeNotFound},
		{"set tier bad target", tier("c", "lukewarm"), api.CodeInvalidArgument},
		{"set tier missing", tier("nope", api.TierWarm), api.CodeNotFound},
		{"tier round trip", func(ctx context.Context, c client.API) (any, error) {
			if _, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "t1", Dimension: 2, Metric: api.MetricDot}); err != nil {
				return nil, err
			}
			if _, err := c.Insert(ctx, "t1", []api.Vector{vec("x", 1, 2)}); err != nil {
				return nil, err
			}
			if _, err := c.SetTier(ctx, "t1", api.TierCold); err != nil {
				return nil, err
			}
			res, err := c.Search(ctx, "t1", []float32{1, 1}, 1)
			if err != nil {
				return nil, err
			}
			col, err := c.SetTier(ctx, "t1", api.TierHot)
			return []any{res, normalize(col)}, err
		}, ""},
		{"snapshot and restore", func(ctx context.Context, c client.API) (any, error) {
			if _, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "s1", Dimension: 2, Metric: api.MetricL2}); err != nil {
				return nil, err
			}
			if _, err := c.Insert(ctx, "s1", []api.Vector{vec("x", 1, 2)}); err != nil {
				return nil, err
			}
			sn, err := c.CreateSnapshot(ctx, "s1")
			if err != nil {
				return nil, err
			}
			if _, err := c.Insert(ctx, "s1", []api.Vector{vec("y", 3, 4)}); err != nil {
				return nil, err
			}
			list, err := c.ListSnapshots(ctx, "s1")
			if err != nil {
				return nil, err
			}
			col, err := c.Restore(ctx, "s1", sn.ID)
			if err != nil {
				return nil, err
			}
			vs, err := c.AllVectors(ctx, "s1", 1)
			return []any{normalize(sn), normalize(list), normalize(col), vs}, err
		}, ""},
		{"snapshot missing", func(ctx context.Context, c client.API) (any, error) { return c.CreateSnapshot(ctx, "nope") }, api.CodeNotFound},
		{"list snapshots missing", func(ctx context.Context, c client.API) (any, error) { return c.ListSnapshots(ctx, "nope") }, api.CodeNotFound},
		{"restore unknown snapshot", func(ctx context.Context, c client.API) (any, error) { return c.Restore(ctx, "c", "0000") }, api.CodeNotFound},
		{"restore empty snapshot id", func(ctx context.Context, c client.API) (any, error) { return c.Restore(ctx, "c", "") }, api.CodeInvalidArgument},
		{"worker state", func(ctx context.Context, c client.API) (any, error) { return c.WorkerState(ctx) }, ""},
		{"worker resume", worker(api.WorkerResume), ""},
		{"worker pause", worker(api.WorkerPause), ""},
		{"worker bad action", worker("explode"), api.CodeInvalidArgument},
		{"worker empty action", worker(""), api.CodeInvalidArgument},
		{"usage", func(ctx context.Context, c client.API) (any, error) { return c.Usage(ctx) }, ""},
		{"delete missing", func(ctx context.Context, c client.API) (any, error) { return nil, c.DeleteCollection(ctx, "nope") }, api.CodeNotFound},
		{"delete bad name", func(ctx context.Context, c client.API) (any, error) { return nil, c.DeleteCollection(ctx, "A") }, api.CodeInvalidArgument},
		{"delete", func(ctx context.Context, c client.API) (any, error) {
			if err := c.DeleteCollection(ctx, "p1"); err != nil {
				return nil, err
			}
			return c.GetCollection(ctx, "p1")
		}, api.CodeNotFound},
		{"all vectors", func(ctx context.Context, c client.API) (any, error) { return c.AllVectors(ctx, "c", 2) }, ""},
		{"health", func(ctx context.Context, c client.API) (any, error) {
			return nil, firstErr(c.Healthz(ctx), c.Readyz(ctx))
		}, ""},
	}
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestRESTAndGRPCAgree runs every case of apiCases through the REST client
// against one server and through the gRPC client against another, both
// fed the same calls: each case must end with its code on both, and with
// the same result.
func TestRESTAndGRPCAgree(t *testing.T) {
	limits := func(c *config.Config) {
		c.Limits.MaxBodyBytes = 4096
		c.Limits.MaxVectorsPerInsert = 5
	}
	rest := startBoth(t, limits).clients(t, "", "")["rest"]
	grpcc := startBoth(t, limits).clients(t, "", "")["grpc"]
	ctx := context.Background()
	for name, c := range map[string]client.API{"rest": rest, "grpc": grpcc} {
		_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "c", Dimension: 3, Metric: api.MetricCosine})
		require.NoError(t, err, name)
		_, err = c.Insert(ctx, "c", []api.Vector{vec("a", 1, 0, 0), vec("b", 0, 1, 0), vec("c", 0.5, 0.5, 0)})
		require.NoError(t, err, name)
	}
	for _, tc := range apiCases() {
		t.Run(tc.name, func(t *testing.T) {
			rv, rerr := tc.run(ctx, rest)
			gv, gerr := tc.run(ctx, grpcc)
			if restLocal[tc.name] {
				require.ErrorContains(t, rerr, "encode request")
				assert.Equal(t, tc.code, client.CodeOf(gerr), "gRPC: %v", gerr)
				return
			}
			assert.Equal(t, tc.code, client.CodeOf(rerr), "REST: %v", rerr)
			assert.Equal(t, tc.code, client.CodeOf(gerr), "gRPC: %v", gerr)
			if tc.code == "" {
				require.NoError(t, rerr)
				require.NoError(t, gerr)
				assert.Equal(t, normalize(rv), normalize(gv), "REST and gRPC results differ")
			}
		})
	}
}

// TestGRPCErrorStatus checks the status of a gRPC error: the mapped gRPC
// code, the public message and the ErrorInfo detail with the stable code.
func TestGRPCErrorStatus(t *testing.T) {
	b := startBoth(t, nil)
	conn := dialRaw(t, b.grpcAddr)
	raw := tierdv1.NewTierdClient(conn)
	ctx := context.Background()
	_, err := raw.GetCollection(ctx, &tierdv1.GetCollectionRequest{Name: "nope"})
	st, ok := status.FromError(err)
	require.True(t, ok, "a status error: %v", err)
	assert.Equal(t, codes.NotFound, st.Code())
	assert.Equal(t, `collection "nope" not found`, st.Message())
	assert.Equal(t, api.CodeNotFound, grpcapi.ReasonOf(err))

	_, err = grpcclient.New(conn).GetCollection(ctx, "nope")
	var ge *grpcclient.Error
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, grpcclient.Error{Method: "GetCollection", Status: codes.NotFound, Code: api.CodeNotFound,
		Message: `collection "nope" not found`}, *ge)

	_, err = raw.Search(ctx, &tierdv1.SearchRequest{Name: "c", Vector: []float32{1}, K: 0})
	assert.Equal(t, codes.NotFound, status.Code(err))
	_, err = raw.Search(ctx, &tierdv1.SearchRequest{Name: "Bad"})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Equal(t, api.CodeInvalidArgument, grpcapi.ReasonOf(err))
}

// TestGRPCStatusTableCoversEveryCode: every stable code has its own
// entry; only an unknown code falls back to Internal.
func TestGRPCStatusTableCoversEveryCode(t *testing.T) {
	for _, code := range api.Codes() {
		st := grpcapi.Status(code, "m")
		assert.Equal(t, code, grpcapi.ReasonOf(st.Err()), code)
		if code != api.CodeInternal {
			assert.NotEqual(t, codes.Internal, st.Code(), "%s falls back to Internal", code)
		}
	}
	assert.Equal(t, codes.Internal, grpcapi.StatusCode("no_such_code"))
	assert.Equal(t, codes.NotFound, grpcapi.StatusCode(api.CodeNotFound))
	assert.Equal(t, codes.InvalidArgument, grpcapi.StatusCode(api.CodeInvalidArgument))
	assert.Equal(t, codes.Unauthenticated, grpcapi.StatusCode(api.CodeUnauthenticated))
}

// TestGRPCBearerTokens: the gRPC methods take the REST API's tokens, the
// admin methods the admin token; health and reflection stay open.
func TestGRPCBearerTokens(t *testing.T) {
	b := startBoth(t, func(c *config.Config) {
		c.Auth.APIToken = "api-secret-0123456789"
		c.Auth.AdminToken = "admin-secret-0123456789"
	})
	ctx := context.Background()
	call := map[string]func(client.API) error{
		"api":   func(c client.API) error { _, err := c.ListCollections(ctx); return err },
		"admin": func(c client.API) error { _, err := c.Usage(ctx); return err },
	}
	cases := []struct {
		name, token, admin string
		api, adminCode     string
	}{
		{"no token", "", "", api.CodeUnauthenticated, api.CodeUnauthenticated},
		{"wrong token", "nope", "nope", api.CodeUnauthenticated, api.CodeUnauthenticated},
		{"api token everywhere", "api-secret-0123456789", "", "", api.CodeUnauthenticated},
		{"both tokens", "api-secret-0123456789", "admin-secret-0123456789", "", ""},
		{"admin token only", "", "admin-secret-0123456789", api.CodeUnauthenticated, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for proto, c := range b.clients(t, tc.token, tc.admin) {
				assert.Equal(t, tc.api, client.CodeOf(call["api"](c)), "%s api", proto)
				assert.Equal(t, tc.adminCode, client.CodeOf(call["admin"](c)), "%s admin", proto)
				assert.NoError(t, c.Healthz(ctx), "%s health is open", proto)
			}
		})
	}
	assert.Contains(t, listServices(t, b.grpcAddr), "tierd.v1.Tierd", "reflection is open")
	_, err := tierdv1.NewTierdClient(dialRaw(t, b.grpcAddr)).ListCollections(ctx, &tierdv1.ListCollectionsRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Equal(t, api.CodeUnauthenticated, grpcapi.ReasonOf(err))
}

func dialRaw(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return conn
}

// TestGRPCReflectionListsTheServices lists the services through server
// reflection.
func TestGRPCReflectionListsTheServices(t *testing.T) {
	names := listServices(t, startBoth(t, nil).grpcAddr)
	assert.Contains(t, names, "tierd.v1.Tierd")
	assert.Contains(t, names, "grpc.health.v1.Health")
	assert.Contains(t, names, "grpc.reflection.v1.ServerReflection")
	assert.Contains(t, names, "grpc.reflection.v1alpha.ServerReflection")
}

// listServices lists the services of the gRPC server at addr through
// server reflection, sorted.
func listServices(t *testing.T, addr string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(dialRaw(t, addr)).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	slices.Sort(names)
	return names
}

// TestGRPCHealthFollowsTheServer: SERVING while the server runs,
// NOT_SERVING once Close began.
func TestGRPCHealthFollowsTheServer(t *testing.T) {
	b := startBoth(t, nil)
	ctx := context.Background()
	hc := healthpb.NewHealthClient(dialRaw(t, b.grpcAddr))
	for _, svc := range []string{"", "tierd.v1.Tierd"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), svc)
	}
	b.closed = true
	require.NoError(t, b.srv.Close(ctx))
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "tierd.v1.Tierd"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, resp.GetStatus())
}

// TestGRPCSharesTheInFlightLimit: a gRPC call holding the only slot of
// http.max_in_flight makes the next gRPC and REST calls fail at once with
// overloaded; health stays open.
func TestGRPCSharesTheInFlightLimit(t *testing.T) {
	hold := holdAt(t, "warm.written", 1) // released before the server's cleanup, also when the test fails
	b := startBoth(t, func(c *config.Config) { c.HTTP.MaxInFlight = 1 }, server.WithHook(hold.Hook))
	cs := b.clients(t, "", "")
	ctx := context.Background()
	_, err := cs["grpc"].CreateCollection(ctx, api.CreateCollectionRequest{Name: "a", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = cs["grpc"].Insert(ctx, "a", []api.Vector{vec("x", 1, 2)})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := cs["grpc"].SetTier(ctx, "a", api.TierWarm)
		errc <- err
	}()
	hold.Wait(t, 1)
	for proto, c := range cs {
		_, err := c.ListCollections(ctx)
		assert.Equal(t, api.CodeOverloaded, client.CodeOf(err), "%s: %v", proto, err)
		assert.NoError(t, c.Healthz(ctx), proto)
	}
	_, err = tierdv1.NewTierdClient(dialRaw(t, b.grpcAddr)).ListCollections(ctx, &tierdv1.ListCollectionsRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err))
	hold.Release()
	require.NoError(t, <-errc)
	got, err := cs["grpc"].GetCollection(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, api.TierWarm, got.Tier)
}

// TestRESTAndGRPCAgreeUnderContention: the answers that depend on the
// server's state rather than on the request (a transition in progress, a
// quota) carry the same code over both APIs of one server.
func TestRESTAndGRPCAgreeUnderContention(t *testing.T) {
	hold := holdAt(t, "warm.written", 1) // released before the server's cleanup, also when the test fails
	b := startBoth(t, func(c *config.Config) { c.Quotas.Collections = 1 }, server.WithHook(hold.Hook))
	cs := b.clients(t, "", "")
	ctx := context.Background()
	_, err := cs["rest"].CreateCollection(ctx, api.CreateCollectionRequest{Name: "a", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = cs["rest"].Insert(ctx, "a", []api.Vector{vec("x", 1, 2)})
	require.NoError(t, err)
	for proto, c := range cs {
		_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "b", Dimension: 2, Metric: api.MetricL2})
		assert.Equal(t, api.CodeQuotaExceeded, client.CodeOf(err), "%s: %v", proto, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := cs["rest"].SetTier(ctx, "a", api.TierWarm)
		errc <- err
	}()
	hold.Wait(t, 1)
	for proto, c := range cs {
		_, err := c.SetTier(ctx, "a", api.TierCold)
		assert.Equal(t, api.CodeTransitionInProgress, client.CodeOf(err), "%s: %v", proto, err)
	}
	_, err = tierdv1.NewTierdClient(dialRaw(t, b.grpcAddr)).SetTier(ctx, &tierdv1.SetTierRequest{Name: "a", Target: "cold"})
	assert.Equal(t, codes.Aborted, status.Code(err))
	hold.Release()
	require.NoError(t, <-errc)
}
