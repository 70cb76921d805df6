package kv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Limits of the API.
const (
	// MaxValueBytes is the largest value a put or compare-and-set takes.
	MaxValueBytes = 64 << 10
	// maxBodyBytes bounds a compare-and-set body (two values and JSON).
	maxBodyBytes = 2*MaxValueBytes + 1024
)

// Error codes of the API (the "code" of an error body).
const (
	CodeBadKey        = "bad_key"
	CodeValueTooLarge = "value_too_large"
	CodeBadRequest    = "bad_request"
	CodeNotFound      = "not_found"
	// CodeUnavailable: S3 failed; for a write, whether it took effect is
	// unknown.
	CodeUnavailable = "s3_unavailable"
)

// keyPattern is what a key may be.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CASRequest is the body of POST /v1/kv/{key}/cas.
type CASRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// CASResponse is its answer.
type CASResponse struct {
	Swapped bool `json:"swapped"`
}

// Config is the server's configuration, from KVSTORE_* variables.
type Config struct {
	// Listen is the API's address (KVSTORE_LISTEN, ":8080").
	Listen string
	// S3Endpoint is host:port of S3, plain HTTP (KVSTORE_S3_ENDPOINT).
	S3Endpoint string
	// AccessKey, SecretKey (KVSTORE_S3_ACCESS_KEY, KVSTORE_S3_SECRET_KEY).
	AccessKey, SecretKey string
	// Bucket must exist (KVSTORE_S3_BUCKET).
	Bucket string
	// S3Timeout bounds one S3 request (KVSTORE_S3_TIMEOUT, "2s").
	S3Timeout time.Duration
	// UnsafeAck plants the write-behind bug (KVSTORE_UNSAFE_ACK, "false").
	UnsafeAck bool
}

// FromEnv reads the configuration through getenv and checks it.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Listen: getenv("KVSTORE_LISTEN"), S3Endpoint: getenv("KVSTORE_S3_ENDPOINT"),
		AccessKey: getenv("KVSTORE_S3_ACCESS_KEY"), SecretKey: getenv("KVSTORE_S3_SECRET_KEY"),
		Bucket: getenv("KVSTORE_S3_BUCKET"), S3Timeout: 2 * time.Second,
	}
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	var errs []error
	if v := getenv("KVSTORE_S3_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("KVSTORE_S3_TIMEOUT=%q: want a positive duration", v))
		}
		c.S3Timeout = d
	}
	if v := getenv("KVSTORE_UNSAFE_ACK"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("KVSTORE_UNSAFE_ACK=%q: want true or false", v))
		}
		c.UnsafeAck = b
	}
	for name, v := range map[string]string{"KVSTORE_S3_ENDPOINT": c.S3Endpoint, "KVSTORE_S3_ACCESS_KEY": c.AccessKey,
		"KVSTORE_S3_SECRET_KEY": c.SecretKey, "KVSTORE_S3_BUCKET": c.Bucket} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("kv: config: %w", err)
	}
	return c, nil
}

// Server is the store behind its HTTP API.
type Server struct {
	store *Store
	log   *slog.Logger
	mux   *http.ServeMux
	// s3 is the S3 client's transport, whose idle connections Close and
	// Release end.
	s3 *http.Transport
}

// New connects to S3, waits until the bucket answers (up to ctx), and
// returns the server.
func New(ctx context.Context, c Config, log *slog.Logger) (*Server, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: time.Minute}
	// One attempt per request: the store answers a failed write with an
	// error rather than retrying it behind the client's back.
	cli, err := minio.New(c.S3Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		MaxRetries: 1,
		Transport:  tr,
	})
	if err != nil {
		return nil, fmt.Errorf("kv: S3 client: %w", err)
	}
	for {
		ok, err := cli.BucketExists(ctx, c.Bucket)
		if err == nil && ok {
			break
		}
		if err == nil {
			err = fmt.Errorf("no bucket %q", c.Bucket)
		}
		select {
		case <-ctx.Done():
			tr.CloseIdleConnections()
			return nil, fmt.Errorf("kv: S3 bucket: %w (last: %w)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if c.UnsafeAck {
		log.Warn("UNSAFE ACK: writes are acknowledged before S3 has them (the planted bug)")
	}
	s := &Server{store: NewStore(cli, c.Bucket, c.S3Timeout, c.UnsafeAck, log), log: log, mux: http.NewServeMux(), s3: tr}
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.mux.HandleFunc("GET /v1/kv/{key}", s.get)
	s.mux.HandleFunc("PUT /v1/kv/{key}", s.put)
	s.mux.HandleFunc("DELETE /v1/kv/{key}", s.delete)
	s.mux.HandleFunc("POST /v1/kv/{key}/cas", s.cas)
	return s, nil
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.mux }

// Close waits for the writes in flight (until ctx ends) and closes the
// idle S3 connections. The HTTP server in front is shut down before.
func (s *Server) Close(ctx context.Context) error {
	err := s.store.Flush(ctx)
	s.Release()
	return err
}

// Kill ends the store at once (Store.Kill): acknowledged writes that
// are not in S3 yet (unsafe-ack) are lost.
func (s *Server) Kill() { s.store.Kill() }

// Release closes the idle S3 connections of a killed server, as a dead
// process's kernel would.
func (s *Server) Release() { s.s3.CloseIdleConnections() }

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	v, exists, err := s.store.Get(r.Context(), key)
	switch {
	case err != nil:
		s.fail(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	case !exists:
		s.fail(w, http.StatusNotFound, CodeNotFound, "no key "+key)
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = io.WriteString(w, v)
	}
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxValueBytes+1))
	if err != nil {
		s.fail(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if len(body) > MaxValueBytes {
		s.fail(w, http.StatusRequestEntityTooLarge, CodeValueTooLarge, fmt.Sprintf("a value is at most %d bytes", MaxValueBytes))
		return
	}
	s.done(w, s.store.Put(r.Context(), key, string(body)))
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if key, ok := s.key(w, r); ok {
		s.done(w, s.store.Delete(r.Context(), key))
	}
}

func (s *Server) cas(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	var req CASRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, CodeBadRequest, "body: "+err.Error())
		return
	}
	if len(req.From) > MaxValueBytes || len(req.To) > MaxValueBytes {
		s.fail(w, http.StatusRequestEntityTooLarge, CodeValueTooLarge, fmt.Sprintf("a value is at most %d bytes", MaxValueBytes))
		return
	}
	swapped, err := s.store.CompareAndSet(r.Context(), key, req.From, req.To)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(CASResponse{Swapped: swapped})
}

// key returns the request's key, or answers 400.
func (s *Server) key(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	if !keyPattern.MatchString(key) {
		s.fail(w, http.StatusBadRequest, CodeBadKey, "a key is 1 to 128 of A-Z a-z 0-9 . _ -")
		return "", false
	}
	return key, true
}

// done answers a write: 204, or 503 when S3 failed.
func (s *Server) done(w http.ResponseWriter, err error) {
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Code: code, Message: msg})
}
