package s3fault

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testStack is a fake S3 behind a Proxy, with the control API and clients.
type testStack struct {
	s3       *fakeS3
	proxy    *Proxy
	proxyURL *url.URL
	ctl      *Client
	http     *http.Client
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startProxy serves a Proxy for upstream and its control API.
func startProxy(t *testing.T, upstream string, opts ...ProxyOption) (*Proxy, *url.URL, *Client) {
	t.Helper()
	p, err := NewProxy(upstream, append([]ProxyOption{WithLogger(testLogger(t))}, opts...)...)
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		p.Close()
	})
	ctlSrv := httptest.NewServer(newTestControlHandler(t, p))
	t.Cleanup(ctlSrv.Close)
	ctl, err := NewClient(ctlSrv.URL, WithToken(testToken))
	require.NoError(t, err)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return p, u, ctl
}

func newTestStack(t *testing.T, opts ...ProxyOption) *testStack {
	t.Helper()
	s3 := newFakeS3(t)
	p, u, ctl := startProxy(t, s3.URL(), opts...)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &testStack{s3: s3, proxy: p, proxyURL: u, ctl: ctl, http: &http.Client{Transport: tr}}
}

// result is a response read to its end, or the error that ended it.
type result struct {
	resp    *http.Response
	body    []byte
	readErr error
}

func (s *testStack) do(t *testing.T, method, target string, body io.Reader, size int64) (result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if body != nil {
		// Hide the body's type so that net/http cannot rewind it: it would
		// silently replay a request the proxy aborted on a reused
		// connection, hiding the fault from the test.
		body = io.MultiReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.proxyURL.String()+target, body)
	require.NoError(t, err)
	if body != nil {
		req.ContentLength = size
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return result{resp: resp, body: b, readErr: rerr}, nil
}

func (s *testStack) addRule(t *testing.T, r Rule) string {
	t.Helper()
	id, err := s.ctl.AddRule(t.Context(), r)
	require.NoError(t, err)
	return id
}

func (s *testStack) stats(t *testing.T) Stats {
	t.Helper()
	st, err := s.ctl.Stats(t.Context())
	require.NoError(t, err)
	return st
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestForwardingIsTransparent(t *testing.T) {
	s := newTestStack(t)
	data := randomBytes(1, 3<<20)
	target := "/bkt/dir/a%20b%2Bc.bin?partNumber=1&uploadId=a%2Bb&x-id=UploadPart"
	s.s3.putObject("bkt", "seed", nil)
	// An unknown upload: the fake answers 404 NoSuchUpload, proving the
	// request arrived as sent.
	res, err := s.do(t, http.MethodPut, target, bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, res.resp.StatusCode)

	res, err = s.do(t, http.MethodPut, "/bkt/dir/a%20b%2Bc.bin", bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.resp.StatusCode)
	got, ok := s.s3.object("bkt", "dir/a b+c.bin")
	require.True(t, ok)
	assert.Equal(t, data, got)

	res, err = s.do(t, http.MethodGet, "/bkt/dir/a%20b%2Bc.bin", nil, 0)
	require.NoError(t, err)
	require.NoError(t, res.readErr)
	assert.Equal(t, data, res.body)
	assert.Equal(t, etag(data), res.resp.Header.Get("ETag"))

	seen := s.s3.seen()
	require.Len(t, seen, 3)
	assert.Equal(t, target, seen[0].RequestURI, "path and query reach the upstream byte for byte")
	for _, r := range seen {
		assert.Equal(t, s.proxyURL.Host, r.Host, "the Host the client signed reaches the upstream")
		assert.Empty(t, r.Header.Get("X-Forwarded-For"), "no header the client did not send")
	}

	st := s.stats(t)
	assert.Equal(t, OpStats{Seen: 1, Forwarded: 1}, st.Op(OpUploadPart))
	assert.Equal(t, OpStats{Seen: 1, Forwarded: 1}, st.Op(OpPutObject))
	assert.Equal(t, OpStats{Seen: 1, Forwarded: 1}, st.Op(OpGetObject))
}

func TestForwardedHeadersPassThrough(t *testing.T) {
	s := newTestStack(t)
	s.s3.putObject("b", "k", []byte("x"))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.proxyURL.String()+"/b/k", nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	req.Header.Set("X-Amz-Meta-Color", "blue")
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	seen := s.s3.seen()
	require.Len(t, seen, 1)
	assert.Equal(t, "192.0.2.7", seen[0].Header.Get("X-Forwarded-For"))
	assert.Equal(t, "blue", seen[0].Header.Get("X-Amz-Meta-Color"))
}

// TestBodiesStream shows that neither body is buffered whole: each side sees
// the first bytes while the other still holds the rest back.
func TestBodiesStream(t *testing.T) {
	firstSeen := make(chan struct{})
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Content-Length", "2048")
			_, _ = w.Write(make([]byte, 1024))
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write(make([]byte, 1024))
		case http.MethodPut:
			buf := make([]byte, 1024)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			close(firstSeen)
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Rest", strconv.FormatInt(n, 10))
		}
	}))
	t.Cleanup(upstream.Close)
	_, u, _ := startProxy(t, upstream.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	resp, err := http.DefaultClient.Do(mustRequest(t, ctx, http.MethodGet, u.String()+"/b/k", nil))
	require.NoError(t, err)
	first := make([]byte, 1024)
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err, "the first KiB arrives while the upstream holds the rest")
	close(release)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Len(t, rest, 1024)
	require.NoError(t, resp.Body.Close())

	pr, pw := io.Pipe()
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(mustRequest(t, ctx, http.MethodPut, u.String()+"/b/k", pr))
		if err != nil {
			_ = pr.CloseWithError(err)
			done <- nil
			return
		}
		_ = resp.Body.Close()
		done <- resp
	}()
	_, err = pw.Write(make([]byte, 1024))
	require.NoError(t, err)
	select {
	case <-firstSeen:
	case <-ctx.Done():
		t.Fatal("the upstream did not see the first KiB of an unfinished request body")
	}
	_, err = pw.Write(make([]byte, 4096))
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	putResp := <-done
	require.NotNil(t, putResp)
	assert.Equal(t, "4096", putResp.Header.Get("X-Rest"))
	http.DefaultClient.CloseIdleConnections()
}

func mustRequest(t *testing.T, ctx context.Context, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	require.NoError(t, err)
	return req
}

func TestErrorActions(t *testing.T) {
	tests := []struct {
		name       string
		action     Action
		method     string
		target     string
		op         Op
		wantStatus int
		wantCode   string
		wantRetry  string
	}{
		{"slow down put", SlowDown(2 * time.Second), http.MethodPut, "/b/collections/c1/snap.parquet", OpPutObject, 503, "SlowDown", "2"},
		{"slow down sub-second rounds up", SlowDown(300 * time.Millisecond), http.MethodGet, "/b/k", OpGetObject, 503, "SlowDown", "1"},
		{"slow down head has no body", SlowDown(time.Second), http.MethodHead, "/b/k", OpHeadObject, 503, "", "1"},
		{"internal error upload part", InternalError(), http.MethodPut, "/b/k?partNumber=1&uploadId=u", OpUploadPart, 500, "InternalError", ""},
		{"internal error complete", InternalError(), http.MethodPost, "/b/k?uploadId=u", OpCompleteMultipartUpload, 500, "InternalError", ""},
		{"access denied", S3Error(403, "AccessDenied", "Access Denied."), http.MethodDelete, "/b/k", OpDeleteObject, 403, "AccessDenied", ""},
		{"custom with retry after", Action{Kind: ActionError, Status: 429, Code: "Throttling", RetryAfter: Duration(5 * time.Second)},
			http.MethodGet, "/b?list-type=2", OpListObjectsV2, 429, "Throttling", "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStack(t)
			s.s3.putObject("b", "k", []byte("hello"))
			id := s.addRule(t, Rule{Ops: []Op{tt.op}, Trigger: Next(2), Action: tt.action})
			body := bytes.Repeat([]byte("x"), 300<<10)
			for range 2 {
				res, err := s.do(t, tt.method, tt.target, bytes.NewReader(body), int64(len(body)))
				require.NoError(t, err)
				assert.Equal(t, tt.wantStatus, res.resp.StatusCode)
				assert.Equal(t, tt.wantRetry, res.resp.Header.Get("Retry-After"))
				assert.Equal(t, id, res.resp.Header.Get("X-S3fault-Rule"))
				assert.NotEmpty(t, res.resp.Header.Get("X-Amz-Request-Id"))
				if tt.method == http.MethodHead {
					assert.Empty(t, res.body)
					continue
				}
				assert.Equal(t, "application/xml", res.resp.Header.Get("Content-Type"))
				var doc errorDoc
				require.NoError(t, xml.Unmarshal(res.body, &doc), string(res.body))
				assert.Equal(t, tt.wantCode, doc.Code)
				assert.NotEmpty(t, doc.Message)
				assert.Equal(t, res.resp.Header.Get("X-Amz-Request-Id"), doc.RequestID)
				u, err := url.Parse(tt.target)
				require.NoError(t, err)
				assert.Equal(t, u.Path, doc.Resource)
			}
			assert.Empty(t, s.s3.seen(), "answered by the layer, never forwarded")

			// The rule is used up: the third request goes through.
			res, err := s.do(t, tt.method, tt.target, bytes.NewReader(body), int64(len(body)))
			require.NoError(t, err)
			assert.Empty(t, res.resp.Header.Get("X-S3fault-Rule"))
			assert.Len(t, s.s3.seen(), 1)

			st := s.stats(t)
			assert.Equal(t, int64(3), st.Op(tt.op).Seen)
			assert.Equal(t, int64(1), st.Op(tt.op).Forwarded)
			assert.Equal(t, map[ActionKind]int64{tt.action.Kind: 2}, st.Op(tt.op).Injected)
			rs, ok := st.Rule(id)
			require.True(t, ok)
			assert.Equal(t, RuleStats{ID: id, Action: tt.action.Kind, Matched: 2, Fired: 2, Injected: 2}, rs)
			rule, err := s.ctl.Rule(t.Context(), id)
			require.NoError(t, err)
			assert.True(t, rule.Exhausted)
		})
	}
}

func TestTruncateBody(t *testing.T) {
	const size = 100_000
	tests := []struct {
		name         string
		bytes        int64
		key          string
		wantLen      int
		wantTruncErr bool
		wantInjected int64
	}{
		{"nothing passes", 0, "k", 0, true, 1},
		{"first KiB", 1024, "k", 1024, true, 1},
		{"all but one byte", size - 1, "k", size - 1, true, 1},
		{"body not longer than the cut", size, "k", size, false, 0},
		{"error responses are untouched", 10, "missing", -1, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStack(t)
			data := randomBytes(2, size)
			s.s3.putObject("b", "k", data)
			id := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: TruncateBody(tt.bytes)})

			res, err := s.do(t, http.MethodGet, "/b/"+tt.key, nil, 0)
			require.NoError(t, err)
			if tt.wantLen < 0 {
				assert.Equal(t, http.StatusNotFound, res.resp.StatusCode)
				assert.NoError(t, res.readErr)
				assert.Contains(t, string(res.body), "NoSuchKey")
			} else {
				assert.Equal(t, strconv.Itoa(size), res.resp.Header.Get("Content-Length"))
				assert.Equal(t, data[:tt.wantLen], res.body)
				if tt.wantTruncErr {
					assert.ErrorIs(t, res.readErr, io.ErrUnexpectedEOF, "the client sees a short body")
				} else {
					assert.NoError(t, res.readErr)
				}
			}
			rs, _ := s.stats(t).Rule(id)
			assert.Equal(t, int64(1), rs.Fired)
			assert.Equal(t, tt.wantInjected, rs.Injected)
			assert.Equal(t, tt.wantInjected, s.stats(t).Op(OpGetObject).Injected[ActionTruncateBody])

			// Used up: the next read is whole.
			res, err = s.do(t, http.MethodGet, "/b/k", nil, 0)
			require.NoError(t, err)
			require.NoError(t, res.readErr)
			assert.Equal(t, data, res.body)
		})
	}
}

func TestFlipBits(t *testing.T) {
	tests := []struct {
		name  string
		flips int
		size  int
	}{
		{"one bit", 1, 64 << 10},
		{"many bits over a large body", 25, 2 << 20},
		{"more bits than a tiny body has", 100, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStack(t)
			data := randomBytes(3, tt.size)
			s.s3.putObject("b", "obj", data)
			read := func() []byte {
				t.Helper()
				res, err := s.do(t, http.MethodGet, "/b/obj", nil, 0)
				require.NoError(t, err)
				require.NoError(t, res.readErr)
				assert.Equal(t, strconv.Itoa(tt.size), res.resp.Header.Get("Content-Length"))
				assert.Equal(t, etag(data), res.resp.Header.Get("ETag"), "headers unchanged")
				return res.body
			}
			rule := Rule{Ops: []Op{OpGetObject}, Key: "obj", Trigger: Next(1), Seed: SeedOf(9), Action: FlipBits(tt.flips)}
			id := s.addRule(t, rule)
			bad := read()
			require.Len(t, bad, tt.size)
			assert.NotEqual(t, etag(data), etag(bad), "the checksum catches the corruption")
			assert.Equal(t, min(tt.flips, tt.size*8), bitDiff(data, bad))
			assert.Equal(t, data, read(), "used up: the next read is clean")

			s.addRule(t, rule)
			assert.Equal(t, bad, read(), "the same seed flips the same bits")

			st := s.stats(t)
			assert.Equal(t, int64(2), st.Op(OpGetObject).Injected[ActionFlipBits])
			rs, _ := st.Rule(id)
			assert.Equal(t, int64(1), rs.Injected)
		})
	}
}

func bitDiff(a, b []byte) int {
	n := 0
	for i := range a {
		n += bits.OnesCount8(a[i] ^ b[i])
	}
	return n
}

func TestCutRequestBody(t *testing.T) {
	const size = 1 << 20
	tests := []struct {
		name    string
		cut     int64
		chunked bool
	}{
		{"inside the header buffer", 10, false},
		{"a few KiB", 5000, false},
		{"most of it", size - 1, false},
		{"chunked body", 70_000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStack(t)
			s.s3.putObject("b", "other", nil)
			id := s.addRule(t, Rule{Ops: []Op{OpPutObject}, Key: "snap/*", Trigger: Next(1), Action: CutRequestBody(tt.cut)})
			data := randomBytes(4, size)
			var body io.Reader = bytes.NewReader(data)
			length := int64(size)
			if tt.chunked {
				body, length = io.MultiReader(bytes.NewReader(data)), -1
			}
			_, err := s.do(t, http.MethodPut, "/b/snap/1", body, length)
			require.Error(t, err, "the client's connection is cut")

			// The upstream finishes reading its side of the cut on its own time.
			require.Eventually(t, func() bool { return len(s.s3.seen()) == 1 }, 5*time.Second, 5*time.Millisecond)
			_, ok := s.s3.object("b", "snap/1")
			assert.False(t, ok, "no object upstream")
			seen := s.s3.seen()
			assert.Equal(t, tt.cut, seen[0].BodyBytes, "exactly the allowed bytes reached the upstream")
			assert.Error(t, seen[0].BodyErr, "and the upstream saw the body end early")

			st := s.stats(t)
			assert.Equal(t, OpStats{Seen: 1, Forwarded: 1, Injected: map[ActionKind]int64{ActionCutRequestBody: 1}}, st.Op(OpPutObject))
			rs, _ := st.Rule(id)
			assert.Equal(t, int64(1), rs.Injected)

			// Used up: the retry stores the object.
			res, err := s.do(t, http.MethodPut, "/b/snap/1", bytes.NewReader(data), size)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, res.resp.StatusCode)
			got, ok := s.s3.object("b", "snap/1")
			require.True(t, ok)
			assert.Equal(t, data, got)
		})
	}
}

func TestCutRequestBodyShorterThanCutPasses(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			s := newTestStack(t)
			s.s3.putObject("b", "other", nil)
			id := s.addRule(t, Rule{Ops: []Op{OpPutObject}, Trigger: Always(), Action: CutRequestBody(1000)})
			data := randomBytes(5, 1000)
			var body io.Reader = bytes.NewReader(data)
			length := int64(len(data))
			if chunked {
				body, length = io.MultiReader(body), -1
			}
			res, err := s.do(t, http.MethodPut, "/b/k", body, length)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, res.resp.StatusCode)
			got, ok := s.s3.object("b", "k")
			require.True(t, ok)
			assert.Equal(t, data, got)
			rs, _ := s.stats(t).Rule(id)
			assert.Equal(t, RuleStats{ID: id, Action: ActionCutRequestBody, Matched: 1, Fired: 1, Injected: 0}, rs)
		})
	}
}

func TestDelay(t *testing.T) {
	s := newTestStack(t)
	s.s3.putObject("b", "k", []byte("v"))
	const latency = 150 * time.Millisecond
	id := s.addRule(t, Rule{Ops: []Op{OpHeadObject}, Trigger: Always(), Action: Delay(latency, 20*time.Millisecond)})
	start := time.Now()
	res, err := s.do(t, http.MethodHead, "/b/k", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), latency, "the answer waited at least the fixed latency")

	require.NoError(t, s.ctl.DeleteRule(t.Context(), id))
	res, err = s.do(t, http.MethodHead, "/b/k", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.resp.StatusCode)
	st := s.stats(t)
	assert.Equal(t, OpStats{Seen: 2, Forwarded: 2, Injected: map[ActionKind]int64{ActionDelay: 1}}, st.Op(OpHeadObject))
}

func TestDelayEndsWhenClientLeaves(t *testing.T) {
	s := newTestStack(t)
	s.addRule(t, Rule{Trigger: Always(), Action: Delay(time.Hour, 0)})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := s.http.Do(mustRequest(t, ctx, http.MethodGet, s.proxyURL.String()+"/b/k", nil))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, s.s3.seen())
	require.Eventually(t, func() bool {
		st, err := s.ctl.Stats(t.Context())
		return err == nil && st.Op(OpGetObject).Seen == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.Zero(t, s.stats(t).Op(OpGetObject).Forwarded, "a request abandoned during its delay is not forwarded")
}

func TestUpstreamDownAbortsClientConnection(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	_, u, ctl := startProxy(t, gone.URL)
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(mustRequest(t, t.Context(), http.MethodGet, u.String()+"/b/k", nil))
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "a transport error, not a made-up 502")
	st, err := ctl.Stats(t.Context())
	require.NoError(t, err)
	assert.Equal(t, OpStats{Seen: 1, Forwarded: 1, UpstreamErrors: 1}, st.Op(OpGetObject))
}

// TestCountersAcrossASequence is the "exactly 5 503s and 8 PutObjects" check.
func TestCountersAcrossASequence(t *testing.T) {
	s := newTestStack(t)
	s.s3.putObject("b", "seed", nil)
	throttle := s.addRule(t, Rule{Name: "throttle puts", Ops: []Op{OpPutObject}, Key: "collections/*",
		Trigger: Next(5), Action: SlowDown(time.Second)})
	every := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: EveryNth(2), Action: InternalError()})
	codes := map[int]int{}
	for i := range 8 {
		res, err := s.do(t, http.MethodPut, "/b/collections/c/"+strconv.Itoa(i), bytes.NewReader([]byte("v")), 1)
		require.NoError(t, err)
		codes[res.resp.StatusCode]++
	}
	for range 4 {
		res, err := s.do(t, http.MethodGet, "/b/collections/c/7", nil, 0)
		require.NoError(t, err)
		codes[res.resp.StatusCode]++
	}
	assert.Equal(t, map[int]int{503: 5, 200: 5, 500: 2}, codes)

	st := s.stats(t)
	assert.Equal(t, int64(8), st.Op(OpPutObject).Seen)
	assert.Equal(t, int64(3), st.Op(OpPutObject).Forwarded)
	assert.Equal(t, int64(5), st.Op(OpPutObject).Injected[ActionSlowDown])
	assert.Equal(t, int64(5), st.Injected(ActionSlowDown))
	assert.Equal(t, int64(2), st.Injected(ActionInternalError))
	rs, _ := st.Rule(throttle)
	assert.Equal(t, RuleStats{ID: throttle, Name: "throttle puts", Action: ActionSlowDown, Matched: 5, Fired: 5, Injected: 5}, rs)
	rs, _ = st.Rule(every)
	assert.Equal(t, RuleStats{ID: every, Action: ActionInternalError, Matched: 4, Fired: 2, Injected: 2}, rs)

	require.NoError(t, s.ctl.ResetStats(t.Context()))
	st = s.stats(t)
	assert.Empty(t, st.Ops)
	assert.Len(t, st.Rules, 2, "live rules keep a zeroed entry")
	rules, err := s.ctl.Rules(t.Context())
	require.NoError(t, err)
	require.Len(t, rules, 2)
	assert.Equal(t, int64(5), rules[0].Fired, "trigger state survives a stats reset")

	require.NoError(t, s.ctl.Reset(t.Context()))
	rules, err = s.ctl.Rules(t.Context())
	require.NoError(t, err)
	assert.Empty(t, rules)
	res, err := s.do(t, http.MethodGet, "/b/collections/c/7", nil, 0)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.resp.StatusCode)
}

func TestNewProxyRejectsBadUpstream(t *testing.T) {
	for _, u := range []string{"", "toxiproxy:8666", "ftp://h:1", "http://", "http://h:1/prefix", "http://h:1?x=1", "http://u:p@h:1", "://bad"} {
		t.Run(u, func(t *testing.T) {
			_, err := NewProxy(u)
			require.ErrorIs(t, err, ErrInvalidUpstream)
		})
	}
	p, err := NewProxy("http://toxiproxy:8666/")
	require.NoError(t, err)
	assert.Equal(t, "http://toxiproxy:8666", p.Upstream())
}

func TestUpstreamResetMidBodyReachesClient(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(make([]byte, 100))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(upstream.Close)
	_, u, _ := startProxy(t, upstream.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(mustRequest(t, t.Context(), http.MethodGet, u.String()+"/b/k", nil))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the broken upstream body stays broken for the client")
	assert.Len(t, b, 100)
}

func TestUpstreamTransportAndCloseIdle(t *testing.T) {
	s3 := newFakeS3(t)
	s3.putObject("b", "k", []byte("v"))
	dials := make(chan string, 1024)
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials <- addr
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	_, u, ctl := startProxy(t, s3.URL(), WithTransport(base))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	// get reports whether a GET through the proxy succeeded; it must not
	// call t.FailNow, as require.Eventually runs it on another goroutine.
	get := func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.String()+"/b/k", nil)
		if err != nil {
			return false
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK
	}
	require.True(t, get())
	require.Len(t, dials, 1)
	assert.Equal(t, strings.TrimPrefix(s3.URL(), "http://"), <-dials)
	// A connection goes back to the pool asynchronously after its response,
	// so both checks retry until the pool has caught up.
	require.Eventually(t, func() bool {
		n := len(dials)
		return get() && len(dials) == n
	}, 5*time.Second, time.Millisecond, "the upstream connection is kept alive")
	for len(dials) > 0 {
		<-dials
	}
	require.Eventually(t, func() bool {
		return ctl.CloseIdleUpstream(t.Context()) == nil && get() && len(dials) > 0
	}, 5*time.Second, time.Millisecond, "after close-idle a request dials anew")
}
