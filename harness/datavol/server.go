package datavol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
)

// nameRE is a valid volume name.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// CheckName validates a volume name: lower-case letters, digits and
// dashes, starting with a letter, at most 63 characters.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return &Error{Code: CodeBadPath, Op: "volume", Msg: fmt.Sprintf("volume name %q: want lower-case letters, digits and dashes, starting with a letter", name)}
	}
	return nil
}

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// NewHandler serves the sidecar's API for vols (name to directory).
func NewHandler(vols map[string]Dir, log *slog.Logger) (http.Handler, error) {
	for name := range vols {
		if err := CheckName(name); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{vols: vols, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", h.method(http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	mux.HandleFunc("/volumes/{name}/files", h.method(http.MethodGet, h.volume(h.files)))
	mux.HandleFunc("/volumes/{name}/file", h.method(http.MethodGet, h.volume(h.file)))
	mux.HandleFunc("/volumes/{name}/statfs", h.method(http.MethodGet, h.volume(h.statfs)))
	mux.HandleFunc("/volumes/{name}/fill", h.method(http.MethodPost, h.volume(h.fill)))
	mux.HandleFunc("/volumes/{name}/free", h.method(http.MethodPost, h.volume(h.free)))
	mux.HandleFunc("/volumes/{name}/clear", h.method(http.MethodPost, h.volume(h.clear)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no route "+r.URL.Path)
	})
	return mux, nil
}

type handler struct {
	vols map[string]Dir
	log  *slog.Logger
}

// volumeFunc handles a request on one volume.
type volumeFunc func(w http.ResponseWriter, r *http.Request, d Dir)

func (h *handler) method(m string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m))
			return
		}
		next(w, r)
	}
}

func (h *handler) volume(next volumeFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := CheckName(name); err != nil {
			h.fail(w, r, err)
			return
		}
		d, ok := h.vols[name]
		if !ok {
			names := make([]string, 0, len(h.vols))
			for n := range h.vols {
				names = append(names, n)
			}
			h.fail(w, r, &Error{Code: CodeUnknownVolume, Op: "volume", Msg: fmt.Sprintf("no volume %q (served: %s)", name, strings.Join(names, ", "))})
			return
		}
		next(w, r, d)
	}
}

func (h *handler) files(w http.ResponseWriter, r *http.Request, d Dir) {
	l, err := d.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, map[string]Listing{"files": l})
}

func (h *handler) file(w http.ResponseWriter, r *http.Request, d Dir) {
	b, err := d.ReadFile(r.Context(), r.URL.Query().Get("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

func (h *handler) statfs(w http.ResponseWriter, r *http.Request, d Dir) {
	sp, err := d.Statfs(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, sp)
}

func (h *handler) fill(w http.ResponseWriter, r *http.Request, d Dir) {
	n, err := d.Fill(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("filled", "volume", r.PathValue("name"), "bytes", n)
	writeJSON(w, map[string]int64{"bytes": n})
}

func (h *handler) free(w http.ResponseWriter, r *http.Request, d Dir) {
	n, err := d.Free(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("freed", "volume", r.PathValue("name"), "files", n)
	writeJSON(w, map[string]int{"removed": n})
}

func (h *handler) clear(w http.ResponseWriter, r *http.Request, d Dir) {
	if err := d.Clear(r.Context()); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("cleared", "volume", r.PathValue("name"))
	writeJSON(w, struct{}{})
}

// fail answers err with its code's status.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := CodeOf(err)
	status := http.StatusInternalServerError
	switch code {
	case CodeBadPath:
		status = http.StatusBadRequest
	case CodeNotFound, CodeUnknownVolume:
		status = http.StatusNotFound
	case CodeNotTmpfs:
		status = http.StatusConflict
	case CodeIO:
	default:
		code = CodeIO
	}
	msg := err.Error()
	var e *Error
	if errors.As(err, &e) {
		msg = e.Op + ": " + e.Msg
	}
	if status == http.StatusInternalServerError {
		h.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
