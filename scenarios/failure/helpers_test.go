//go:build e2e

package failure

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/snapshot"
)

const (
	// bigDim and bigVectors make a collection whose Parquet snapshot
	// (about 5.6 MB of plain float32 values) is larger than the suite's
	// 5 MiB part size: it goes up as a two-part multipart upload whose
	// second part (about 350 kB) is still larger than the 256 KiB cut of
	// partial-upload-cut-part, and it has fewer than api.MaxK vectors for
	// the final read.
	bigDim     = 1400
	bigVectors = 999
	// opTimeout is TIERD_S3_OP_TIMEOUT as the harness starts tierd.
	opTimeout = 5 * time.Second
	// grace is what the suite allows beyond a tierd deadline for encoding,
	// HTTP and scheduling on a loaded machine. A hang is far longer: the
	// client gives up after 60 s.
	grace = 10 * time.Second
	// pollEvery is the polling interval of the suite's waits.
	pollEvery = 20 * time.Millisecond
	// waitFor bounds a wait for something tierd does in the background.
	waitFor = 15 * time.Second
)

// Tierd's retry schedule for S3 uploads (system/cold.New configures the
// uploader): full jitter over a ceiling of backoffBase * 2^(attempt-1),
// capped at backoffCap, or the server's Retry-After when longer.
const (
	backoffBase = 50 * time.Millisecond
	backoffCap  = 2 * time.Second
)

// dataGlob matches the cold-tier data objects of a collection.
func dataGlob(name string) string { return fixture.ObjectPrefix("", name) + "data/*" }

// createBig creates a collection large enough for a multipart upload. Its
// values are multiples of 1/4 in [-1, 1]: their JSON is half as long as
// that of arbitrary floats, which halves the insert time under -race,
// while the Parquet file (plain float32 values) is as large.
func createBig(ctx context.Context, t *testing.T, c fixture.Tierd, rng *rand.Rand) *fixture.Collection {
	t.Helper()
	t0 := time.Now()
	col := &fixture.Collection{Name: fixture.UniqueName(t, rng), Dim: bigDim, Metric: api.MetricCosine, Vectors: make([]api.Vector, bigVectors)}
	for i := range col.Vectors {
		vals := make([]float32, bigDim)
		for j := range vals {
			vals[j] = float32(rng.IntN(9)-4) / 4
		}
		col.Vectors[i] = api.Vector{ID: fmt.Sprintf("v%05d", i), Values: vals}
	}
	_, err := c.CreateCollection(ctx, api.CreateCollectionRequest{Name: col.Name, Dimension: bigDim, Metric: api.MetricCosine})
	require.NoError(t, err, "create collection %s", col.Name)
	for i := 0; i < len(col.Vectors); i += 250 {
		batch := col.Vectors[i:min(i+250, len(col.Vectors))]
		n, err := c.Insert(ctx, col.Name, batch)
		require.NoError(t, err, "insert into %s", col.Name)
		require.Equal(t, len(batch), n)
	}
	t.Logf("created %s: %d x %d in %s", col.Name, bigVectors, bigDim, time.Since(t0).Round(time.Millisecond))
	return col
}

// objects lists a collection's objects directly in MinIO.
func objects(ctx context.Context, t *testing.T, name string) []minio.ObjectInfo {
	t.Helper()
	return fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", name)
}

// uploadsOf lists the incomplete multipart uploads of collection name,
// directly in MinIO. MinIO has no S3 prefix semantics here: with a
// non-empty prefix it lists only the uploads of the object named exactly
// that (so fixture.IncompleteUploads, by collection prefix, finds nothing),
// with an empty prefix every upload since it started (MinIO never restarts
// in the stack). So this lists the whole bucket and keeps the collection's
// uploads, plus those of the exact keys given (tierd names them in its
// answers, error messages and retry log).
func uploadsOf(ctx context.Context, t *testing.T, name string, keys ...string) []minio.ObjectMultipartInfo {
	t.Helper()
	prefix := fixture.ObjectPrefix("", name)
	seen := map[string]bool{}
	var out []minio.ObjectMultipartInfo
	for _, q := range append([]string{""}, keys...) {
		for u := range stack.S3.ListIncompleteUploads(ctx, tierd.Bucket, q, true) {
			require.NoError(t, u.Err, "list incomplete uploads (prefix %q)", q)
			if strings.HasPrefix(u.Key, prefix) && !seen[u.UploadID] {
				seen[u.UploadID] = true
				out = append(out, u)
			}
		}
	}
	return out
}

// keysIn returns the object keys of collection name that err's message
// mentions (tierd names the object a failed transition was writing).
func keysIn(err error, name string) []string {
	if err == nil {
		return nil
	}
	re := regexp.MustCompile(regexp.QuoteMeta(fixture.ObjectPrefix("", name)) + `(data|snapshots)/[A-Za-z0-9_-]+\.parquet`)
	return slices.Compact(slices.Sorted(slices.Values(re.FindAllString(err.Error(), -1))))
}

// requireNothingInBucket requires that MinIO holds no object and no
// incomplete upload of the collection (keys: exact keys to look at too).
func requireNothingInBucket(ctx context.Context, t *testing.T, name string, keys ...string) {
	t.Helper()
	require.Empty(t, objects(ctx, t, name), "objects of %s in MinIO", name)
	require.Empty(t, uploadsOf(ctx, t, name, keys...), "incomplete uploads of %s in MinIO", name)
}

// eventuallyBucket waits until MinIO holds exactly want complete objects and
// no incomplete upload of the collection (keys: exact keys to look at too), running a
// maintenance cycle (pending deletes, orphan sweep) between looks, since
// the suite's worker is paused.
func eventuallyBucket(ctx context.Context, t *testing.T, name string, want int, keys ...string) {
	t.Helper()
	var objs []minio.ObjectInfo
	var ups []minio.ObjectMultipartInfo
	ok := poll(ctx, waitFor, func() bool {
		objs, ups = objects(ctx, t, name), uploadsOf(ctx, t, name, keys...)
		if len(objs) == want && len(ups) == 0 {
			return true
		}
		_, err := stack.Tierd.Worker(ctx, "run_once")
		require.NoError(t, err, "worker run_once")
		return false
	})
	require.True(t, ok, "MinIO never settled to %d object(s) of %s and no incomplete upload of %v: objects %v, uploads %v",
		want, name, keys, keysOf(objs), uploadKeys(ups))
}

// promoteAndReadBack is the read-back that closes a row once its fault is
// gone. It promotes col to hot (why names the promotion in the failure
// message), requires that searches random queries of col are answered
// exactly as col's oracle answers them, waits until MinIO holds no object
// and no incomplete upload of col (keys: exact keys to look at too), and
// runs the case's checkers on col's history. It proves that col came
// through the fault whole: served hot with every acknowledged vector,
// nothing of it left behind in S3, no acknowledged write lost and its tier
// history linearizable.
func promoteAndReadBack(ctx context.Context, t *testing.T, tc *tierd.Case, col *fixture.Collection, searches int, why string, keys ...string) {
	t.Helper()
	_, err := tc.Client.SetTier(ctx, col.Name, api.TierHot)
	require.NoError(t, err, why)
	fixture.RequireExactSearch(ctx, t, tc.Client, tc.Rand, col, searches, topK)
	eventuallyBucket(ctx, t, col.Name, 0, keys...)
	tc.Check(ctx, t, check.Config{}, col.Name)
}

// requireColdObject requires that the cold collection's data object is the
// only object of the collection in MinIO, and that its bytes, read directly
// from MinIO, are exactly the snapshot tierd describes (size, metadata and
// content checksum). It returns the object's key.
func requireColdObject(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	coll, err := stack.Tierd.GetCollection(ctx, name)
	require.NoError(t, err)
	require.Equal(t, api.TierCold, coll.Tier, "tier of %s", name)
	objs := objects(ctx, t, name)
	require.Len(t, objs, 1, "one object of %s in MinIO: %v", name, keysOf(objs))
	require.Equal(t, coll.Object, objs[0].Key, "the object is the one tierd names")
	requireValidObject(ctx, t, coll.Object, coll.Checksum)
	require.Empty(t, uploadsOf(ctx, t, name, coll.Object), "no incomplete upload of %s", name)
	return coll.Object
}

// requireValidObject downloads key directly from MinIO and requires a
// complete Parquet snapshot whose xxh3 equals checksum and the object's
// metadata.
func requireValidObject(ctx context.Context, t *testing.T, key, checksum string) {
	t.Helper()
	data, st := download(ctx, t, key)
	require.Equal(t, checksum, metaChecksum(st), "metadata checksum of %s", key)
	require.NoError(t, snapshot.Verify(key, data, st.Size, checksum), "content of %s", key)
}

// download reads an object and its description directly from MinIO.
func download(ctx context.Context, t *testing.T, key string) ([]byte, minio.ObjectInfo) {
	t.Helper()
	st, err := stack.S3.StatObject(ctx, tierd.Bucket, key, minio.StatObjectOptions{})
	require.NoError(t, err, "stat %s", key)
	obj, err := stack.S3.GetObject(ctx, tierd.Bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	data, err := io.ReadAll(obj)
	require.NoError(t, err, "read %s", key)
	return data, st
}

// metaChecksum returns the object's xxh3 metadata (x-amz-meta-xxh3).
func metaChecksum(st minio.ObjectInfo) string {
	for k, v := range st.UserMetadata {
		if strings.EqualFold(k, snapshot.MetaChecksum) {
			return v
		}
	}
	return ""
}

func keysOf(objs []minio.ObjectInfo) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = fmt.Sprintf("%s (%d B)", o.Key, o.Size)
	}
	return out
}

func uploadKeys(ups []minio.ObjectMultipartInfo) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.Key + " " + u.UploadID
	}
	return out
}

// poll calls cond every pollEvery until it is true (true), or until limit
// or ctx ends (false).
func poll(ctx context.Context, limit time.Duration, cond func() bool) bool {
	return fixture.Poll(ctx, pollEvery, limit, cond)
}

// seedLayer sets the S3 fault layer's seed, which seeds the rules added
// from now on that have none of their own (fault.S3 with Seed 0), and
// puts the previous seed back when t ends.
func seedLayer(ctx context.Context, t *testing.T, seed uint64) {
	t.Helper()
	prev, err := stack.S3Faults.Seed(ctx)
	require.NoError(t, err)
	require.NoError(t, stack.S3Faults.SetSeed(ctx, seed))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stack.S3Faults.SetSeed(ctx, prev); err != nil {
			t.Errorf("put the S3 fault layer's seed back: %v", err)
		}
	})
}

// waitRule waits until the rule's status satisfies cond.
func waitRule(ctx context.Context, t *testing.T, id, what string, cond func(s3fault.RuleStatus) bool) s3fault.RuleStatus {
	t.Helper()
	var st s3fault.RuleStatus
	ok := poll(ctx, waitFor, func() bool {
		var err error
		st, err = stack.S3Faults.Rule(ctx, id)
		require.NoError(t, err)
		return cond(st)
	})
	require.True(t, ok, "waiting for rule %s: %s (last status: matched %d, fired %d)", id, what, st.Matched, st.Fired)
	return st
}

// tierResult is the outcome of an asynchronous SetTier.
type tierResult struct {
	coll api.Collection
	err  error
	took time.Duration
}

// goSetTier runs SetTier in a goroutine; the channel gets its outcome.
func goSetTier(ctx context.Context, c fixture.Tierd, name string, target api.Tier) <-chan tierResult {
	ch := make(chan tierResult, 1)
	go func() {
		start := time.Now()
		coll, err := c.SetTier(ctx, name, target)
		ch <- tierResult{coll: coll, err: err, took: time.Since(start)}
	}()
	return ch
}

// await receives from ch within waitFor.
func await[T any](ctx context.Context, t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*waitFor)
	defer cancel()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		require.FailNow(t, "timed out waiting for "+what)
		var zero T
		return zero
	}
}

// metric reads one sample of tierd's Prometheus metrics (0 when absent:
// counters appear on first use), e.g. metric(ctx, t,
// `tierd_s3_retries_total{op="put"}`).
func metric(ctx context.Context, t *testing.T, series string) float64 {
	t.Helper()
	for _, line := range metricLines(ctx, t) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, "metric line %q", line)
			return v
		}
	}
	return 0
}

// metricSum sums every series of a metric (e.g. all ops of
// tierd_s3_retries_total).
func metricSum(ctx context.Context, t *testing.T, name string) float64 {
	t.Helper()
	var sum float64
	for _, line := range metricLines(ctx, t) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, "metric line %q", line)
		sum += v
	}
	return sum
}

// metricLines reads tierd's /metrics (Prometheus text format) as lines.
func metricLines(ctx context.Context, t *testing.T) []string {
	t.Helper()
	base, err := stack.DebugURL()
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "GET /metrics")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, sc.Err())
	return lines
}

// retryMsg is the uploader's log message for a retried S3 request.
const retryMsg = "uploader: retrying"

// retryRecord is one retried S3 request as tierd logged it.
type retryRecord struct {
	Op      string
	Key     string
	Attempt int
	Code    string
	Wait    time.Duration
}

// retryRecords returns tierd's logged retries of requests on key, in log
// order: from the in-process capture, or from the container's JSON log.
func retryRecords(ctx context.Context, t *testing.T, key string) []retryRecord {
	t.Helper()
	return retryRecordsWhere(ctx, t, func(k string) bool { return k == key })
}

// retryRecordsWhere returns tierd's logged retries of requests on the keys
// match accepts.
func retryRecordsWhere(ctx context.Context, t *testing.T, match func(key string) bool) []retryRecord {
	t.Helper()
	if stack.Mode == tierd.SUTInProcess {
		return retries.where(match)
	}
	logs, err := stack.TierdLogs(ctx)
	require.NoError(t, err, "tierd logs")
	var out []retryRecord
	for line := range strings.Lines(logs) {
		i := strings.IndexByte(line, '{')
		if i < 0 || !strings.Contains(line, retryMsg) {
			continue
		}
		var rec struct {
			Msg     string `json:"msg"`
			Op      string `json:"op"`
			Key     string `json:"key"`
			Attempt int    `json:"attempt"`
			Code    string `json:"code"`
			Wait    int64  `json:"wait"`
		}
		if json.Unmarshal([]byte(line[i:]), &rec) != nil || rec.Msg != retryMsg || !match(rec.Key) {
			continue
		}
		out = append(out, retryRecord{Op: rec.Op, Key: rec.Key, Attempt: rec.Attempt, Code: rec.Code, Wait: time.Duration(rec.Wait)})
	}
	return out
}

// retryLog captures the uploader's retry records of an in-process tierd.
type retryLog struct {
	mu   sync.Mutex
	recs []retryRecord
}

func newRetryLog() *retryLog { return &retryLog{} }

func (l *retryLog) where(match func(key string) bool) []retryRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []retryRecord
	for _, r := range l.recs {
		if match(r.Key) {
			out = append(out, r)
		}
	}
	return out
}

// handler returns a slog.Handler that records retry records into l and
// passes every record inner accepts on to inner.
func (l *retryLog) handler(inner slog.Handler) slog.Handler {
	return &captureHandler{inner: inner, log: l}
}

type captureHandler struct {
	inner slog.Handler
	log   *retryLog
	attrs []slog.Attr
}

// Enabled accepts debug records: the retry records are logged at debug.
func (h *captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == retryMsg {
		var rec retryRecord
		set := func(a slog.Attr) bool {
			switch a.Key {
			case "op":
				rec.Op = a.Value.String()
			case "key":
				rec.Key = a.Value.String()
			case "attempt":
				rec.Attempt = int(a.Value.Int64())
			case "code":
				rec.Code = a.Value.String()
			case "wait":
				rec.Wait = a.Value.Duration()
			}
			return true
		}
		for _, a := range h.attrs {
			set(a)
		}
		r.Attrs(set)
		h.log.mu.Lock()
		h.log.recs = append(h.log.recs, rec)
		h.log.mu.Unlock()
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{inner: h.inner.WithAttrs(as), log: h.log, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	return &captureHandler{inner: h.inner.WithGroup(name), log: h.log, attrs: h.attrs}
}

// revealUploadKey makes tierd name the key of its next multipart upload of
// the collection: reveal, the fault layer answering the collection's first
// CreateMultipartUpload with one 503 SlowDown, which tierd retries and
// logs with the key. The returned function waits for that log record and
// returns the key.
func revealUploadKey(ctx context.Context, t *testing.T, reveal fault.S3, name string) func() string {
	t.Helper()
	stack.InjectS3(ctx, t, reveal)
	prefix := fixture.ObjectPrefix("", name) + "data/"
	return func() string {
		t.Helper()
		var recs []retryRecord
		ok := poll(ctx, waitFor, func() bool {
			recs = retryRecordsWhere(ctx, t, func(k string) bool { return strings.HasPrefix(k, prefix) })
			return len(recs) > 0
		})
		require.True(t, ok, "tierd logged no retry of an upload of %s", name)
		return recs[0].Key
	}
}
