package s3fault

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidUpstream is returned (wrapped) by NewProxy for an unusable
// upstream URL.
var ErrInvalidUpstream = errors.New("s3fault: invalid upstream URL")

// Proxy is the S3-side http.Handler: it classifies each request, applies the
// rules and forwards the request to the upstream S3 endpoint, streaming
// bodies in both directions. The Host header reaches the upstream unchanged,
// so SigV4 signatures made for the proxy's address stay valid. It must be
// served by an http.Server (abort-style faults rely on the server recovering
// http.ErrAbortHandler).
//
// A Proxy is safe for concurrent use.
type Proxy struct {
	upstream  *url.URL
	engine    *engine
	log       *slog.Logger
	rp        *httputil.ReverseProxy
	cutRP     *httputil.ReverseProxy
	transport *http.Transport
	cutTrans  *http.Transport
	reqIDs    atomic.Uint64
	// creds sign the layer's own upstream requests (misdirect); nil: none.
	creds *Credentials
	// client sends the layer's own upstream requests through transport.
	client *http.Client
	bufs   bufferPool
	// journal keeps the last requests handled (Journal).
	journal *journal
}

// ProxyOption configures a Proxy.
type ProxyOption func(*proxyConfig)

type proxyConfig struct {
	log       *slog.Logger
	seed      uint64
	transport *http.Transport
	creds     *Credentials
	// journalSize is the journal bound; journalSizeSet tells 0 from unset.
	journalSize    int
	journalSizeSet bool
}

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) ProxyOption { return func(c *proxyConfig) { c.log = l } }

// WithSeed sets the layer seed used by rules without their own (default 0).
func WithSeed(seed uint64) ProxyOption { return func(c *proxyConfig) { c.seed = seed } }

// WithTransport sets the transport to the upstream. The Proxy clones it and
// switches off transparent compression and environment proxies. Default: a
// pool of up to 256 idle connections per host.
func WithTransport(t *http.Transport) ProxyOption {
	return func(c *proxyConfig) { c.transport = t }
}

// Credentials are the S3 credentials the Proxy signs its own upstream
// requests with (AWS Signature V4). Forwarded requests keep the client's own
// signature and never need them; only [ActionMisdirect] makes requests of its
// own (a ListObjectsV2 and a GetObject).
type Credentials struct {
	// AccessKey is the access key id.
	AccessKey string
	// SecretKey is the secret access key.
	SecretKey string
	// Region is the signing region. Empty means the region the client
	// signed the hit request for, else "us-east-1".
	Region string
}

// String renders the credentials without the secret key.
func (c Credentials) String() string {
	return fmt.Sprintf("{AccessKey:%s SecretKey:<redacted> Region:%s}", c.AccessKey, c.Region)
}

// GoString renders the credentials for %#v without the secret key.
func (c Credentials) GoString() string { return "s3fault.Credentials" + c.String() }

// ErrInvalidCredentials is returned (wrapped) by NewProxy for credentials
// with only one of the access and secret key.
var ErrInvalidCredentials = errors.New("s3fault: invalid credentials")

// WithCredentials sets the credentials the Proxy signs its own upstream
// requests with. Without them (the default) misdirect rules are refused.
func WithCredentials(c Credentials) ProxyOption {
	return func(cfg *proxyConfig) { cfg.creds = &c }
}

// NewProxy returns a Proxy forwarding to upstream, an http or https URL
// without path, query or fragment (e.g. "http://toxiproxy:8666").
func NewProxy(upstream string, opts ...ProxyOption) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidUpstream, upstream, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: %q: want http(s)://host:port with nothing after it", ErrInvalidUpstream, upstream)
	}
	u.Path = ""
	cfg := proxyConfig{log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if c := cfg.creds; c != nil && (c.AccessKey == "") != (c.SecretKey == "") {
		return nil, fmt.Errorf("%w: set both the access key and the secret key, or neither", ErrInvalidCredentials)
	}
	if c := cfg.creds; c != nil && c.AccessKey == "" {
		cfg.creds = nil
	}
	if !cfg.journalSizeSet {
		cfg.journalSize = DefaultJournalSize
	}
	if cfg.journalSize < 0 {
		return nil, fmt.Errorf("%w: %d: want 0 (off) or more", ErrInvalidJournalSize, cfg.journalSize)
	}
	var base *http.Transport
	if cfg.transport != nil {
		base = cfg.transport.Clone()
	} else {
		base = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	base.Proxy = nil
	base.DisableCompression = true
	// Cut uploads go through a transport without write buffering, so that
	// every body byte read before the cut has reached the upstream socket
	// when the request is aborted.
	cut := base.Clone()
	cut.WriteBufferSize = 1
	cut.DisableKeepAlives = true

	p := &Proxy{
		upstream:  u,
		engine:    newEngine(cfg.seed),
		log:       cfg.log,
		transport: base,
		cutTrans:  cut,
		creds:     cfg.creds,
		journal:   newJournal(cfg.journalSize),
		client: &http.Client{
			Transport: base,
			// The layer's own requests report what the upstream said.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	p.rp = p.newReverseProxy(base)
	p.cutRP = p.newReverseProxy(cut)
	return p, nil
}

func (p *Proxy) newReverseProxy(t http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		ModifyResponse: p.modifyResponse,
		Transport:      t,
		BufferPool:     &bufferPool{},
		// Pass every chunk on as it arrives, so that slow or trickling
		// upstreams (Toxiproxy bandwidth, slicer) look the same to clients.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ErrorHandler:  p.upstreamFailed,
	}
}

// forwardedHeaders are removed by httputil.ReverseProxy before Rewrite; the
// proxy restores them to stay transparent.
var forwardedHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.upstream)
	pr.Out.Host = pr.In.Host
	for _, h := range forwardedHeaders {
		if v, ok := pr.In.Header[h]; ok {
			pr.Out.Header[h] = v
		}
	}
}

// CloseIdleUpstream closes the idle keep-alive connections to the upstream,
// so that the next requests open new ones. Use it after changing TCP-level
// faults (Toxiproxy) that would otherwise not reach pooled connections.
// Connections in use are left alone.
func (p *Proxy) CloseIdleUpstream() {
	p.transport.CloseIdleConnections()
	p.cutTrans.CloseIdleConnections()
}

// Close releases idle upstream connections.
func (p *Proxy) Close() { p.CloseIdleUpstream() }

// Upstream returns the upstream URL.
func (p *Proxy) Upstream() string { return p.upstream.String() }

// AddRule validates r and appends it to the rules. A bad rule gives a
// *RuleError (errors.Is(err, ErrInvalidRule)). A misdirect rule on a Proxy
// without credentials ([WithCredentials]) gives CodeActionNotApplicable on
// field "action.kind".
func (p *Proxy) AddRule(r Rule) (RuleStatus, error) {
	if err := r.Validate(); err != nil {
		return RuleStatus{}, err
	}
	if r.Action.Kind == ActionMisdirect && p.creds == nil {
		return RuleStatus{}, ruleErr(CodeActionNotApplicable, "action.kind",
			"misdirect needs upstream credentials to list and read objects; start the layer with "+
				"S3FAULT_ACCESS_KEY and S3FAULT_SECRET_KEY (s3fault.WithCredentials)")
	}
	st, err := p.engine.add(r)
	if err != nil {
		return RuleStatus{}, err
	}
	p.log.Info("s3fault rule added", "id", st.ID, "name", r.Name, "ops", r.Ops,
		"trigger", r.Trigger.Kind, "action", r.Action.Kind, "seed", st.Seed)
	return st, nil
}

// Rule returns the rule with the given id, or an error matching
// ErrRuleNotFound.
func (p *Proxy) Rule(id string) (RuleStatus, error) { return p.engine.get(id) }

// Rules lists the rules in evaluation order.
func (p *Proxy) Rules() []RuleStatus { return p.engine.list() }

// DeleteRule removes a rule; its counters stay in Stats until the next reset.
func (p *Proxy) DeleteRule(id string) error {
	if err := p.engine.delete(id); err != nil {
		return err
	}
	p.log.Info("s3fault rule deleted", "id", id)
	return nil
}

// DeleteAllRules removes every rule and returns how many there were.
func (p *Proxy) DeleteAllRules() int {
	n := p.engine.deleteAll()
	p.log.Info("s3fault rules cleared", "count", n)
	return n
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats { return p.engine.snapshot() }

// ResetStats zeroes the counters and empties the request journal (rules
// and their trigger state stay).
func (p *Proxy) ResetStats() {
	p.engine.resetStats()
	p.journal.reset()
}

// SetSeed sets the layer seed for rules added from now on that have no seed
// of their own.
func (p *Proxy) SetSeed(seed uint64) { p.engine.setSeed(seed) }

// Seed returns the layer seed.
func (p *Proxy) Seed() uint64 { return p.engine.getSeed() }

// reqState is one request's state. It travels with a forwarded request
// through the reverse proxy, and it is the ResponseWriter the request is
// answered through, so that it sees the status sent to the client and
// records the journal entry (journal.go).
type reqState struct {
	http.ResponseWriter
	p   *Proxy
	req Request
	cut atomic.Bool
	// at is the arrival time and gen the journal generation then.
	at  time.Time
	gen uint64
	// rule and action are the journal's rule: the fault's, else delayRule
	// (the first delay rule that fired, with ActionDelay).
	rule      string
	action    ActionKind
	delayRule string
	// code is the S3 error code sent, if known.
	code string
	// recorded is set once the journal entry is recorded.
	recorded bool
}

// setFault sets the journal's rule to f's, or to the delay rule when f is
// nil (no fault, or its hit was taken back).
func (st *reqState) setFault(f *firing) {
	switch {
	case f != nil:
		st.rule, st.action = f.ruleID, f.action.Kind
	case st.delayRule != "":
		st.rule, st.action = st.delayRule, ActionDelay
	default:
		st.rule, st.action = "", ""
	}
}

type stateKey struct{}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	st := &reqState{ResponseWriter: rw, p: p, at: time.Now(), gen: p.journal.generation()}
	// Requests that end without a status (cut, aborted, client gone) are
	// recorded here, also when the handler panics to abort the connection.
	defer p.recordEntry(st, 0)
	// Everything is answered through st, which records the status.
	var w http.ResponseWriter = st
	req := Classify(r)
	st.req = req
	d := p.engine.decide(req)
	f := d.fault
	st.delayRule = d.delayRule
	st.setFault(f)
	if d.delay > 0 {
		t := time.NewTimer(d.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f == nil {
		p.forward(w, r, st, p.rp)
		return
	}
	p.log.Debug("s3fault injecting", "rule", f.ruleID, "action", f.action.Kind, "op", req.Op,
		"bucket", req.Bucket, "key", req.Key)
	switch f.action.Kind {
	case ActionSlowDown, ActionInternalError, ActionError:
		if p.answerError(w, r, st, f) {
			p.engine.injected(f, req.Op)
		}
	case ActionTruncateBody:
		tw := &truncateWriter{ResponseWriter: w, remaining: f.action.Bytes,
			onCut: func() { p.engine.injected(f, req.Op) }}
		p.forward(tw, r, st, p.rp)
	case ActionFlipBits:
		fw := &flipWriter{ResponseWriter: w, f: f, onFlip: func() { p.engine.injected(f, req.Op) }}
		p.forward(fw, r, st, p.rp)
	case ActionCutRequestBody:
		if r.ContentLength >= 0 && r.ContentLength <= f.action.Bytes {
			p.forward(w, r, st, p.rp)
			return
		}
		r.Body = &cutReader{body: r.Body, remaining: f.action.Bytes, onCut: func() {
			st.cut.Store(true)
			p.engine.injected(f, req.Op)
		}}
		p.forward(w, r, st, p.cutRP)
	case ActionMisdirect:
		p.misdirect(w, r, st, f)
	}
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *reqState, rp *httputil.ReverseProxy) {
	p.engine.forwarded(st.req.Op)
	rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// upstreamFailed handles a forwarded request that got no upstream response:
// it aborts the client connection, so the client sees a transport error as
// it would without the layer (not a made-up 502).
func (p *Proxy) upstreamFailed(_ http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	switch {
	case st == nil:
		p.log.Warn("s3fault upstream request failed", "err", err)
	case st.cut.Load():
		p.log.Debug("s3fault upload cut", "op", st.req.Op, "bucket", st.req.Bucket, "key", st.req.Key)
	default:
		p.engine.upstreamError(st.req.Op)
		p.log.Warn("s3fault upstream request failed", "op", st.req.Op, "bucket", st.req.Bucket,
			"key", st.req.Key, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// s3ErrorBody is S3's XML error document.
type s3ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

// answerError writes the S3 error of f's action without forwarding. It
// reports whether the answer was written (false when the client left).
func (p *Proxy) answerError(w http.ResponseWriter, r *http.Request, st *reqState, f *firing) bool {
	a := f.action
	status, code, msg := a.Status, a.Code, a.Message
	retryAfter := a.RetryAfter != 0
	switch a.Kind {
	case ActionSlowDown:
		status, code, msg = http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."
		retryAfter = true
	case ActionInternalError:
		status, code, msg = http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."
	}
	if msg == "" {
		msg = statusText(status)
	}
	// Read the request body first (unless the client waits for 100
	// Continue): answering while the client still sends would make it see a
	// reset connection instead of the error.
	if r.Body != nil && r.Header.Get("Expect") != "100-continue" {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return false
		}
	}
	reqID := fmt.Sprintf("%016X", p.reqIDs.Add(1))
	st.code = code
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("X-Amz-Request-Id", reqID)
	h.Set("X-S3fault-Rule", f.ruleID)
	if retryAfter {
		h.Set("Retry-After", retryAfterHeader(a.RetryAfter))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return true
	}
	body, err := xml.Marshal(s3ErrorBody{Code: code, Message: msg, Resource: r.URL.Path, RequestID: reqID})
	if err != nil {
		// Only strings are marshalled; this cannot fail.
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	body = append([]byte(xml.Header), body...)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err = w.Write(body)
	return err == nil
}

// errFaultCut is the error the fault writers and readers return to make the
// reverse proxy abort.
var errFaultCut = errors.New("s3fault: cut by fault rule")

// truncateWriter passes the first remaining bytes of a 2xx response body,
// then fails the write so that the reverse proxy aborts the connection.
type truncateWriter struct {
	http.ResponseWriter
	remaining   int64
	onCut       func()
	wroteHeader bool
	active      bool
}

// WriteHeader records whether the response is a 2xx one (only those are cut).
func (t *truncateWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		t.ResponseWriter.WriteHeader(code)
		return
	}
	t.wroteHeader = true
	t.active = code >= 200 && code < 300
	t.ResponseWriter.WriteHeader(code)
}

// Write passes bytes until the limit, then flushes and fails.
func (t *truncateWriter) Write(b []byte) (int, error) {
	if !t.wroteHeader {
		t.WriteHeader(http.StatusOK)
	}
	if !t.active || int64(len(b)) <= t.remaining {
		n, err := t.ResponseWriter.Write(b)
		t.remaining -= int64(n)
		return n, err
	}
	n, err := t.ResponseWriter.Write(b[:t.remaining])
	t.remaining -= int64(n)
	if err != nil {
		return n, err
	}
	// Push what was allowed through before the connection is dropped.
	if err := http.NewResponseController(t.ResponseWriter).Flush(); err != nil {
		return n, fmt.Errorf("flush before cut: %w", err)
	}
	t.onCut()
	return n, errFaultCut
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *truncateWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// flipWindow is the span bits are flipped in when a response has no
// Content-Length.
const flipWindow = 4096

// flipWriter flips seeded bits of a 2xx response body.
type flipWriter struct {
	http.ResponseWriter
	f           *firing
	onFlip      func()
	wroteHeader bool
	flips       map[int64]byte // byte offset -> XOR mask
	order       []int64        // offsets still to flip, ascending
	off         int64
	flipped     bool
	scratch     []byte
}

// WriteHeader draws the bit positions for a 2xx response from its length.
func (fw *flipWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		fw.ResponseWriter.WriteHeader(code)
		return
	}
	fw.wroteHeader = true
	if code >= 200 && code < 300 {
		size := int64(flipWindow)
		if cl, err := strconv.ParseInt(fw.Header().Get("Content-Length"), 10, 64); err == nil {
			size = cl
		}
		fw.flips = flipMasks(fw.f, size)
		fw.order = slices.Sorted(maps.Keys(fw.flips))
	}
	fw.ResponseWriter.WriteHeader(code)
}

// flipMasks draws f.action.Flips distinct bit positions in a body of size
// bytes from the firing's generator.
func flipMasks(f *firing, size int64) map[int64]byte {
	bits := size * 8
	n := int64(f.action.Flips)
	if bits <= 0 {
		return nil
	}
	rng := f.rng()
	out := make(map[int64]byte)
	if n >= bits {
		for b := range bits {
			out[b/8] |= 1 << (b % 8)
		}
		return out
	}
	chosen := make(map[int64]bool, n)
	for int64(len(chosen)) < n {
		b := rng.Int64N(bits)
		if chosen[b] {
			continue
		}
		chosen[b] = true
		out[b/8] |= 1 << (b % 8)
	}
	return out
}

// Write passes b on, with the drawn bits that fall inside it flipped.
func (fw *flipWriter) Write(b []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	start, end := fw.off, fw.off+int64(len(b))
	fw.off = end
	if len(fw.order) == 0 || fw.order[0] >= end {
		return fw.ResponseWriter.Write(b)
	}
	// Write must not modify b, so flips go into a copy.
	fw.scratch = append(fw.scratch[:0], b...)
	for len(fw.order) > 0 && fw.order[0] < end {
		at := fw.order[0]
		fw.order = fw.order[1:]
		fw.scratch[at-start] ^= fw.flips[at]
		if !fw.flipped {
			fw.flipped = true
			fw.onFlip()
		}
	}
	return fw.ResponseWriter.Write(fw.scratch)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (fw *flipWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }

// cutReader yields the first remaining bytes of a request body, then fails.
type cutReader struct {
	body      io.ReadCloser
	remaining int64
	onCut     func()
	cut       bool
}

// Read yields body bytes up to the cut point, then errFaultCut.
func (c *cutReader) Read(b []byte) (int, error) {
	if c.cut {
		return 0, errFaultCut
	}
	if len(b) == 0 {
		return 0, nil
	}
	if c.remaining == 0 {
		// The body may end exactly at the cut point: then nothing is cut.
		var one [1]byte
		for {
			n, err := c.body.Read(one[:])
			if n > 0 {
				break
			}
			if err != nil {
				return 0, err
			}
		}
		c.cut = true
		c.onCut()
		return 0, errFaultCut
	}
	if int64(len(b)) > c.remaining {
		b = b[:c.remaining]
	}
	n, err := c.body.Read(b)
	c.remaining -= int64(n)
	return n, err
}

// Close closes the underlying body.
func (c *cutReader) Close() error { return c.body.Close() }

// bufferPool is the reverse proxies' pool of 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

// Get returns a 32 KiB buffer.
func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

// Put returns buf to the pool.
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
