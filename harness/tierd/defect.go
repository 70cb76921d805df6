package tierd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/config"
	"github.com/tierchaos/tierchaos/system/server"
)

// Defect is a bug the harness can plant in an in-process tierd, so that a
// test can prove its checkers catch that class of bug.
type Defect string

// DefectDropInsert answers the next insert that tierd would accept exactly
// as tierd answers a successful insert (200 {"inserted":N}) without passing
// it to tierd: one acknowledged insert is lost. It fires once, then
// disarms.
const DefectDropInsert Defect = "drop_insert"

// ErrDefectUnsupported is returned by ArmDefect when tierd does not run in
// the test process.
var ErrDefectUnsupported = errors.New("harness: defects need tierd in the test process (TIERCHAOS_SUT=inprocess)")

// ArmDefect plants d in the in-process tierd until it fires once or
// ClearFaults disarms it. In container mode it returns an error wrapping
// ErrDefectUnsupported. Arming resets DefectFired.
func (s *Stack) ArmDefect(d Defect) error {
	switch d {
	case DefectDropInsert:
	default:
		return fmt.Errorf("harness: unknown defect %q", d)
	}
	if s.Mode != SUTInProcess {
		return fmt.Errorf("harness: defect %s in %s mode: %w", d, s.Mode, ErrDefectUnsupported)
	}
	s.defects.arm(d)
	s.log.Info("defect armed", "defect", d)
	return nil
}

// DefectFired reports whether the defect last armed has fired.
func (s *Stack) DefectFired() bool { return s.defects.hasFired() }

// defects holds the armed defect of an in-process tierd; it outlives tierd
// restarts (every instance's handler is wrapped with the same one).
type defects struct {
	log   *slog.Logger
	mu    sync.Mutex
	armed Defect
	fired bool
}

func (d *defects) arm(x Defect) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed, d.fired = x, false
}

func (d *defects) disarm() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = ""
}

func (d *defects) hasFired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired
}

func (d *defects) isArmed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.armed != ""
}

// wrap returns h with the defects applied; limits are the instance's
// request limits (what tierd itself would reject).
func (d *defects) wrap(h http.Handler, limits config.Limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := insertTarget(r)
		if !ok || !d.isArmed() {
			h.ServeHTTP(w, r)
			return
		}
		// Read the body once; whatever the defect does not take goes on to
		// tierd unchanged.
		body, err := io.ReadAll(io.LimitReader(r.Body, limits.MaxBodyBytes+1))
		if err != nil || int64(len(body)) > limits.MaxBodyBytes {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
			h.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		n, accept := acceptableInsert(h, r, name, body, limits)
		if !accept || !d.take(DefectDropInsert) {
			h.ServeHTTP(w, r)
			return
		}
		d.log.Warn("defect drop_insert fired: insert acknowledged and not passed to tierd", "collection", name, "vectors", n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(api.InsertResponse{Inserted: n})
	})
}

// take disarms x if it is armed and reports whether it was (so that one
// request alone fires it).
func (d *defects) take(x Defect) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed != x {
		return false
	}
	d.armed, d.fired = "", true
	return true
}

// insertTarget returns the collection of POST /v1/collections/{name}/vectors.
func insertTarget(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/collections/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/vectors")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// acceptableInsert reports whether tierd would accept the insert of body
// into name, checking what tierd checks before writing: the JSON body
// (unknown fields, trailing data), the collection's existence, the batch
// size, the ids, the dimension and finite values. Quotas and free disk
// space are not consulted. It returns the number of vectors tierd would
// report.
func acceptableInsert(h http.Handler, r *http.Request, name string, body []byte, limits config.Limits) (int, bool) {
	var req api.InsertRequest
	if err := server.DecodeJSON(bytes.NewReader(body), &req); err != nil {
		return 0, false
	}
	if len(req.Vectors) == 0 || len(req.Vectors) > limits.MaxVectorsPerInsert {
		return 0, false
	}
	// The collection's dimension, from tierd itself (a GET is not an access
	// and changes nothing).
	get, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/v1/collections/"+name, nil)
	if err != nil {
		return 0, false
	}
	get.Header.Set("Authorization", r.Header.Get("Authorization")) // the insert's own token
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get)
	if rec.Code != http.StatusOK {
		return 0, false
	}
	var c api.Collection
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		return 0, false
	}
	for _, v := range req.Vectors {
		if api.ValidateVectorID(v.ID) != nil || api.ValidateValues(v.Values, c.Dimension) != nil {
			return 0, false
		}
	}
	return len(req.Vectors), true
}
