package s3fault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withoutTime returns the entries with At zeroed, after checking that every
// At lies in [from, to].
func withoutTime(t *testing.T, entries []Entry, from, to time.Time) []Entry {
	t.Helper()
	out := make([]Entry, len(entries))
	for i, e := range entries {
		assert.False(t, e.At.Before(from) || e.At.After(to), "entry %d arrived at %s, outside [%s, %s]", i, e.At, from, to)
		e.At = time.Time{}
		out[i] = e
	}
	return out
}

// normalized drops the monotonic clock reading and the location, which a
// JSON round trip does not keep.
func normalized(entries []Entry) []Entry {
	out := make([]Entry, len(entries))
	for i, e := range entries {
		e.At = e.At.Round(0).UTC()
		out[i] = e
	}
	return out
}

// TestJournalEntries sends one request per case and checks its entry: the
// status the client got, the rule and action that fired, and the S3 error
// code, for injected, forwarded, faulted and cut requests.
func TestJournalEntries(t *testing.T) {
	small := []byte("hello")
	big := randomBytes(6, 64<<10)
	tests := []struct {
		name   string
		rule   *Rule
		misdir map[string][]byte // non-nil: a layer with credentials, these objects in bucket "tier"
		method string
		target string
		body   []byte
		// wantErr: the client sees a transport error or a short body.
		wantErr bool
		want    Entry
	}{
		{
			name: "injected 503 SlowDown", method: http.MethodPut, target: "/b/collections/c1/snap.parquet", body: small,
			rule: &Rule{Ops: []Op{OpPutObject}, Trigger: Next(1), Action: SlowDown(time.Second)},
			want: Entry{Op: OpPutObject, Key: "collections/c1/snap.parquet", Rule: "r1", Action: ActionSlowDown, Status: 503, Code: "SlowDown"},
		},
		{
			name: "injected 503 on HEAD keeps the code it meant", method: http.MethodHead, target: "/b/k",
			rule: &Rule{Trigger: Always(), Action: SlowDown(0)},
			want: Entry{Op: OpHeadObject, Key: "k", Rule: "r1", Action: ActionSlowDown, Status: 503, Code: "SlowDown"},
		},
		{
			name: "injected 403 S3Error", method: http.MethodDelete, target: "/b/k",
			rule: &Rule{Ops: []Op{OpDeleteObject}, Trigger: Always(), Action: S3Error(403, "AccessDenied", "Access Denied.")},
			want: Entry{Op: OpDeleteObject, Key: "k", Rule: "r1", Action: ActionError, Status: 403, Code: "AccessDenied"},
		},
		{
			name: "injected 500 InternalError", method: http.MethodPut, target: "/b/k?partNumber=1&uploadId=u", body: small,
			rule: &Rule{Trigger: Always(), Action: InternalError()},
			want: Entry{Op: OpUploadPart, Key: "k", Rule: "r1", Action: ActionInternalError, Status: 500, Code: "InternalError"},
		},
		{
			name: "pass-through 200", method: http.MethodGet, target: "/b/k",
			want: Entry{Op: OpGetObject, Key: "k", Status: 200},
		},
		{
			name: "pass-through 200 past a rule that does not match", method: http.MethodGet, target: "/b/k",
			rule: &Rule{Ops: []Op{OpPutObject}, Trigger: Always(), Action: InternalError()},
			want: Entry{Op: OpGetObject, Key: "k", Status: 200},
		},
		{
			name: "upstream 404 with its code", method: http.MethodGet, target: "/b/missing",
			want: Entry{Op: OpGetObject, Key: "missing", Status: 404, Code: "NoSuchKey"},
		},
		{
			name: "upstream 404 on HEAD has no body, so no code", method: http.MethodHead, target: "/b/missing",
			want: Entry{Op: OpHeadObject, Key: "missing", Status: 404},
		},
		{
			name: "upstream 404 of a bucket operation", method: http.MethodGet, target: "/nobucket?list-type=2",
			want: Entry{Op: OpListObjectsV2, Status: 404, Code: "NoSuchBucket"},
		},
		{
			name: "upstream 404 NoSuchUpload", method: http.MethodPut, target: "/b/k?partNumber=1&uploadId=nope", body: small,
			want: Entry{Op: OpUploadPart, Key: "k", Status: 404, Code: "NoSuchUpload"},
		},
		{
			name: "delayed then forwarded", method: http.MethodGet, target: "/b/k",
			rule: &Rule{Trigger: Always(), Action: Delay(time.Millisecond, 0)},
			want: Entry{Op: OpGetObject, Key: "k", Rule: "r1", Action: ActionDelay, Status: 200},
		},
		{
			name: "truncated GET keeps the status sent", method: http.MethodGet, target: "/b/big", wantErr: true,
			rule: &Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: TruncateBody(10)},
			want: Entry{Op: OpGetObject, Key: "big", Rule: "r1", Action: ActionTruncateBody, Status: 200},
		},
		{
			name: "bit-flipped GET", method: http.MethodGet, target: "/b/big",
			rule: &Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: FlipBits(3)},
			want: Entry{Op: OpGetObject, Key: "big", Rule: "r1", Action: ActionFlipBits, Status: 200},
		},
		{
			name: "cut upload has no status", method: http.MethodPut, target: "/b/up", body: big, wantErr: true,
			rule: &Rule{Ops: []Op{OpPutObject}, Trigger: Always(), Action: CutRequestBody(100)},
			want: Entry{Op: OpPutObject, Key: "up", Rule: "r1", Action: ActionCutRequestBody},
		},
		{
			name: "cut rule fired on a body shorter than the cut", method: http.MethodPut, target: "/b/up", body: small,
			rule: &Rule{Ops: []Op{OpPutObject}, Trigger: Always(), Action: CutRequestBody(100)},
			want: Entry{Op: OpPutObject, Key: "up", Rule: "r1", Action: ActionCutRequestBody, Status: 200},
		},
		{
			name: "misdirected GET", method: http.MethodGet, target: "/tier/collections/c1/a",
			misdir: map[string][]byte{"collections/c1/a": []byte("aaa"), "collections/c1/b": []byte("bbb")},
			rule:   &Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: Misdirect()},
			want:   Entry{Op: OpGetObject, Key: "collections/c1/a", Rule: "r1", Action: ActionMisdirect, Status: 200},
		},
		{
			name: "misdirect taken back: no other object", method: http.MethodGet, target: "/tier/collections/c1/a",
			misdir: map[string][]byte{"collections/c1/a": []byte("aaa")},
			rule:   &Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: Misdirect()},
			want:   Entry{Op: OpGetObject, Key: "collections/c1/a", Status: 200},
		},
		{
			name: "misdirect answers a missing key with another object", method: http.MethodGet, target: "/tier/collections/c1/x",
			misdir: map[string][]byte{"collections/c1/a": []byte("aaa")},
			rule:   &Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: Misdirect()},
			want:   Entry{Op: OpGetObject, Key: "collections/c1/x", Rule: "r1", Action: ActionMisdirect, Status: 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *testStack
			if tt.misdir != nil {
				s = newMisdirectStack(t, tt.misdir)
			} else {
				s = newTestStack(t)
				s.s3.putObject("b", "k", small)
				s.s3.putObject("b", "big", big)
			}
			if tt.rule != nil {
				s.addRule(t, *tt.rule)
			}
			from := time.Now()
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
			}
			res, err := s.do(t, tt.method, tt.target, body, int64(len(tt.body)))
			if tt.wantErr {
				assert.True(t, err != nil || res.readErr != nil, "the client sees the cut")
			} else {
				require.NoError(t, err)
				require.NoError(t, res.readErr)
				assert.Equal(t, tt.want.Status, res.resp.StatusCode, "the entry has the status the client got")
			}
			// Recorded before the client could read the status (or see
			// the cut): no waiting needed.
			got := withoutTime(t, s.proxy.Journal(), from, time.Now())
			assert.Equal(t, []Entry{tt.want}, got)
		})
	}
}

// TestJournalNoStatus covers requests that end without a status: no
// upstream response, and a client that leaves during a delay.
func TestJournalNoStatus(t *testing.T) {
	t.Run("upstream down", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		gone.Close()
		p, u, _ := startProxy(t, gone.URL)
		tr := &http.Transport{DisableKeepAlives: true}
		t.Cleanup(tr.CloseIdleConnections)
		resp, err := (&http.Client{Transport: tr}).Do(mustRequest(t, t.Context(), http.MethodGet, u.String()+"/b/k", nil))
		if err == nil {
			_ = resp.Body.Close()
		}
		require.Error(t, err)
		assert.Equal(t, []Entry{{Op: OpGetObject, Key: "k"}}, withoutTime(t, p.Journal(), time.Time{}, time.Now()))
	})
	t.Run("client left during a delay", func(t *testing.T) {
		s := newTestStack(t)
		s.addRule(t, Rule{Trigger: Always(), Action: Delay(time.Hour, 0)})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := s.http.Do(mustRequest(t, ctx, http.MethodGet, s.proxyURL.String()+"/b/k", nil))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// The layer notices the client left on its own time.
		require.Eventually(t, func() bool { return len(s.proxy.Journal()) == 1 }, 5*time.Second, 5*time.Millisecond)
		assert.Equal(t, []Entry{{Op: OpGetObject, Key: "k", Rule: "r1", Action: ActionDelay}},
			withoutTime(t, s.proxy.Journal(), time.Time{}, time.Now()))
	})
}

// TestJournalUpstreamErrorCode checks which upstream error answers the code
// is read from, and that the client gets every body unchanged.
func TestJournalUpstreamErrorCode(t *testing.T) {
	xmlDoc := func(code string) string {
		return `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + code + "</Code><Message>m</Message></Error>"
	}
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		chunked     bool
		wantCode    string
	}{
		{"small XML", 503, "application/xml", xmlDoc("SlowDown"), false, "SlowDown"},
		{"no content type", 409, "", xmlDoc("BucketNotEmpty"), false, "BucketNotEmpty"},
		{"not XML", 500, "text/plain", "<Code>NotACode</Code>", false, ""},
		{"too large", 400, "application/xml", xmlDoc("EntityTooLarge") + strings.Repeat(" ", journalMaxErrBody), false, ""},
		{"no content length", 400, "application/xml", xmlDoc("InvalidRequest"), true, ""},
		{"no code element", 400, "application/xml", "<Error><Message>m</Message></Error>", false, ""},
		{"code with markup", 400, "application/xml", "<Error><Code>A<B/></Code></Error>", false, ""},
		{"success is not read", 200, "application/xml", xmlDoc("NotAnError"), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				} else {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				if !tt.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(tt.body)))
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
				if tt.chunked {
					http.NewResponseController(w).Flush()
				}
			}))
			t.Cleanup(upstream.Close)
			p, u, _ := startProxy(t, upstream.URL)
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Get(u.String() + "/b/k")
			require.NoError(t, err)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.body, string(got), "the body reaches the client unchanged")
			assert.Equal(t, []Entry{{Op: OpGetObject, Key: "k", Status: tt.status, Code: tt.wantCode}},
				withoutTime(t, p.Journal(), time.Time{}, time.Now()))
		})
	}
}

// TestJournalShortUpstreamErrorBody: an error body that ends before its
// Content-Length is passed on as far as it arrived and the client
// connection is aborted, as without the journal.
func TestJournalShortUpstreamErrorBody(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: 100\r\n\r\n<Error><Code>Int")
		_ = buf.Flush()
	}))
	t.Cleanup(upstream.Close)
	p, u, _ := startProxy(t, upstream.URL)
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get(u.String() + "/b/k")
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, "<Error><Code>Int", string(got))
	assert.Equal(t, []Entry{{Op: OpGetObject, Key: "k", Status: 500}}, withoutTime(t, p.Journal(), time.Time{}, time.Now()))
}

// TestJournalRing checks order and bound of the ring at engine level.
func TestJournalRing(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	entry := func(i int) Entry {
		return Entry{At: base.Add(time.Duration(i) * time.Millisecond), Op: OpGetObject, Key: "k" + strconv.Itoa(i), Status: 200}
	}
	seq := func(from, to int) []Entry {
		out := []Entry{}
		for i := from; i < to; i++ {
			out = append(out, entry(i))
		}
		return out
	}
	tests := []struct {
		name    string
		size    int
		records []int // entry numbers, in recording order
		want    []Entry
	}{
		{"empty", 3, nil, []Entry{}},
		{"not full", 3, []int{0, 1}, seq(0, 2)},
		{"exactly full", 3, []int{0, 1, 2}, seq(0, 3)},
		{"oldest dropped", 3, []int{0, 1, 2, 3, 4}, seq(2, 5)},
		{"wrapped twice", 3, []int{0, 1, 2, 3, 4, 5, 6}, seq(4, 7)},
		{"size one", 1, []int{0, 1, 2}, seq(2, 3)},
		{"grows past its first chunk", 100, seq100(), seq(30, 130)},
		{"sorted by arrival, not by recording", 5, []int{1, 0, 3, 2}, seq(0, 4)},
		{"recorded first is dropped first", 2, []int{5, 0, 1}, []Entry{entry(0), entry(1)}},
		{"off", 0, []int{0, 1}, []Entry{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJournal(tt.size)
			for _, i := range tt.records {
				e := entry(i)
				j.record(j.generation(), &e)
			}
			assert.Equal(t, tt.want, j.entries())
		})
	}
}

func seq100() []int {
	out := make([]int, 0, 130)
	for i := range 130 {
		out = append(out, i)
	}
	return out
}

func TestJournalResetDropsInFlight(t *testing.T) {
	j := newJournal(10)
	e := Entry{Op: OpGetObject, Key: "before", Status: 200}
	j.record(j.generation(), &e)
	inFlight := j.generation()
	j.reset()
	assert.Empty(t, j.entries())
	late := Entry{Op: OpGetObject, Key: "in flight during the reset", Status: 200}
	j.record(inFlight, &late)
	assert.Empty(t, j.entries(), "a request that arrived before the reset is not in the new journal")
	after := Entry{Op: OpGetObject, Key: "after", Status: 200}
	j.record(j.generation(), &after)
	assert.Equal(t, []Entry{after}, j.entries())
}

// TestJournalRecordDoesNotAllocate: once the ring is full, recording costs
// no allocation.
func TestJournalRecordDoesNotAllocate(t *testing.T) {
	j := newJournal(8)
	e := Entry{At: time.Now(), Op: OpPutObject, Key: "collections/c1/snap.parquet", Rule: "r1", Action: ActionSlowDown, Status: 503, Code: "SlowDown"}
	for range 8 {
		j.record(j.generation(), &e)
	}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { j.record(j.generation(), &e) }))
}

// TestJournalThroughProxy checks the bound, the order, both resets and the
// client round trip through the control handler.
func TestJournalThroughProxy(t *testing.T) {
	s := newTestStack(t, WithJournalSize(3))
	ctx := t.Context()
	for i := range 5 {
		s.s3.putObject("b", "k"+strconv.Itoa(i), []byte("v"))
	}
	get := func(key string) {
		t.Helper()
		res, err := s.do(t, http.MethodGet, "/b/"+key, nil, 0)
		require.NoError(t, err)
		require.NoError(t, res.readErr)
	}
	keys := func(entries []Entry) []string {
		out := []string{}
		for _, e := range entries {
			out = append(out, e.Key)
		}
		return out
	}

	j, err := s.ctl.Journal(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Entry{}, j, "empty, not nil")

	for i := range 5 {
		get("k" + strconv.Itoa(i))
	}
	j, err = s.ctl.Journal(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"k2", "k3", "k4"}, keys(j), "the oldest two were dropped")
	assert.Equal(t, normalized(s.proxy.Journal()), normalized(j), "the client sees what the proxy holds")
	assert.True(t, j[0].At.Before(j[1].At) && j[1].At.Before(j[2].At), "oldest first")

	require.NoError(t, s.ctl.ResetStats(ctx))
	j, err = s.ctl.Journal(ctx)
	require.NoError(t, err)
	assert.Empty(t, j, "a stats reset empties the journal")
	get("k0")
	j, err = s.ctl.Journal(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"k0"}, keys(j))

	s.addRule(t, Rule{Trigger: Always(), Action: InternalError()})
	get("k1")
	require.NoError(t, s.ctl.Reset(ctx))
	j, err = s.ctl.Journal(ctx)
	require.NoError(t, err)
	assert.Empty(t, j, "a full reset empties the journal")
	get("k2")
	j, err = s.ctl.Journal(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Entry{{Op: OpGetObject, Key: "k2", Status: 200}}, withoutTime(t, j, time.Time{}, time.Now()),
		"the rule went with the reset")
}

// TestJournalHTTPShape reads the journal with raw HTTP, as a non-Go user
// would.
func TestJournalHTTPShape(t *testing.T) {
	s := newTestStack(t)
	s.addRule(t, Rule{Trigger: Always(), Action: S3Error(403, "AccessDenied", "")})
	_, err := s.do(t, http.MethodGet, "/b/collections/c1/x", nil, 0)
	require.NoError(t, err)
	ctlURL := s.ctl.base.String()

	resp := ctlDo(t, s.http, http.MethodGet, ctlURL+"/v1/journal", "")
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var raw struct {
		Entries []map[string]any `json:"entries"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	require.Len(t, raw.Entries, 1)
	e := raw.Entries[0]
	assert.Equal(t, "GetObject", e["op"])
	assert.Equal(t, "collections/c1/x", e["key"])
	assert.Equal(t, "r1", e["rule"])
	assert.Equal(t, "error", e["action"])
	assert.InDelta(t, 403, e["status"], 0)
	assert.Equal(t, "AccessDenied", e["code"])
	at, err := time.Parse(time.RFC3339Nano, e["at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, time.Minute)

	// An entry without a rule leaves out rule and action.
	require.NoError(t, s.ctl.Reset(t.Context()))
	_, err = s.do(t, http.MethodGet, "/b/k", nil, 0)
	require.NoError(t, err)
	resp2 := ctlDo(t, s.http, http.MethodGet, ctlURL+"/v1/journal", "")
	defer resp2.Body.Close()
	sc := bufio.NewScanner(resp2.Body)
	require.True(t, sc.Scan())
	line := sc.Text()
	assert.Contains(t, line, `"status":404`)
	assert.NotContains(t, line, `"rule"`)
	assert.NotContains(t, line, `"action"`)
	assert.Contains(t, line, `"code":"NoSuchBucket"`)
}

func TestNewProxyRejectsNegativeJournalSize(t *testing.T) {
	_, err := NewProxy("http://127.0.0.1:1", WithJournalSize(-1))
	require.ErrorIs(t, err, ErrInvalidJournalSize)
	p, err := NewProxy("http://127.0.0.1:1", WithJournalSize(0))
	require.NoError(t, err)
	assert.Empty(t, p.Journal(), "0 switches the journal off")
}
