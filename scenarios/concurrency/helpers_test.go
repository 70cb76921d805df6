//go:build e2e

package concurrency

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/harness/tierd/oracle"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
	"github.com/tierchaos/tierchaos/system/snapshot"
)

// pollEvery is the polling interval of every wait in this suite.
const pollEvery = 10 * time.Millisecond

// uploadOps are the S3 operations that carry an object's bytes.
var uploadOps = []s3fault.Op{s3fault.OpPutObject, s3fault.OpCreateMultipartUpload, s3fault.OpUploadPart}

// ruleStatus returns a rule's counters.
func ruleStatus(ctx context.Context, t *testing.T, id string) s3fault.RuleStatus {
	t.Helper()
	st, err := stack.S3Faults.Rule(ctx, id)
	require.NoError(t, err, "read S3 fault rule %s", id)
	return st
}

// waitMatched waits until at least n requests matched the rule: the
// operation it holds has reached S3.
func waitMatched(ctx context.Context, t *testing.T, id string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := stack.S3Faults.Rule(ctx, id)
		return err == nil && st.Matched >= n
	}, 30*time.Second, pollEvery, "S3 fault rule %s never matched %d request(s)", id, n)
}

// codeName returns "ok" for nil, tierd's error code, or the error text for
// errors without a code (transport errors).
func codeName(err error) string {
	if err == nil {
		return "ok"
	}
	if code := client.CodeOf(err); code != "" {
		return code
	}
	return err.Error()
}

// together runs fn(0..n-1) in n goroutines released at the same moment and
// waits for all of them.
func together(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// answersUntil runs n workers at once until the deadline passes or ctx
// ends, and waits for all of them. Worker w draws from its own stream
// "<stream>-<w>" of the case and calls step over and over; each call makes
// one request: op names it, on names the collection it was for and err is
// its outcome. It returns how often each answer "<op> <codeName(err)>"
// came, and for each answer that was an error the first such error, with
// its collection and the time it came.
func answersUntil(ctx context.Context, tc *tierd.Case, stream string, n int, deadline time.Time,
	step func(r *rand.Rand) (op, on string, err error)) (answers map[string]int, firstErr map[string]string) {
	var mu sync.Mutex
	answers, firstErr = map[string]int{}, map[string]string{}
	var wg sync.WaitGroup
	for w := range n {
		r := tc.Seed.Stream(fmt.Sprintf("%s-%d", stream, w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				op, on, err := step(r)
				key := op + " " + codeName(err)
				mu.Lock()
				answers[key]++
				if _, seen := firstErr[key]; err != nil && !seen {
					firstErr[key] = fmt.Sprintf("%s at %s: %v", on, time.Now().UTC().Format(time.RFC3339Nano), err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return answers, firstErr
}

// transitions reads tierd_tier_transitions_total{from,to,result="ok"}
// from tierd's metrics endpoint.
func transitions(ctx context.Context, t *testing.T, from, to api.Tier) float64 {
	t.Helper()
	return metricValue(ctx, t, "tierd_tier_transitions_total", map[string]string{"from": string(from), "to": string(to), "result": "ok"})
}

// metricValue reads the counter name with the given labels from tierd's
// metrics endpoint (0 when it has no such series yet).
func metricValue(ctx context.Context, t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	base, err := stack.DebugURL()
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "read tierd's metrics")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "parse tierd's metrics")
	fam, ok := fams[name]
	if !ok {
		return 0
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if match {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// objectsUnder lists the objects of a collection whose key has the given
// part ("data/" or "snapshots/") after the collection's prefix, read
// directly from MinIO.
func objectsUnder(ctx context.Context, t *testing.T, name, part string) []minio.ObjectInfo {
	t.Helper()
	var out []minio.ObjectInfo
	for _, o := range fixture.Objects(ctx, t, stack.S3, tierd.Bucket, "", name) {
		if strings.HasPrefix(o.Key, fixture.ObjectPrefix("", name)+part) {
			out = append(out, o)
		}
	}
	return out
}

// keysOf returns the keys of objects, sorted.
func keysOf(objs []minio.ObjectInfo) []string {
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

// objectContent downloads a snapshot object directly from MinIO, checks
// its size and checksum against what tierd reported (wantSize < 0 skips
// the size), and decodes it.
func objectContent(ctx context.Context, t *testing.T, key string, wantSize int64, wantChecksum string, dim int) []api.Vector {
	t.Helper()
	obj, err := stack.S3.GetObject(ctx, tierd.Bucket, key, minio.GetObjectOptions{})
	require.NoError(t, err, "get %s from MinIO", key)
	defer obj.Close()
	data, err := io.ReadAll(obj)
	require.NoError(t, err, "read %s from MinIO", key)
	if wantSize < 0 {
		wantSize = int64(len(data))
	}
	ids, vecs, err := snapshot.Decode(key, data, wantSize, wantChecksum, dim)
	require.NoError(t, err, "object %s is not the snapshot tierd reported", key)
	out := make([]api.Vector, len(ids))
	for i, id := range ids {
		out[i] = api.Vector{ID: id, Values: slices.Clone(vecs[i*dim : (i+1)*dim])}
	}
	return out
}

// sameVectors reports whether a and b hold the same ids with bit-identical
// values, in any order.
func sameVectors(a, b []api.Vector) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string][]float32, len(a))
	for _, v := range a {
		m[v.ID] = v.Values
	}
	for _, v := range b {
		w, ok := m[v.ID]
		if !ok || !slices.Equal(w, v.Values) {
			return false
		}
	}
	return true
}

// requireContent requires the collection to hold exactly want: each of
// queries random searches with k = api.MaxK (above the collection's size)
// must list exactly want's ids with the oracle's scores for want's values,
// in the oracle's order.
func requireContent(ctx context.Context, t *testing.T, c fixture.Tierd, rng *rand.Rand, name string, metric api.Metric, want []api.Vector, queries int) {
	t.Helper()
	require.NotEmpty(t, want)
	require.Less(t, len(want), api.MaxK, "content checks list every vector in one search")
	dim := len(want[0].Values)
	for i := range queries {
		q := fixture.RandomVectors(rng, 1, dim)[0].Values
		got, err := c.Search(ctx, name, q, api.MaxK)
		require.NoError(t, err, "search %s", name)
		oq, err := oracle.NewQuery(metric, q)
		require.NoError(t, err)
		ranked, err := oq.Rank(want)
		require.NoError(t, err)
		require.NoError(t, oq.Compare(ranked, got, api.MaxK, oracle.DefaultTolerance),
			"content check %d of %s: the collection does not hold exactly the expected %d vectors", i, name, len(want))
	}
}

// newVectors returns n vectors with ids prefix0000... and random values.
func newVectors(rng *rand.Rand, prefix string, n, dim int) []api.Vector {
	vs := fixture.RandomVectors(rng, n, dim)
	for i := range vs {
		vs[i].ID = fmt.Sprintf("%s%04d", prefix, i)
	}
	return vs
}

// withValues returns a copy of vs with fresh random values (same ids).
func withValues(rng *rand.Rand, vs []api.Vector) []api.Vector {
	fresh := fixture.RandomVectors(rng, len(vs), len(vs[0].Values))
	out := make([]api.Vector, len(vs))
	for i, v := range vs {
		out[i] = api.Vector{ID: v.ID, Values: fresh[i].Values}
	}
	return out
}

// insertAll inserts vs in batches of 200, failing the test on any error.
func insertAll(ctx context.Context, t *testing.T, c fixture.Tierd, name string, vs []api.Vector) {
	t.Helper()
	for i := 0; i < len(vs); i += 200 {
		batch := vs[i:min(i+200, len(vs))]
		n, err := c.Insert(ctx, name, batch)
		require.NoError(t, err, "insert into %s", name)
		require.Equal(t, len(batch), n)
	}
}

// merge returns base with the vectors of over replacing or adding by id.
func merge(base, over []api.Vector) []api.Vector {
	idx := make(map[string]int, len(base))
	out := slices.Clone(base)
	for i, v := range out {
		idx[v.ID] = i
	}
	for _, v := range over {
		if i, ok := idx[v.ID]; ok {
			out[i] = v
			continue
		}
		idx[v.ID] = len(out)
		out = append(out, v)
	}
	return out
}

// requireNoColdCopy waits until the bucket holds no data object of the
// collection: the cold copy a promotion replaced is deleted in the
// background, after the promotion answered.
func requireNoColdCopy(ctx context.Context, t *testing.T, name string, why ...any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := keysOf(objectsUnder(ctx, t, name, "data/"))
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			require.Empty(t, left, "no cold copy may be left: %s", fmt.Sprint(why...))
		}
		select {
		case <-ctx.Done():
			require.Empty(t, left, "no cold copy may be left (%v): %s", ctx.Err(), fmt.Sprint(why...))
		case <-time.After(pollEvery):
		}
	}
}
