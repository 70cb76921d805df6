package s3fault

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Credentials of the layer in these tests, distinct from the client's.
const (
	layerAccessKey = "layer-ak"
	layerSecretKey = "layer-secret"
)

// newMisdirectStack is a test stack whose layer has credentials, with the
// given objects in bucket "tier".
func newMisdirectStack(t *testing.T, objects map[string][]byte) *testStack {
	t.Helper()
	s := newTestStack(t, WithCredentials(Credentials{AccessKey: layerAccessKey, SecretKey: layerSecretKey}))
	s.s3.mu.Lock()
	s.s3.buckets["tier"] = true
	s.s3.mu.Unlock()
	for k, v := range objects {
		s.s3.putObject("tier", k, v)
	}
	return s
}

// getObject GETs tier/key through the proxy with an optional Range.
func (s *testStack) getObject(t *testing.T, key, rng string) result {
	t.Helper()
	target := "/tier/" + (&url.URL{Path: key}).EscapedPath()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.proxyURL.String()+target, nil)
	require.NoError(t, err)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	require.NoError(t, rerr)
	return result{resp: resp, body: b}
}

// servedKey returns which object of objects body is, or "".
func servedKey(objects map[string][]byte, body []byte) string {
	for k, v := range objects {
		if bytes.Equal(v, body) {
			return k
		}
	}
	return ""
}

// requireLayerRequestsSigned checks, with an independent SigV4
// implementation, that every request the layer made itself (signed with its
// access key) carries a valid signature for its secret, and returns how
// many there were.
func requireLayerRequestsSigned(t *testing.T, s *testStack) int {
	t.Helper()
	n := 0
	for _, r := range s.s3.seen() {
		auth := r.Header.Get("Authorization")
		if !strings.Contains(auth, "Credential="+layerAccessKey+"/") {
			continue
		}
		n++
		require.NoError(t, verifySigV4(r, layerSecretKey), "%s %s", r.Method, r.RequestURI)
		require.Error(t, verifySigV4(r, "not-"+layerSecretKey), "the verifier checks the signature")
	}
	return n
}

// verifySigV4 checks the SigV4 header signature of a recorded request.
func verifySigV4(r seenRequest, secret string) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("not SigV4: %q", auth)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.SplitN(fields["Credential"], "/", 2)
	if len(scope) != 2 {
		return fmt.Errorf("bad credential %q", fields["Credential"])
	}
	scopeParts := strings.Split(scope[1], "/") // date/region/service/aws4_request
	if len(scopeParts) != 4 {
		return fmt.Errorf("bad scope %q", scope[1])
	}
	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	var qs []string
	for k, vs := range q {
		for _, v := range vs {
			qs = append(qs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(qs)
	signed := strings.Split(fields["SignedHeaders"], ";")
	var canonHeaders strings.Builder
	for _, h := range signed {
		v := strings.Join(r.Header.Values(h), ",")
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.Join(strings.Fields(v), " "))
	}
	canonical := strings.Join([]string{
		r.Method, path, strings.Join(qs, "&"), canonHeaders.String(), fields["SignedHeaders"],
		r.Header.Get("X-Amz-Content-Sha256"),
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"), scope[1], hex.EncodeToString(sum[:])}, "\n")
	key := []byte("AWS4" + secret)
	for _, part := range scopeParts {
		key = hmacSHA256(key, part)
	}
	if got, want := fields["Signature"], hex.EncodeToString(hmacSHA256(key, toSign)); got != want {
		return fmt.Errorf("signature %s, want %s; canonical request:\n%s", got, want, canonical)
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// awsEscape is SigV4's URI encoding: everything but unreserved characters.
func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

func TestMisdirect(t *testing.T) {
	objects := map[string][]byte{
		"collections/c1/snap-1.parquet":     randomBytes(1, 3000),
		"collections/c1/snap-2.parquet":     randomBytes(2, 5000),
		"collections/c 1/a+b.bin":           randomBytes(3, 700),
		"collections/c 1/c d.bin":           randomBytes(4, 900),
		"collections/solo/only.parquet":     randomBytes(5, 800),
		"collections/soloist/other.parquet": randomBytes(6, 600),
		"collections/deep/seg/1.seg":        randomBytes(7, 400),
		"collections/deep/manifest.json":    randomBytes(8, 300),
		"top.bin":                           randomBytes(9, 200),
	}
	get := []Op{OpGetObject}
	tests := []struct {
		name   string
		action Action
		key    string
		rng    string
		// candidates are the objects that may be served; nil: the request
		// passes through and gets its own object.
		candidates []string
		wantStatus int
	}{
		{
			name: "another object of the collection", action: Misdirect(), key: "collections/c1/snap-1.parquet",
			candidates: []string{"collections/c1/snap-2.parquet"}, wantStatus: http.StatusOK,
		},
		{
			name: "keys that need escaping", action: Misdirect(), key: "collections/c 1/a+b.bin",
			candidates: []string{"collections/c 1/c d.bin"}, wantStatus: http.StatusOK,
		},
		{
			name: "only object of the collection passes through", action: Misdirect(), key: "collections/solo/only.parquet",
			wantStatus: http.StatusOK,
		},
		{
			name: "nested keys are another collection at the default depth", action: Misdirect(), key: "collections/deep/seg/1.seg",
			wantStatus: http.StatusOK,
		},
		{
			name: "prefix depth 2 reaches the whole collection", action: MisdirectDepth(2), key: "collections/deep/seg/1.seg",
			candidates: []string{"collections/deep/manifest.json"}, wantStatus: http.StatusOK,
		},
		{
			name: "prefix depth 1 reaches every collection", action: MisdirectDepth(1), key: "collections/solo/only.parquet",
			candidates: []string{
				"collections/c1/snap-1.parquet", "collections/c1/snap-2.parquet", "collections/c 1/a+b.bin",
				"collections/c 1/c d.bin", "collections/soloist/other.parquet", "collections/deep/seg/1.seg",
				"collections/deep/manifest.json",
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "key without a slash: the whole bucket", action: Misdirect(), key: "top.bin",
			candidates: slices.DeleteFunc(slices.Collect(mapKeys(objects)), func(k string) bool { return k == "top.bin" }),
			wantStatus: http.StatusOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMisdirectStack(t, objects)
			id := s.addRule(t, Rule{Ops: get, Trigger: Next(1), Action: tt.action})

			res := s.getObject(t, tt.key, tt.rng)
			require.Equal(t, tt.wantStatus, res.resp.StatusCode)
			served := servedKey(objects, res.body)
			require.NotEmpty(t, served, "the body is exactly one of the objects")
			st := s.stats(t)
			rs, ok := st.Rule(id)
			require.True(t, ok)
			if tt.candidates == nil {
				assert.Equal(t, tt.key, served, "passed through")
				assert.Zero(t, st.Injected(ActionMisdirect))
				assert.Zero(t, rs.Fired, "a pass-through is not a fire")
				status, err := s.ctl.Rule(t.Context(), id)
				require.NoError(t, err)
				assert.False(t, status.Exhausted, "the Next(1) hit was taken back")
				assert.Zero(t, status.Fired)
				assert.Equal(t, OpStats{Seen: 1, Forwarded: 1}, st.Op(OpGetObject))
				return
			}
			assert.NotEqual(t, tt.key, served, "never the requested object")
			assert.Contains(t, tt.candidates, served)
			other := objects[served]
			assert.Equal(t, strconv.Itoa(len(other)), res.resp.Header.Get("Content-Length"), "the other object's length")
			assert.Equal(t, etag(other), res.resp.Header.Get("ETag"), "the other object's ETag")
			assert.Equal(t, int64(1), st.Injected(ActionMisdirect))
			assert.Equal(t, int64(1), rs.Fired)
			assert.Equal(t, int64(1), rs.Injected)
			assert.Equal(t, OpStats{Seen: 1, Forwarded: 1, Injected: map[ActionKind]int64{ActionMisdirect: 1}}, st.Op(OpGetObject))
			assert.Equal(t, 2, requireLayerRequestsSigned(t, s), "one signed listing and one signed GET")

			// The rule is used up: the object is the requested one again.
			res = s.getObject(t, tt.key, "")
			assert.Equal(t, objects[tt.key], res.body)
		})
	}
}

// mapKeys yields the keys of m.
func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestMisdirectRange(t *testing.T) {
	objects := map[string][]byte{
		"collections/c1/a": randomBytes(11, 4000),
		"collections/c1/b": randomBytes(12, 6000),
	}
	tests := []struct {
		name, rng   string
		from, to    int // expected slice of the other object
		wantPassing bool
	}{
		{name: "middle", rng: "bytes=100-1099", from: 100, to: 1100},
		{name: "suffix", rng: "bytes=-500", from: 5500, to: 6000},
		{name: "open end", rng: "bytes=3990-", from: 3990, to: 6000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMisdirectStack(t, objects)
			s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: Misdirect()})
			res := s.getObject(t, "collections/c1/a", tt.rng)
			require.Equal(t, http.StatusPartialContent, res.resp.StatusCode)
			other := objects["collections/c1/b"]
			assert.Equal(t, other[tt.from:tt.to], res.body, "the range of the other object")
			assert.Equal(t, fmt.Sprintf("bytes %d-%d/%d", tt.from, tt.to-1, len(other)), res.resp.Header.Get("Content-Range"))
			assert.Equal(t, strconv.Itoa(tt.to-tt.from), res.resp.Header.Get("Content-Length"))
			assert.Equal(t, int64(1), s.stats(t).Injected(ActionMisdirect))
			var ranged int
			for _, r := range s.s3.seen() {
				if r.Path == "/tier/collections/c1/b" {
					ranged++
					assert.Equal(t, tt.rng, r.Header.Get("Range"))
				}
			}
			assert.Equal(t, 1, ranged, "the other object was read once, with the client's range")
		})
	}

	t.Run("range past the other object's end passes through", func(t *testing.T) {
		s := newMisdirectStack(t, objects)
		id := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: Misdirect()})
		res := s.getObject(t, "collections/c1/b", "bytes=5000-5099")
		require.Equal(t, http.StatusPartialContent, res.resp.StatusCode)
		assert.Equal(t, objects["collections/c1/b"][5000:5100], res.body, "the requested object, unchanged")
		st := s.stats(t)
		rs, _ := st.Rule(id)
		assert.Equal(t, int64(1), rs.Fired, "the rule hit")
		assert.Zero(t, rs.Injected, "but the other object had no such range")
	})
}

// TestMisdirectIsSeeded proves the other key comes from the rule's seed: the
// same seed serves the same sequence of keys, and seeds differ in what they
// serve.
func TestMisdirectIsSeeded(t *testing.T) {
	objects := map[string][]byte{}
	for i := range 8 {
		objects[fmt.Sprintf("collections/c1/part-%d", i)] = randomBytes(uint64(20+i), 256+i)
	}
	const requested = "collections/c1/part-0"
	sequence := func(t *testing.T, seed uint64) []string {
		t.Helper()
		s := newMisdirectStack(t, objects)
		s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Seed: SeedOf(seed), Action: Misdirect()})
		var served []string
		for range 6 {
			res := s.getObject(t, requested, "")
			k := servedKey(objects, res.body)
			require.NotEmpty(t, k)
			require.NotEqual(t, requested, k, "never the requested object")
			served = append(served, k)
		}
		return served
	}
	tests := []struct {
		name string
		seed uint64
	}{{"seed 1", 1}, {"seed 42", 42}, {"seed max", 1<<64 - 1}}
	firsts := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sequence(t, tt.seed)
			b := sequence(t, tt.seed)
			assert.Equal(t, a, b, "same seed, same keys")
			assert.Greater(t, len(slices.Compact(slices.Sorted(slices.Values(a)))), 1, "the keys vary along the sequence")
			firsts[strings.Join(a, ",")] = true
		})
	}
	assert.Len(t, firsts, len(tests), "different seeds serve different sequences")
}

// TestMisdirectMinioClient reads a misdirected object with minio-go, as
// tierd does: it gets the other object whole, with no error.
func TestMisdirectMinioClient(t *testing.T) {
	objects := map[string][]byte{
		"collections/c1/snap-1.parquet": randomBytes(31, 200<<10),
		"collections/c1/snap-2.parquet": randomBytes(32, 300<<10),
	}
	s := newMisdirectStack(t, objects)
	s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: Misdirect()})
	mc := newMinio(t, s.proxyURL.Host, 1)
	got := readObject(t, mc, "tier", "collections/c1/snap-1.parquet")
	assert.Equal(t, objects["collections/c1/snap-2.parquet"], got)
	assert.Equal(t, 2, requireLayerRequestsSigned(t, s))
	for _, r := range s.s3.seen() {
		if strings.Contains(r.Header.Get("Authorization"), "Credential="+layerAccessKey+"/") {
			assert.Contains(t, r.Header.Get("Authorization"), "/us-east-1/s3/aws4_request",
				"signed for the region the client signed for")
		}
	}
	// Used up: minio-go reads the requested object again.
	obj, err := mc.GetObject(t.Context(), "tier", "collections/c1/snap-1.parquet", minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	b, err := io.ReadAll(obj)
	require.NoError(t, err)
	assert.Equal(t, objects["collections/c1/snap-1.parquet"], b)
}

func TestMisdirectNeedsCredentials(t *testing.T) {
	rule := Rule{Ops: []Op{OpGetObject}, Trigger: Always(), Action: Misdirect()}
	t.Run("refused without credentials", func(t *testing.T) {
		s := newTestStack(t)
		_, err := s.ctl.AddRule(t.Context(), rule)
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, CodeActionNotApplicable, apiErr.Code)
		assert.Equal(t, "action.kind", apiErr.Field)
		assert.Contains(t, apiErr.Message, "S3FAULT_ACCESS_KEY")
	})
	t.Run("other rule errors come first", func(t *testing.T) {
		s := newTestStack(t)
		bad := rule
		bad.Ops = []Op{OpPutObject}
		_, err := s.proxy.AddRule(bad)
		var re *RuleError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, CodeActionNotApplicable, re.Code)
		assert.Equal(t, "ops[0]", re.Field)
	})
	t.Run("half credentials", func(t *testing.T) {
		for _, c := range []Credentials{{AccessKey: "ak"}, {SecretKey: "sk"}} {
			_, err := NewProxy("http://127.0.0.1:1", WithCredentials(c))
			require.ErrorIs(t, err, ErrInvalidCredentials)
		}
	})
	t.Run("the secret is not printed", func(t *testing.T) {
		c := Credentials{AccessKey: "ak", SecretKey: "very-secret"}
		assert.NotContains(t, fmt.Sprint(c), "very-secret")
		assert.NotContains(t, fmt.Sprintf("%+v", c), "very-secret")
		assert.NotContains(t, fmt.Sprintf("%#v", c), "very-secret")
		assert.NotContains(t, fmt.Sprintf("%v", &c), "very-secret")
	})
}

func TestMisdirectListingFailureForwards(t *testing.T) {
	// The upstream refuses the layer's listing (e.g. wrong credentials):
	// the request passes through, the hit is fired but not injected.
	s := newMisdirectStack(t, map[string][]byte{"collections/c1/a": []byte("aaa"), "collections/c1/b": []byte("bbb")})
	s.s3.mu.Lock()
	delete(s.s3.buckets, "tier") // listing now answers 404 NoSuchBucket
	s.s3.mu.Unlock()
	id := s.addRule(t, Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: Misdirect()})
	res := s.getObject(t, "collections/c1/a", "")
	assert.Equal(t, http.StatusNotFound, res.resp.StatusCode, "the client's own request, forwarded")
	rs, _ := s.stats(t).Rule(id)
	assert.Equal(t, int64(1), rs.Fired)
	assert.Zero(t, rs.Injected)
}

func TestCollectionPrefix(t *testing.T) {
	tests := []struct {
		key   string
		depth int
		want  string
	}{
		{"collections/c1/snap-1.parquet", 0, "collections/c1/"},
		{"collections/c1/seg/1.seg", 0, "collections/c1/seg/"},
		{"collections/c1/seg/1.seg", 1, "collections/"},
		{"collections/c1/seg/1.seg", 2, "collections/c1/"},
		{"collections/c1/seg/1.seg", 3, "collections/c1/seg/"},
		{"collections/c1/seg/1.seg", 9, "collections/c1/seg/"},
		{"top.bin", 0, ""},
		{"top.bin", 2, ""},
		{"dir/", 0, "dir/"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.key, tt.depth), func(t *testing.T) {
			assert.Equal(t, tt.want, collectionPrefix(tt.key, tt.depth))
		})
	}
}

func TestSigningRegion(t *testing.T) {
	p, err := NewProxy("http://127.0.0.1:1", WithCredentials(Credentials{AccessKey: "ak", SecretKey: "sk"}))
	require.NoError(t, err)
	fixed, err := NewProxy("http://127.0.0.1:1", WithCredentials(Credentials{AccessKey: "ak", SecretKey: "sk", Region: "eu-west-3"}))
	require.NoError(t, err)
	tests := []struct {
		name   string
		p      *Proxy
		auth   string
		target string
		want   string
	}{
		{"header", p, "AWS4-HMAC-SHA256 Credential=AK/20260101/eu-central-1/s3/aws4_request, SignedHeaders=host, Signature=x", "/b/k", "eu-central-1"},
		{"presigned", p, "", "/b/k?X-Amz-Credential=AK%2F20260101%2Fap-south-1%2Fs3%2Faws4_request", "ap-south-1"},
		{"unsigned", p, "", "/b/k", "us-east-1"},
		{"configured wins", fixed, "AWS4-HMAC-SHA256 Credential=AK/20260101/eu-central-1/s3/aws4_request", "/b/k", "eu-west-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "http://proxy"+tt.target, nil)
			require.NoError(t, err)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			assert.Equal(t, tt.want, tt.p.signingRegion(r))
		})
	}
}

func TestEngineUnfire(t *testing.T) {
	req := Request{Op: OpGetObject, Bucket: "b", Key: "collections/c1/a"}
	tests := []struct {
		name       string
		rule       Rule
		resetFirst bool
	}{
		{name: "next", rule: Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: Misdirect()}},
		{name: "max fires", rule: Rule{Ops: []Op{OpGetObject}, Trigger: Always(), MaxFires: 1, Action: Misdirect()}},
		{name: "stats reset in between", rule: Rule{Ops: []Op{OpGetObject}, Trigger: Next(1), Action: Misdirect()}, resetFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(0)
			st, err := e.add(tt.rule)
			require.NoError(t, err)
			d := e.decide(req)
			require.NotNil(t, d.fault)
			got, err := e.get(st.ID)
			require.NoError(t, err)
			require.True(t, got.Exhausted)
			if tt.resetFirst {
				e.resetStats()
			}
			e.unfire(d.fault)
			got, err = e.get(st.ID)
			require.NoError(t, err)
			assert.False(t, got.Exhausted)
			assert.Zero(t, got.Fired)
			rs, ok := e.snapshot().Rule(st.ID)
			require.True(t, ok)
			assert.Zero(t, rs.Fired)
			assert.NotNil(t, e.decide(req).fault, "the rule hits again")
		})
	}
}

// TestMisdirectControlJSON adds a misdirect rule as raw JSON, as curl would.
func TestMisdirectControlJSON(t *testing.T) {
	s := newMisdirectStack(t, nil)
	for _, tt := range []struct {
		name, body string
		want       Action
	}{
		{"default depth", `{"ops":["GetObject"],"trigger":{"kind":"next","n":1},"action":{"kind":"misdirect"}}`, Misdirect()},
		{"prefix depth", `{"ops":["GetObject"],"trigger":{"kind":"next","n":1},"action":{"kind":"misdirect","prefix_depth":2}}`, MisdirectDepth(2)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := ctlDo(t, s.http, http.MethodPost, s.ctl.base.JoinPath(PathRules).String(), tt.body)
			defer resp.Body.Close()
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			var st RuleStatus
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
			assert.Equal(t, tt.want, st.Rule.Action)
		})
	}
}
