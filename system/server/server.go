// Package server is tierd's network layer: the versioned REST API, health
// endpoints, the gRPC API (tierd.v1.Tierd with the health service and
// reflection, over the same store calls and validation), and the debug
// handler with pprof and Prometheus metrics. It wires the configuration to
// the store and the object store.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/pprof"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/health"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/fsutil"
	"github.com/tierchaos/tierchaos/system/store"
	"github.com/tierchaos/tierchaos/system/worker"
	"github.com/tierchaos/tierchaos/uploader"
)

// Option customises New.
type Option func(*options)

type options struct {
	objects uploader.ObjectStore
	hook    func(point string)
	fs      fsutil.FS
}

// WithHook installs a transition hook (see store.Options.Hook); tests use
// it to inject crashes between the steps of a transition.
func WithHook(hook func(point string)) Option {
	return func(o *options) { o.hook = hook }
}

// WithObjectStore makes the server use objs for the cold tier instead of
// building a MinIO store from the configuration (tests, in-process runs).
func WithObjectStore(objs uploader.ObjectStore) Option {
	return func(o *options) { o.objects = objs }
}

// WithFS makes the store use fsys for its data folder instead of the
// operating system's (in-process tests: a power-loss layer).
func WithFS(fsys fsutil.FS) Option {
	return func(o *options) { o.fs = fsys }
}

// Server is a running tierd instance without its listeners.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	store   *store.Store
	reg     *prometheus.Registry
	metrics *httpMetrics
	worker  *worker.Worker
	ready   atomic.Bool
	closer  io.Closer
	objects *haltableObjects // nil without an object store; halted by Abandon
	bg      sync.WaitGroup
	stop    context.CancelFunc
	// inFlight holds one token per API request being served (capacity
	// cfg.HTTP.MaxInFlight).
	inFlight chan struct{}
	// objectKey finds an S3 object key in an error message.
	objectKey *regexp.Regexp
	// health holds the health services of the gRPC servers built by
	// GRPCServer; Close marks them NOT_SERVING.
	healthMu sync.Mutex
	health   []*health.Server
}

// bucketEnsurer is implemented by object stores that can create their bucket.
type bucketEnsurer interface {
	EnsureBucket(ctx context.Context) error
}

// New validates cfg, connects the object store (ensuring the bucket with
// retries for at most cfg.S3.StartupTimeout, then in the background), and
// returns a ready server.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bgctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: log, reg: prometheus.NewRegistry(), stop: stop, inFlight: make(chan struct{}, cfg.HTTP.MaxInFlight),
		objectKey: objectKeyPattern(cfg.S3.Prefix)}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newHTTPMetrics(s.reg)

	objs := o.objects
	if objs == nil && cfg.S3.Endpoint != "" {
		ms, err := uploader.NewMinIOStore(uploader.MinIOConfig{
			Endpoint: cfg.S3.Endpoint, AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey,
			Bucket: cfg.S3.Bucket, UseSSL: cfg.S3.UseSSL, Pool: cfg.Uploader().Pool,
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("object store: %w", err)
		}
		objs, s.closer = ms, ms
	}
	var cs *cold.Store
	if objs != nil {
		s.objects = &haltableObjects{objs: objs}
		retries := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierd_s3_retries_total", Help: "Retried S3 operations by operation.",
		}, []string{"op"})
		s3Time := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tierd_s3_operation_duration_seconds", Help: "Duration of S3 operations by operation and result (ok or error), retries and backoff included.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}, []string{"op", "result"})
		s.reg.MustRegister(retries, s3Time)
		var err error
		cs, err = cold.New(s.objects, cold.Options{
			Prefix: cfg.S3.Prefix, OpTimeout: cfg.S3.OpTimeout.D(), MaxRetries: cfg.RetryAttempts() - 1,
			BackoffBase: cfg.Retry.Base.D(), BackoffCap: cfg.Retry.Cap.D(), Batch: cfg.Uploader().Batch,
			PartSize: cfg.S3.PartSize, Concurrency: cfg.S3.Concurrency, VerifyReadback: cfg.S3.VerifyReadback,
			OnRetry: func(op string) { retries.WithLabelValues(op).Inc() },
			OnDone: func(op string, d time.Duration, err error) {
				result := "ok"
				if err != nil {
					result = "error"
				}
				s3Time.WithLabelValues(op, result).Observe(d.Seconds())
			},
		}, log)
		if err != nil {
			stop()
			return nil, err
		}
		if be, ok := objs.(bucketEnsurer); ok {
			if err := s.ensureBucket(ctx, be, cfg.S3.StartupTimeout.D()); err != nil {
				log.Warn("bucket not ensured at start; retrying in the background", "bucket", cfg.S3.Bucket, "err", err)
				s.bg.Add(1)
				go func() {
					defer s.bg.Done()
					_ = s.ensureBucket(bgctx, be, 0)
				}()
			}
		}
	}
	st, err := store.Open(store.Options{
		DataDir: cfg.DataDir, Limits: cfg.Limits, Quotas: cfg.Quotas, WAL: cfg.WAL,
		CheckpointBytes: cfg.Worker.CheckpointBytes, Cold: cs, Registerer: s.reg, Hook: o.hook, FS: o.fs,
		PackThreshold: packThreshold(cfg.Batch),
	}, log)
	if err != nil {
		stop()
		s.bg.Wait()
		if s.closer != nil {
			_ = s.closer.Close()
		}
		return nil, err
	}
	s.store = st
	s.worker = worker.New(cfg.Worker.Interval.D(), cfg.Worker.Paused, func(ctx context.Context, cyc *api.WorkerCycle) {
		st.Maintain(ctx, store.MaintainOptions{HotIdle: cfg.Worker.HotIdle.D(), WarmIdle: cfg.Worker.WarmIdle.D()}, cyc)
	}, log)
	s.worker.Start(bgctx)
	if cs != nil {
		// Orphans of transitions interrupted by a crash: swept once S3 answers.
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.sweepAtStart(bgctx)
		}()
	}
	s.ready.Store(true)
	return s, nil
}

// packThreshold is the store's PackThreshold for the batch settings: the
// size threshold, or 0 (never pack) when packing is off.
func packThreshold(b config.Batch) int64 {
	if !b.Enabled {
		return 0
	}
	return b.SizeThreshold
}

// sweepAtStart runs the orphan sweep until it succeeds once or ctx ends,
// then retries the pending deletes and interrupted uploads once.
func (s *Server) sweepAtStart(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for {
		removed, err := s.store.SweepOrphans(ctx)
		if err == nil {
			// Uploads a crash interrupted, by exact key (MinIO lists
			// incomplete uploads by exact key only), and pending deletes.
			left := s.store.RetryDeletes(ctx)
			s.log.Info("start-up orphan sweep done", "removed", len(removed), "deletes_left_for_the_worker", left)
			return
		}
		s.log.Warn("start-up orphan sweep failed; retrying", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// ensureBucket retries EnsureBucket with capped exponential backoff for at
// most limit (0: until ctx ends).
func (s *Server) ensureBucket(ctx context.Context, be bucketEnsurer, limit time.Duration) error {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.cfg.S3.OpTimeout.D())
		err := be.EnsureBucket(actx)
		cancel()
		if err == nil {
			s.log.Info("bucket ready", "bucket", s.cfg.S3.Bucket, "attempts", attempt)
			return nil
		}
		s.log.Debug("ensure bucket failed", "attempt", attempt, "err", err)
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ensure bucket %q after %d attempts: %w", s.cfg.S3.Bucket, attempt, err)
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Store returns the collection store (for in-process tests).
func (s *Server) Store() *store.Store { return s.store }

// Close stops the worker and background work, closes the store (its WAL)
// and releases the object store.
func (s *Server) Close(ctx context.Context) error {
	s.ready.Store(false)
	s.shutdownHealth()
	s.stop()
	done := make(chan struct{})
	go func() {
		s.worker.Stop()
		s.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close: %w", ctx.Err())
	}
	err := s.store.Close()
	if s.closer != nil {
		err = errors.Join(err, s.closer.Close())
	}
	return err
}

// HTTPServer returns an http.Server for the REST API (Handler) with the
// configured timeouts (see config.HTTP for the reasoning behind the write
// timeout).
func (s *Server) HTTPServer() *http.Server {
	h := s.cfg.HTTP
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: h.ReadHeaderTimeout.D(),
		ReadTimeout:       h.ReadTimeout.D(),
		WriteTimeout:      h.WriteTimeout.D(),
		IdleTimeout:       h.IdleTimeout.D(),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Handler returns the REST API handler: /healthz and /readyz open and
// unlimited; the /v1/ routes behind the bearer tokens (config.Auth) and
// the in-flight limit; JSON errors for unknown routes (404) and wrong
// methods (405 with Allow).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeStorageUnavailable, Message: "not ready"}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	route := func(sc scope, pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, s.authorize(sc, s.limit(h)))
	}
	route(scopeAPI, "POST /v1/collections", s.handleCreate)
	route(scopeAPI, "GET /v1/collections", s.handleList)
	route(scopeAPI, "GET /v1/collections/{name}", s.handleGet)
	route(scopeAPI, "DELETE /v1/collections/{name}", s.handleDelete)
	route(scopeAPI, "POST /v1/collections/{name}/vectors", s.handleInsert)
	route(scopeAPI, "GET /v1/collections/{name}/vectors", s.handleListVectors)
	route(scopeAPI, "POST /v1/collections/{name}/search", s.handleSearch)
	route(scopeAPI, "POST /v1/collections/{name}/tier", s.handleTier)
	route(scopeAPI, "POST /v1/collections/{name}/snapshots", s.handleCreateSnapshot)
	route(scopeAPI, "GET /v1/collections/{name}/snapshots", s.handleListSnapshots)
	route(scopeAPI, "POST /v1/collections/{name}/restore", s.handleRestore)
	route(scopeAdmin, "GET /v1/admin/worker", s.handleWorkerState)
	route(scopeAdmin, "POST /v1/admin/worker", s.handleWorker)
	route(scopeAdmin, "GET /v1/admin/usage", s.handleUsage)
	return s.instrument(s.recoverPanics(s.routeErrors(mux)))
}

// DebugHandler returns pprof under /debug/pprof/ and Prometheus metrics at /metrics.
func (s *Server) DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return mux
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				s.writeError(w, r, api.Errorf(api.CodeInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req api.CreateCollectionRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.store.Create(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]api.Collection{"collections": s.store.List(r.Context())})
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Delete(r.Context(), r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleInsert(w http.ResponseWriter, r *http.Request) {
	var req api.InsertRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.store.Insert(r.Context(), r.PathValue("name"), req.Vectors)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.InsertResponse{Inserted: n})
}

// listQuery parses the query of GET /v1/collections/{name}/vectors:
// after (optional cursor) and limit (1..api.MaxListLimit, default
// api.DefaultListLimit). Unknown or repeated parameters are rejected.
func listQuery(q url.Values) (after string, limit int, err error) {
	limit = api.DefaultListLimit
	for k, vs := range q {
		if k != "after" && k != "limit" {
			return "", 0, api.Errorf(api.CodeInvalidArgument, "unknown query parameter %q (allowed: after, limit)", k)
		}
		if len(vs) != 1 {
			return "", 0, api.Errorf(api.CodeInvalidArgument, "query parameter %q given %d times", k, len(vs))
		}
	}
	if v, ok := q["limit"]; ok {
		n, perr := strconv.Atoi(v[0])
		if perr != nil {
			return "", 0, api.Errorf(api.CodeInvalidArgument, "limit must be an integer in 1..%d, got %q", api.MaxListLimit, v[0])
		}
		limit = n
	}
	after = q.Get("after")
	if err := validatePage(after, limit); err != nil {
		return "", 0, err
	}
	return after, limit, nil
}

// validatePage checks the cursor and page size of a vector listing (REST
// and gRPC).
func validatePage(after string, limit int) error {
	if err := api.ValidateListLimit(limit); err != nil {
		return &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	if err := api.ValidateCursor(after); err != nil {
		return &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	return nil
}

func (s *Server) handleListVectors(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.writeError(w, r, api.Errorf(api.CodeInvalidArgument, "malformed query: %s", err.Error()))
		return
	}
	after, limit, err := listQuery(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.store.ListVectors(r.Context(), r.PathValue("name"), after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	var req api.SearchRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.store.Search(r.Context(), r.PathValue("name"), req.Vector, req.K)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.SearchResponse{Results: res})
}

func (s *Server) handleTier(w http.ResponseWriter, r *http.Request) {
	var req api.SetTierRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.store.SetTier(r.Context(), r.PathValue("name"), req.Target)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleCreateSnapshot(w http.ResponseWriter, r *http.Request) {
	sn, err := s.store.CreateSnapshot(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sn)
}

func (s *Server) handleListSnapshots(w http.ResponseWriter, r *http.Request) {
	list, err := s.store.ListSnapshots(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.SnapshotList{Snapshots: list})
}

func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) {
	var req api.RestoreRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.store.Restore(r.Context(), r.PathValue("name"), req.Snapshot)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleWorkerState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.worker.State())
}

func (s *Server) handleWorker(w http.ResponseWriter, r *http.Request) {
	var req api.WorkerRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.workerAction(r.Context(), req.Action)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// workerAction applies a worker action (REST and gRPC) and returns the
// worker's state after it.
func (s *Server) workerAction(ctx context.Context, action string) (api.WorkerState, error) {
	switch action {
	case api.WorkerPause:
		return s.worker.Pause(), nil
	case api.WorkerResume:
		return s.worker.Resume(), nil
	case api.WorkerRunOnce:
		return s.worker.RunOnce(ctx), nil
	default:
		return api.WorkerState{}, api.Errorf(api.CodeInvalidArgument, "action must be pause, resume or run_once, got %q", action)
	}
}

func (s *Server) handleUsage(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.store.Usage())
}
