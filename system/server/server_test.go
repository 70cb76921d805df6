package server_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
	"github.com/tierchaos/tierchaos/uploader"
)

type env struct {
	c    *client.Client
	url  string
	srv  *server.Server
	objs *uploader.MemStore
}

// oneVector creates collection name (dimension 2, dot product) holding
// the vector a = (1, 1).
func (e *env) oneVector(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 2, Metric: api.MetricDot})
	require.NoError(t, err)
	_, err = e.c.Insert(ctx, name, []api.Vector{{ID: "a", Values: []float32{1, 1}}})
	require.NoError(t, err)
}

// start runs a server over an httptest listener. withObjects false gives a
// server without any object store.
func start(t *testing.T, withObjects bool, mod func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.S3.OpTimeout = config.Duration(2 * time.Second)
	cfg.Worker.Paused = true
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var opts []server.Option
	e := &env{}
	if withObjects {
		e.objs = uploader.NewMemStore()
		opts = append(opts, server.WithObjectStore(e.objs))
	}
	srv, err := server.New(context.Background(), cfg, log, opts...)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		require.NoError(t, srv.Close(context.Background()))
	})
	e.c, e.url, e.srv = client.New(hs.URL), hs.URL, srv
	return e
}

func TestBadInputAnswers(t *testing.T) {
	e := start(t, true, func(c *config.Config) {
		c.Limits.MaxBodyBytes = 4096
		c.Limits.MaxVectorsPerInsert = 5
	})
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "c1", Dimension: 3, Metric: api.MetricCosine})
	require.NoError(t, err)
	_, err = e.c.Insert(ctx, "c1", []api.Vector{{ID: "a", Values: []float32{1, 2, 3}}})
	require.NoError(t, err)

	many := `{"vectors":[` + strings.TrimSuffix(strings.Repeat(`{"id":"x","values":[1,2,3]},`, 6), ",") + `]}`
	huge := `{"vectors":[{"id":"x","values":[` + strings.TrimSuffix(strings.Repeat("1,", 3000), ",") + `]}]}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"create malformed json", "POST", "/v1/collections", `{"name":`, 400, api.CodeInvalidArgument},
		{"create empty body", "POST", "/v1/collections", ``, 400, api.CodeInvalidArgument},
		{"create unknown field", "POST", "/v1/collections", `{"name":"x","dimension":3,"metric":"l2","shards":2}`, 400, api.CodeInvalidArgument},
		{"create trailing data", "POST", "/v1/collections", `{"name":"x","dimension":3,"metric":"l2"} {}`, 400, api.CodeInvalidArgument},
		{"create wrong type", "POST", "/v1/collections", `{"name":"x","dimension":"3","metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create uppercase name", "POST", "/v1/collections", `{"name":"C1","dimension":3,"metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create empty name", "POST", "/v1/collections", `{"name":"","dimension":3,"metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create long name", "POST", "/v1/collections", `{"name":"` + strings.Repeat("a", 65) + `","dimension":3,"metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create slash name", "POST", "/v1/collections", `{"name":"a/b","dimension":3,"metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create dimension 0", "POST", "/v1/collections", `{"name":"x","dimension":0,"metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create dimension too big", "POST", "/v1/collections", `{"name":"x","dimension":4097,"metric":"l2"}`, 400, api.CodeInvalidArgument},
		{"create bad metric", "POST", "/v1/collections", `{"name":"x","dimension":3,"metric":"manhattan"}`, 400, api.CodeInvalidArgument},
		{"create duplicate", "POST", "/v1/collections", `{"name":"c1","dimension":3,"metric":"l2"}`, 409, api.CodeAlreadyExists},
		{"get bad name", "GET", "/v1/collections/Bad!", ``, 400, api.CodeInvalidArgument},
		{"get missing", "GET", "/v1/collections/nope", ``, 404, api.CodeNotFound},
		{"delete missing", "DELETE", "/v1/collections/nope", ``, 404, api.CodeNotFound},
		{"insert missing collection", "POST", "/v1/collections/nope/vectors", `{"vectors":[{"id":"a","values":[1,2,3]}]}`, 404, api.CodeNotFound},
		{"insert wrong dimension", "POST", "/v1/collections/c1/vectors", `{"vectors":[{"id":"a","values":[1,2]}]}`, 400, api.CodeInvalidArgument},
		{"insert NaN literal", "POST", "/v1/collections/c1/vectors", `{"vectors":[{"id":"a","values":[NaN,2,3]}]}`, 400, api.CodeInvalidArgument},
		{"insert Infinity literal", "POST", "/v1/collections/c1/vectors", `{"vectors":[{"id":"a","values":[Infinity,2,3]}]}`, 400, api.CodeInvalidArgument},
		{"insert float32 overflow", "POST", "/v1/collections/c1/vectors", `{"vectors":[{"id":"a","values":[1e39,2,3]}]}`, 400, api.CodeInvalidArgument},
		{"insert string value", "POST", "/v1/collections/c1/vectors", `{"vectors":[{"id":"a","values":["1",2,3]}]}`, 400, api.CodeInvalidArgument},
		{"insert no vectors", "POST", "/v1/collections/c1/vectors", `{"vectors":[]}`, 400, api.CodeInvalidArgument},
		{"insert empty id", "POST", "/v1/collections/c1/vectors", `{"vectors":[{"id":"","values":[1,2,3]}]}`, 400, api.CodeInvalidArgument},
		{"insert too many vectors", "POST", "/v1/collections/c1/vectors", many, 413, api.CodePayloadTooLarge},
		{"insert body too large", "POST", "/v1/collections/c1/vectors", huge, 413, api.CodePayloadTooLarge},
		{"search k 0", "POST", "/v1/collections/c1/search", `{"vector":[1,2,3],"k":0}`, 400, api.CodeInvalidArgument},
		{"search k negative", "POST", "/v1/collections/c1/search", `{"vector":[1,2,3],"k":-1}`, 400, api.CodeInvalidArgument},
		{"search k 1001", "POST", "/v1/collections/c1/search", `{"vector":[1,2,3],"k":1001}`, 400, api.CodeInvalidArgument},
		{"search k missing", "POST", "/v1/collections/c1/search", `{"vector":[1,2,3]}`, 400, api.CodeInvalidArgument},
		{"search wrong dimension", "POST", "/v1/collections/c1/search", `{"vector":[1,2,3,4],"k":1}`, 400, api.CodeInvalidArgument},
		{"search zero cosine vector", "POST", "/v1/collections/c1/search", `{"vector":[0,0,0],"k":1}`, 400, api.CodeInvalidArgument},
		{"search NaN", "POST", "/v1/collections/c1/search", `{"vector":[NaN,0,0],"k":1}`, 400, api.CodeInvalidArgument},
		{"search missing collection", "POST", "/v1/collections/nope/search", `{"vector":[1,2,3],"k":1}`, 404, api.CodeNotFound},
		{"tier bad target", "POST", "/v1/collections/c1/tier", `{"target":"lukewarm"}`, 400, api.CodeInvalidArgument},
		{"tier missing collection", "POST", "/v1/collections/nope/tier", `{"target":"cold"}`, 404, api.CodeNotFound},
		{"restore empty id", "POST", "/v1/collections/c1/restore", `{"snapshot":""}`, 400, api.CodeInvalidArgument},
		{"restore unknown snapshot", "POST", "/v1/collections/c1/restore", `{"snapshot":"nope"}`, 404, api.CodeNotFound},
		{"snapshots of missing collection", "GET", "/v1/collections/nope/snapshots", ``, 404, api.CodeNotFound},
		{"list limit 0", "GET", "/v1/collections/c1/vectors?limit=0", ``, 400, api.CodeInvalidArgument},
		{"list limit too big", "GET", "/v1/collections/c1/vectors?limit=10001", ``, 400, api.CodeInvalidArgument},
		{"list limit not a number", "GET", "/v1/collections/c1/vectors?limit=ten", ``, 400, api.CodeInvalidArgument},
		{"list limit repeated", "GET", "/v1/collections/c1/vectors?limit=1&limit=2", ``, 400, api.CodeInvalidArgument},
		{"list unknown parameter", "GET", "/v1/collections/c1/vectors?offset=5", ``, 400, api.CodeInvalidArgument},
		{"list cursor too long", "GET", "/v1/collections/c1/vectors?after=" + strings.Repeat("a", 257), ``, 400, api.CodeInvalidArgument},
		{"list malformed query", "GET", "/v1/collections/c1/vectors?after=%zz", ``, 400, api.CodeInvalidArgument},
		{"list missing collection", "GET", "/v1/collections/nope/vectors", ``, 404, api.CodeNotFound},
		{"list bad name", "GET", "/v1/collections/Bad!/vectors", ``, 400, api.CodeInvalidArgument},
		{"worker bad action", "POST", "/v1/admin/worker", `{"action":"dance"}`, 400, api.CodeInvalidArgument},
		{"wrong method", "PUT", "/v1/collections/c1", `{}`, 405, api.CodeMethodNotAllowed},
		{"unknown route", "GET", "/v2/whatever", ``, 404, api.CodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, e.url+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.status, resp.StatusCode, "body: %s", body)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Contains(t, string(body), `"code":"`+tc.code+`"`)
			require.Contains(t, string(body), `"message":"`)
		})
	}
	// Nothing above changed the collection.
	got, err := e.c.GetCollection(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 1, got.Vectors)
}

func TestColdWithoutObjectStoreIsUnavailable(t *testing.T) {
	e := start(t, false, nil)
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "c", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	_, err = e.c.SetTier(ctx, "c", api.TierCold)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, http.StatusServiceUnavailable, ce.StatusCode)
	require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err))
}

// randomVectors returns n vectors with ids v0000.. and a fraction of
// duplicated values so that ties occur.
func randomVectors(r *rand.Rand, n, dim int) []api.Vector {
	out := make([]api.Vector, n)
	for i := range out {
		v := make([]float32, dim)
		for d := range v {
			v[d] = float32(r.IntN(7)) - 3
		}
		out[i] = api.Vector{ID: "v" + strconv.Itoa(10000 + i)[1:], Values: v}
	}
	return out
}

// oracle is a brute-force top-k written from the documented contract.
func oracle(m api.Metric, vs []api.Vector, q []float32, k int) []api.Result {
	res := make([]api.Result, 0, len(vs))
	for _, v := range vs {
		var dot, qq, vv, l2 float64
		for i := range q {
			a, b := float64(q[i]), float64(v.Values[i])
			dot += a * b
			qq += a * a
			vv += b * b
			l2 += (a - b) * (a - b)
		}
		s := dot
		switch m {
		case api.MetricL2:
			s = math.Sqrt(l2)
		case api.MetricCosine:
			s = 0
			if vv != 0 {
				s = dot / (math.Sqrt(qq) * math.Sqrt(vv))
			}
		}
		res = append(res, api.Result{ID: v.ID, Score: s})
	}
	slices.SortStableFunc(res, func(a, b api.Result) int {
		switch {
		case a.Score == b.Score:
			return strings.Compare(a.ID, b.ID)
		case (m == api.MetricL2) == (a.Score < b.Score):
			return -1
		default:
			return 1
		}
	})
	return res[:min(k, len(res))]
}

func TestExactSearchThroughTiers(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	for i, m := range []api.Metric{api.MetricCosine, api.MetricL2, api.MetricDot} {
		t.Run(string(m), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			name := "exact-" + string(m)
			_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: name, Dimension: 4, Metric: m})
			require.NoError(t, err)
			vs := randomVectors(r, 300, 4)
			n, err := e.c.Insert(ctx, name, vs)
			require.NoError(t, err)
			require.Equal(t, 300, n)
			// Re-inserting an id replaces it.
			vs[5].Values = []float32{9, 9, 9, 9}
			_, err = e.c.Insert(ctx, name, vs[5:6])
			require.NoError(t, err)
			check := func() {
				t.Helper()
				for _, k := range []int{1, 10, 299, 1000} {
					q := []float32{float32(r.IntN(5)) + 1, float32(r.IntN(5)) - 2, 1, 0}
					got, err := e.c.Search(ctx, name, q, k)
					require.NoError(t, err)
					require.Equal(t, oracle(m, vs, q, k), got, "k=%d", k)
				}
			}
			check()
			c, err := e.c.SetTier(ctx, name, api.TierCold)
			require.NoError(t, err)
			require.Equal(t, api.TierCold, c.Tier)
			require.Equal(t, 300, c.Vectors)
			objs, err := e.objs.ListObjects(ctx, "collections/"+name+"/")
			require.NoError(t, err)
			require.Len(t, objs, 1)
			require.Equal(t, c.Object, objs[0].Key)
			c, err = e.c.SetTier(ctx, name, api.TierHot)
			require.NoError(t, err)
			require.Equal(t, api.TierHot, c.Tier)
			check()
			// A search on a cold collection promotes it transparently.
			_, err = e.c.SetTier(ctx, name, api.TierCold)
			require.NoError(t, err)
			check()
			c, err = e.c.GetCollection(ctx, name)
			require.NoError(t, err)
			require.Equal(t, api.TierHot, c.Tier)
		})
	}
}

func TestDemotionFailureKeepsCollectionHot(t *testing.T) {
	e := start(t, true, func(c *config.Config) { c.S3.OpTimeout = config.Duration(300 * time.Millisecond) })
	ctx := context.Background()
	_, err := e.c.CreateCollection(ctx, api.CreateCollectionRequest{Name: "f", Dimension: 2, Metric: api.MetricL2})
	require.NoError(t, err)
	vs := []api.Vector{{ID: "a", Values: []float32{0, 1}}, {ID: "b", Values: []float32{1, 0}}}
	_, err = e.c.Insert(ctx, "f", vs)
	require.NoError(t, err)
	cases := []struct {
		name  string
		fault uploader.Fault
	}{
		{"put connection reset", uploader.Fault{Kind: uploader.FaultConnReset, Op: uploader.OpPutObject}},
		{"put hangs past the deadline", uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpPutObject, Delay: time.Minute}},
		{"put cut mid-body", uploader.Fault{Kind: uploader.FaultPartial, Op: uploader.OpPutObject, Bytes: 10}},
		{"stat fails after a stored put", uploader.Fault{Kind: uploader.FaultInternal, Op: uploader.OpStatObject}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.objs.Inject(tc.fault)
			require.NoError(t, err)
			t.Cleanup(func() { e.objs.RemoveFault(id) })
			began := time.Now()
			_, err = e.c.SetTier(ctx, "f", api.TierCold)
			require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "err: %v", err)
			require.Less(t, time.Since(began), 5*time.Second)
			c, err := e.c.GetCollection(ctx, "f")
			require.NoError(t, err)
			require.Equal(t, api.TierHot, c.Tier)
			got, err := e.c.Search(ctx, "f", []float32{0, 1}, 2)
			require.NoError(t, err)
			require.Equal(t, oracle(api.MetricL2, vs, []float32{0, 1}, 2), got)
			e.objs.RemoveFault(id)
			objs, err := e.objs.ListObjects(ctx, "collections/f/")
			require.NoError(t, err)
			require.Empty(t, objs)
			ups, err := e.objs.ListMultipartUploads(ctx, "collections/f/")
			require.NoError(t, err)
			require.Empty(t, ups)
		})
	}
	c, err := e.c.SetTier(ctx, "f", api.TierCold)
	require.NoError(t, err)
	require.Equal(t, api.TierCold, c.Tier)
}

func TestConcurrentTransitionAnswersInProgress(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	e.oneVector(t, "t")
	// The first PUT hangs for 300ms and fails; the retry succeeds.
	_, err := e.objs.Inject(uploader.Fault{Kind: uploader.FaultTimeout, Op: uploader.OpPutObject, Delay: 300 * time.Millisecond, Times: 1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var firstErr error
	wg.Go(func() { _, firstErr = e.c.SetTier(ctx, "t", api.TierCold) })
	require.Eventually(t, func() bool {
		return e.objs.Metrics().Ops[uploader.OpPutObject].Calls >= 1
	}, 5*time.Second, 5*time.Millisecond)
	for _, target := range []api.Tier{api.TierCold, api.TierHot} {
		_, err = e.c.SetTier(ctx, "t", target)
		require.Equal(t, api.CodeTransitionInProgress, client.CodeOf(err), "target %s: %v", target, err)
	}
	wg.Wait()
	require.NoError(t, firstErr)
	c, err := e.c.GetCollection(ctx, "t")
	require.NoError(t, err)
	assert.Equal(t, api.TierCold, c.Tier)
}

func TestCorruptColdObjectIsNotServed(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	e.oneVector(t, "k")
	c, err := e.c.SetTier(ctx, "k", api.TierCold)
	require.NoError(t, err)
	id, err := e.objs.Inject(uploader.Fault{Kind: uploader.FaultCorrupt, Op: uploader.OpGetObject})
	require.NoError(t, err)
	_, err = e.c.Search(ctx, "k", []float32{1, 0}, 1)
	require.Equal(t, api.CodeDataCorrupted, client.CodeOf(err))
	require.ErrorContains(t, err, c.Object)
	got, err := e.c.GetCollection(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, api.TierCold, got.Tier)
	e.objs.RemoveFault(id)
	res, err := e.c.Search(ctx, "k", []float32{1, 0}, 1)
	require.NoError(t, err)
	require.Equal(t, []api.Result{{ID: "a", Score: 1}}, res)
}

// TestS3OperationMetrics: tierd times each S3 operation by its result.
func TestS3OperationMetrics(t *testing.T) {
	e := start(t, true, nil)
	ctx := context.Background()
	e.oneVector(t, "m")
	_, err := e.c.SetTier(ctx, "m", api.TierCold)
	require.NoError(t, err)
	id, err := e.objs.Inject(uploader.Fault{Kind: uploader.FaultConnReset, Op: uploader.OpGetObject})
	require.NoError(t, err)
	_, err = e.c.Search(ctx, "m", []float32{1, 0}, 1)
	require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err))
	e.objs.RemoveFault(id)
	_, err = e.c.Search(ctx, "m", []float32{1, 0}, 1)
	require.NoError(t, err)

	rec := httptest.NewRecorder()
	e.srv.DebugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`tierd_s3_operation_duration_seconds_count{op="put",result="ok"} 1`,
		`tierd_s3_operation_duration_seconds_count{op="stat",result="ok"} 1`,
		`tierd_s3_operation_duration_seconds_count{op="get",result="error"} 1`,
		`tierd_s3_operation_duration_seconds_count{op="get",result="ok"} 1`,
	} {
		require.Contains(t, body, want)
	}
}

func TestHealthAndDebug(t *testing.T) {
	e := start(t, false, nil)
	ctx := context.Background()
	require.NoError(t, e.c.Healthz(ctx))
	require.NoError(t, e.c.Readyz(ctx))
	dbg := httptest.NewServer(e.srv.DebugHandler())
	t.Cleanup(dbg.Close)
	for _, p := range []string{"/metrics", "/debug/pprof/"} {
		resp, err := http.Get(dbg.URL + p)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		if p == "/metrics" {
			require.Contains(t, string(body), "tierd_http_requests_total")
		}
	}
}

func clientCode(err error) string { return client.CodeOf(err) }
