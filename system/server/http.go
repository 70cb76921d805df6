package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tierchaos/tierchaos/system/api"
)

// scope is the token group of a route.
type scope int

const (
	// scopeAPI: /v1/ routes other than /v1/admin/.
	scopeAPI scope = iota
	// scopeAdmin: /v1/admin/ routes.
	scopeAdmin
)

// requiredToken returns the token a route of sc requires ("" for none):
// the API routes take auth.api_token; the admin routes take
// auth.admin_token, or auth.api_token when only that one is set, so that
// the admin routes are never open while the API is protected.
func (s *Server) requiredToken(sc scope) string {
	if sc == scopeAdmin && s.cfg.Auth.AdminToken != "" {
		return s.cfg.Auth.AdminToken
	}
	return s.cfg.Auth.APIToken
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// tokenMatches compares in constant time; hashing first makes the time
// independent of the lengths too.
func tokenMatches(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// authorize requires the bearer token of sc (if one is configured) before next.
func (s *Server) authorize(sc scope, next http.Handler) http.Handler {
	want := s.requiredToken(sc)
	if want == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r)
		if ok && tokenMatches(got, want) {
			next.ServeHTTP(w, r)
			return
		}
		challenge := `Bearer realm="tierd"`
		msg := "this route requires a bearer token (Authorization: Bearer <token>)"
		if ok {
			challenge += `, error="invalid_token"`
			msg = "the bearer token is not valid for this route"
		}
		s.metrics.unauthenticated.Inc()
		w.Header().Set("WWW-Authenticate", challenge)
		s.writeError(w, r, &api.Error{Code: api.CodeUnauthenticated, Message: msg})
	})
}

// limit serves at most cfg.HTTP.MaxInFlight requests at once; the others
// answer 503 overloaded with Retry-After at once instead of queueing.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inFlight <- struct{}{}:
		default:
			s.metrics.overloaded.Inc()
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, api.Errorf(api.CodeOverloaded, "%s", overloadedMessage(s.cfg.HTTP.MaxInFlight)))
			return
		}
		defer func() { <-s.inFlight }()
		next.ServeHTTP(w, r)
	})
}

// overloadedMessage is the message of an overloaded answer (REST and gRPC).
func overloadedMessage(maxInFlight int) string {
	return fmt.Sprintf("more than %d requests in flight; retry later", maxInFlight)
}

// routeErrors answers requests that match no route with JSON error
// bodies: 405 method_not_allowed with Allow when the path exists with
// other methods, else 404 not_found. Matched requests go to mux.
func (s *Server) routeErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer: 404, 405 (with Allow) or a redirect.
		cw := &captureWriter{header: http.Header{}}
		h.ServeHTTP(cw, r)
		switch cw.status {
		case http.StatusNotFound:
			s.writeError(w, r, api.Errorf(api.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		case http.StatusMethodNotAllowed:
			allow := cw.header.Get("Allow")
			w.Header().Set("Allow", allow)
			s.writeError(w, r, api.Errorf(api.CodeMethodNotAllowed, "method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
		default:
			for k, v := range cw.header {
				w.Header()[k] = v
			}
			w.WriteHeader(cw.status)
			_, _ = w.Write(cw.body.Bytes())
		}
	})
}

// captureWriter records an answer instead of sending it.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

// requireJSON checks that a request body is declared application/json
// (parameters such as charset allowed): a form or text/plain POST, which
// a browser sends cross-site without a preflight, is refused.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		if ct == "" {
			ct = "none"
		}
		return api.Errorf(api.CodeUnsupportedMediaType, "request body must be Content-Type: application/json, got %s", strconv.Quote(ct))
	}
	return nil
}

// Messages of server-side failures: the detail (file names, S3 endpoints,
// OS errors) goes to the log only.
var genericMessages = map[string]string{
	api.CodeInternal:            "internal error; the server log has the details",
	api.CodeInsufficientStorage: "the data volume is full",
	api.CodeStorageUnavailable:  "object storage is unavailable or did not answer within the deadline; retry later",
	api.CodeBucketNotFound:      "the object storage bucket does not exist; nothing was changed",
	api.CodeDataCorrupted:       "stored data failed its integrity check",
	api.CodeUnimplemented:       "not implemented",
}

// localCause reports whether err comes from the local file system (a
// network error wraps a *os.SyscallError too: it is not local).
func localCause(err error) bool {
	var ne *net.OpError
	if errors.As(err, &ne) {
		return false
	}
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	return errors.As(err, &pe) || errors.As(err, &le) || errors.As(err, &se)
}

// publicMessage is the message an error answer (REST or gRPC) about the
// collection name ("" for none) shows. Client errors (4xx)
// keep their message, which describes the request, as does overloaded.
// Other server errors (5xx) show a fixed message per code, prefixed with
// the route's collection, as their detail may name files in the data
// folder, S3 endpoints or OS errors; the detail goes to the log. An S3
// failure (data_corrupted, storage_unavailable, bucket_not_found) about an
// object also names the object key, which is public (a cold collection
// and a snapshot show theirs), never a local file. No message contains the
// data folder.
func (s *Server) publicMessage(name, code string, err error) string {
	msg := api.MessageOf(err)
	status := api.HTTPStatus(code)
	if (status < 500 || code == api.CodeOverloaded) && !s.mentionsDataDir(msg) {
		return msg
	}
	out, ok := genericMessages[code]
	if !ok {
		out = http.StatusText(status)
	}
	if name != "" && api.ValidateName(name) == nil {
		out = fmt.Sprintf("collection %q: %s", name, out)
	}
	switch code {
	case api.CodeDataCorrupted, api.CodeStorageUnavailable, api.CodeBucketNotFound:
		if key := s.objectKey.FindString(msg); key != "" && !localCause(err) && !s.mentionsDataDir(key) {
			out += " (object " + key + ")"
		}
	}
	return out
}

// objectKeyPattern matches the S3 keys tierd writes (see cold.Store):
// {prefix}collections/{name}/data|snapshots/{id}.parquet and the packs
// {prefix}packs/_batch/{time}-{seq}.pack.
func objectKeyPattern(prefix string) *regexp.Regexp {
	q := regexp.QuoteMeta(prefix)
	return regexp.MustCompile(q + `collections/[a-z0-9_-]{1,64}/(data|snapshots)/[0-9a-zA-Z]+\.parquet|` +
		q + `packs/_batch/[0-9A-Za-z.]+-[0-9]+\.pack`)
}

// mentionsDataDir reports whether msg contains the data folder's path,
// as a path of its own: "/data" in "open /data/wal/x.log" counts, in the
// object key "collections/c/data/1.parquet" it does not.
func (s *Server) mentionsDataDir(msg string) bool {
	for _, d := range []string{s.cfg.DataDir, filepath.Clean(s.cfg.DataDir)} {
		if d != "" && d != "." && d != "/" && containsPath(msg, d) {
			return true
		}
	}
	if abs, err := filepath.Abs(s.cfg.DataDir); err == nil && abs != "/" && containsPath(msg, abs) {
		return true
	}
	return false
}

// containsPath reports whether dir occurs in msg not preceded by a path
// character and followed by a slash or a character that ends a path.
func containsPath(msg, dir string) bool {
	for i := 0; i < len(msg); {
		j := strings.Index(msg[i:], dir)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(dir)
		if (j == 0 || !pathByte(msg[j-1])) && (end == len(msg) || msg[end] == '/' || !pathByte(msg[end])) {
			return true
		}
		i = j + 1
	}
	return false
}

// pathByte reports whether b can be part of a file path's name.
func pathByte(b byte) bool {
	return b == '/' || b == '.' || b == '_' || b == '-' || b == '~' ||
		'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

// writeError answers err. A request whose client went away (its context
// cancelled) gets no body: it is logged at debug and counted.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.metrics.cancelled.Inc()
		s.log.Debug("request cancelled by the client", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	code := api.CodeOf(err)
	status := api.HTTPStatus(code)
	if status >= 500 && code != api.CodeOverloaded {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: s.publicMessage(r.PathValue("name"), code, err)}})
}
