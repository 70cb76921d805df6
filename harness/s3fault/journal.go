package s3fault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultJournalSize is the number of entries the request journal keeps
// unless [WithJournalSize] says otherwise.
const DefaultJournalSize = 100_000

// Bounds of the upstream error documents the journal reads a code from.
const (
	// journalMaxErrBody: only error bodies with a Content-Length of at most
	// this many bytes are read; S3 error documents are a few hundred bytes.
	journalMaxErrBody = 4 << 10
	// journalMaxCode bounds the length of a code taken from an upstream
	// body.
	journalMaxCode = 128
)

// ErrInvalidJournalSize is returned (wrapped) by NewProxy for a negative
// journal size.
var ErrInvalidJournalSize = errors.New("s3fault: invalid journal size")

// Entry is one request the layer handled, as kept in the request journal
// ([Proxy.Journal], [Client.Journal], GET /v1/journal).
type Entry struct {
	// At is when the request arrived at the layer.
	At time.Time `json:"at"`
	// Op is the request's operation.
	Op Op `json:"op"`
	// Key is the object key ("" for bucket operations).
	Key string `json:"key"`
	// Rule is the id of the rule that fired for the request, if any: the
	// rule of the non-delay fault, else the first delay rule that fired. A
	// rule that fired counts even when its fault did not take effect (a
	// body no longer than the cut point, say); a misdirect hit that was
	// taken back (no other object) does not.
	Rule string `json:"rule,omitempty"`
	// Action is the action kind of Rule.
	Action ActionKind `json:"action,omitempty"`
	// Status is the status sent to the client: the injected error's, the
	// upstream's for a forwarded request (also a truncated or bit-flipped
	// one), the other object's for a misdirected GET. It is 0 when the
	// connection was cut before a status (cut uploads, no upstream
	// response, the client left first).
	Status int `json:"status"`
	// Code is the S3 error code sent, if the answer was an error: the
	// injected one, or the upstream's when its error document was small
	// XML with a Content-Length (empty otherwise, and for HEAD).
	Code string `json:"code,omitempty"`
}

// WithJournalSize sets how many entries the request journal keeps (default
// [DefaultJournalSize]); when it is full, each new entry drops the oldest
// one. 0 switches the journal off; a negative size makes NewProxy fail with
// ErrInvalidJournalSize. The ring grows with use, up to 112 bytes per entry
// (64-bit) plus the entry's key.
func WithJournalSize(n int) ProxyOption {
	return func(c *proxyConfig) { c.journalSize = n; c.journalSizeSet = true }
}

// journal is the bounded ring of the last entries, in the order they were
// recorded. It is safe for concurrent use.
type journal struct {
	mu   sync.Mutex
	size int
	// buf grows up to size entries, then wraps: next is where the next
	// entry goes once it is full.
	buf  []Entry
	next int
	// gen counts resets; a request records its entry only when no reset
	// happened since it arrived.
	gen atomic.Uint64
}

func newJournal(size int) *journal { return &journal{size: size} }

// generation returns the current reset generation.
func (j *journal) generation() uint64 { return j.gen.Load() }

// record appends e unless the journal was reset since generation gen. The
// only allocation is the ring's amortised growth until it first fills.
func (j *journal) record(gen uint64, e *Entry) {
	if j.size == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if gen != j.gen.Load() {
		return
	}
	if len(j.buf) < j.size {
		if len(j.buf) == cap(j.buf) {
			grown := make([]Entry, len(j.buf), min(max(2*cap(j.buf), 64), j.size))
			copy(grown, j.buf)
			j.buf = grown
		}
		j.buf = append(j.buf, *e)
		return
	}
	j.buf[j.next] = *e
	j.next++
	if j.next == j.size {
		j.next = 0
	}
}

// entries returns a copy of the entries sorted by arrival time (oldest
// first; entries with the same time keep their recording order).
func (j *journal) entries() []Entry {
	j.mu.Lock()
	out := make([]Entry, 0, len(j.buf))
	out = append(out, j.buf[j.next:]...)
	out = append(out, j.buf[:j.next]...)
	j.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Entry) int { return a.At.Compare(b.At) })
	return out
}

// reset empties the journal and drops the entries of requests in flight.
func (j *journal) reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.gen.Add(1)
	// Keep the memory: the next test case fills it again.
	clear(j.buf)
	j.buf = j.buf[:0]
	j.next = 0
}

// Journal returns the request journal: one entry per S3 request the layer
// handled since start or the last stats reset ([Proxy.ResetStats], which
// POST /v1/reset also does), at most the journal size (oldest dropped),
// sorted by arrival time, oldest first. The layer's own upstream requests
// (misdirect) are not in it.
//
// An entry is recorded when its status is written to the client (before
// the client can read it), or when the request ends without a status; so
// once a client has a response, its entry is in the journal. A request
// still in flight during a reset is left out.
func (p *Proxy) Journal() []Entry { return p.journal.entries() }

// recordEntry records st's entry once, with status (0: none was sent).
func (p *Proxy) recordEntry(st *reqState, status int) {
	if st.recorded {
		return
	}
	st.recorded = true
	p.journal.record(st.gen, &Entry{At: st.at, Op: st.req.Op, Key: st.req.Key,
		Rule: st.rule, Action: st.action, Status: status, Code: st.code})
}

// WriteHeader records the request's entry with the first final status and
// passes the status on.
func (st *reqState) WriteHeader(code int) {
	if code >= 200 && !st.recorded {
		st.p.recordEntry(st, code)
	}
	st.ResponseWriter.WriteHeader(code)
}

// Write records the entry with an implicit 200 if no status was written.
func (st *reqState) Write(b []byte) (int, error) {
	if !st.recorded {
		st.p.recordEntry(st, http.StatusOK)
	}
	return st.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (st *reqState) Unwrap() http.ResponseWriter { return st.ResponseWriter }

// modifyResponse takes the S3 error code from a small upstream XML error
// document for the journal. The body is read only when it is at most
// journalMaxErrBody bytes with a Content-Length, and is passed on
// unchanged.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	if resp.StatusCode < 400 || resp.ContentLength <= 0 || resp.ContentLength > journalMaxErrBody ||
		p.journal.size == 0 || resp.Request == nil || resp.Request.Method == http.MethodHead {
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "xml") {
		return nil
	}
	st, _ := resp.Request.Context().Value(stateKey{}).(*reqState)
	if st == nil {
		return nil
	}
	body := make([]byte, resp.ContentLength)
	n, err := io.ReadFull(resp.Body, body)
	if err != nil {
		// Pass on what arrived and then the error, as streaming would
		// have: the reverse proxy aborts the client connection.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body[:n]), errReader{err}), resp.Body}
		return nil
	}
	resp.Body = readCloser{bytes.NewReader(body), resp.Body}
	st.code = s3ErrorCode(body)
	return nil
}

// s3ErrorCode returns the text of the first <Code> element of an S3 error
// document, or "" when there is none or it does not look like a code.
func s3ErrorCode(doc []byte) string {
	_, rest, ok := bytes.Cut(doc, []byte("<Code>"))
	if !ok {
		return ""
	}
	code, _, ok := bytes.Cut(rest, []byte("</Code>"))
	code = bytes.TrimSpace(code)
	if !ok || len(code) == 0 || len(code) > journalMaxCode || bytes.ContainsAny(code, "<>&\r\n") {
		return ""
	}
	return string(code)
}

// readCloser reads from r and closes c.
type readCloser struct {
	r io.Reader
	c io.Closer
}

func (rc readCloser) Read(b []byte) (int, error) { return rc.r.Read(b) }
func (rc readCloser) Close() error               { return rc.c.Close() }

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("upstream error body: %w", e.err) }
