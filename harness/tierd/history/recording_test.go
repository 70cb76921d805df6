package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/harness/tierd/oracle"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// fakeTierd is a small, correct, in-memory stand-in for tierd's REST API,
// enough to exercise the recording client. Collections named "broken" answer
// 500 internal to writes, "proxied" a bare 502, and "slow" hang until the
// client gives up; "lossy" silently drops id v0 and "stale" ignores
// re-inserts, both while acknowledging them; "amnesiac" acknowledges
// restores without replacing the content; "vanishing" is never found by
// the vector listing. The listing pages by fakePage ids at most.
type fakeTierd struct {
	stop  chan struct{} // closed at test end: releases hanging handlers
	mu    sync.Mutex
	colls map[string]*fakeColl
	snaps int // snapshot ids handed out
}

type fakeColl struct {
	info      api.Collection
	vectors   map[string][]float32
	snapshots map[string]map[string][]float32 // this incarnation's
}

func newFakeTierd(t *testing.T) *client.Client {
	t.Helper()
	f := &fakeTierd{stop: make(chan struct{}), colls: map[string]*fakeColl{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/collections", f.create)
	mux.HandleFunc("GET /v1/collections/{name}", f.get)
	mux.HandleFunc("DELETE /v1/collections/{name}", f.delete)
	mux.HandleFunc("POST /v1/collections/{name}/vectors", f.insert)
	mux.HandleFunc("POST /v1/collections/{name}/search", f.search)
	mux.HandleFunc("POST /v1/collections/{name}/tier", f.tier)
	mux.HandleFunc("GET /v1/collections/{name}/vectors", f.list)
	mux.HandleFunc("POST /v1/collections/{name}/snapshots", f.snapshot)
	mux.HandleFunc("POST /v1/collections/{name}/restore", f.restore)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.stop) }) // runs first
	return client.New(srv.URL)
}

func writeErr(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(api.HTTPStatus(code))
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fault answers for the special collection names; it reports whether it did.
func (f *fakeTierd) fault(w http.ResponseWriter, r *http.Request) bool {
	switch r.PathValue("name") {
	case "broken":
		writeErr(w, api.CodeInternal, "boom")
	case "proxied":
		http.Error(w, "bad gateway", http.StatusBadGateway)
	case "slow":
		// Reading the body lets the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
	default:
		return false
	}
	return true
}

func (f *fakeTierd) create(w http.ResponseWriter, r *http.Request) {
	var req api.CreateCollectionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Metric.Valid() || req.Dimension < 1 {
		writeErr(w, api.CodeInvalidArgument, "bad request")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.colls[req.Name]; ok {
		writeErr(w, api.CodeAlreadyExists, req.Name)
		return
	}
	c := &fakeColl{info: api.Collection{Name: req.Name, Dimension: req.Dimension, Metric: req.Metric, Tier: api.TierHot},
		vectors: map[string][]float32{}, snapshots: map[string]map[string][]float32{}}
	f.colls[req.Name] = c
	writeJSON(w, c.info)
}

func (f *fakeTierd) lookup(w http.ResponseWriter, r *http.Request) *fakeColl {
	c := f.colls[r.PathValue("name")]
	if c == nil {
		writeErr(w, api.CodeNotFound, r.PathValue("name"))
	}
	return c
}

func (f *fakeTierd) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(w, r); c != nil {
		info := c.info
		info.Vectors = len(c.vectors)
		writeJSON(w, info)
	}
}

func (f *fakeTierd) delete(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(w, r); c != nil {
		delete(f.colls, c.info.Name)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeTierd) insert(w http.ResponseWriter, r *http.Request) {
	if f.fault(w, r) {
		return
	}
	var req api.InsertRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, api.CodeInvalidArgument, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(w, r)
	if c == nil {
		return
	}
	for _, v := range req.Vectors {
		if err := api.ValidateValues(v.Values, c.info.Dimension); err != nil {
			writeErr(w, api.CodeInvalidArgument, err.Error())
			return
		}
	}
	for _, v := range req.Vectors {
		_, exists := c.vectors[v.ID]
		switch {
		case c.info.Name == "lossy" && v.ID == "v0":
			continue // acknowledged, never stored
		case c.info.Name == "stale" && exists:
			continue // re-inserts acknowledged, old value kept
		}
		c.vectors[v.ID] = v.Values
	}
	c.info.Tier = api.TierHot
	writeJSON(w, api.InsertResponse{Inserted: len(req.Vectors)})
}

func (f *fakeTierd) search(w http.ResponseWriter, r *http.Request) {
	if f.fault(w, r) {
		return
	}
	var req api.SearchRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, api.CodeInvalidArgument, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(w, r)
	if c == nil {
		return
	}
	q, err := oracle.NewQuery(c.info.Metric, req.Vector)
	if err != nil {
		writeErr(w, api.CodeInvalidArgument, err.Error())
		return
	}
	vs := make([]api.Vector, 0, len(c.vectors))
	for id, vals := range c.vectors {
		vs = append(vs, api.Vector{ID: id, Values: vals})
	}
	rs, err := q.TopK(vs, req.K)
	if err != nil {
		writeErr(w, api.CodeInvalidArgument, err.Error())
		return
	}
	c.info.Tier = api.TierHot
	writeJSON(w, api.SearchResponse{Results: rs})
}

func (f *fakeTierd) tier(w http.ResponseWriter, r *http.Request) {
	if f.fault(w, r) {
		return
	}
	var req api.SetTierRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Target.Valid() {
		writeErr(w, api.CodeInvalidArgument, "bad target")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(w, r); c != nil {
		c.info.Tier = req.Target
		writeJSON(w, c.info)
	}
}

// fakePage is the fake's largest listing page: small, so that read-backs
// page.
const fakePage = 64

func (f *fakeTierd) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(w, r)
	if c == nil {
		return
	}
	if c.info.Name == "vanishing" {
		writeErr(w, api.CodeNotFound, "vanishing")
		return
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || api.ValidateListLimit(limit) != nil {
		limit = api.DefaultListLimit
	}
	after := r.URL.Query().Get("after")
	ids := slices.Sorted(maps.Keys(c.vectors))
	ids = ids[sort.SearchStrings(ids, after):]
	if len(ids) > 0 && ids[0] == after {
		ids = ids[1:]
	}
	var page api.VectorPage
	for i, id := range ids {
		if i == min(limit, fakePage) {
			page.Next = page.Vectors[i-1].ID
			break
		}
		page.Vectors = append(page.Vectors, api.Vector{ID: id, Values: c.vectors[id]})
	}
	writeJSON(w, page)
}

func (f *fakeTierd) snapshot(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(w, r); c != nil {
		f.snaps++
		id := fmt.Sprintf("snap-%d", f.snaps)
		c.snapshots[id] = maps.Clone(c.vectors)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(api.Snapshot{ID: id, Collection: c.info.Name, Vectors: len(c.vectors)})
	}
}

func (f *fakeTierd) restore(w http.ResponseWriter, r *http.Request) {
	var req api.RestoreRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Snapshot == "" {
		writeErr(w, api.CodeInvalidArgument, "bad snapshot id")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(w, r)
	if c == nil {
		return
	}
	content, ok := c.snapshots[req.Snapshot]
	if !ok {
		writeErr(w, api.CodeNotFound, "no snapshot "+req.Snapshot)
		return
	}
	if c.info.Name != "amnesiac" {
		c.vectors = maps.Clone(content)
	}
	c.info.Tier = api.TierHot
	info := c.info
	info.Vectors = len(content)
	writeJSON(w, info)
}

func TestRecordingClientClassifiesOutcomes(t *testing.T) {
	ctx := context.Background()
	rec := history.NewRecorder()
	rc := history.NewRecordingClient(newFakeTierd(t), rec)

	_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: "c", Dimension: 2, Metric: api.MetricDot})
	require.NoError(t, err)
	_, err = rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: "c", Dimension: 2, Metric: api.MetricDot})
	require.Equal(t, api.CodeAlreadyExists, client.CodeOf(err))
	_, err = rc.Insert(ctx, "c", []api.Vector{{ID: "a", Values: []float32{1, 2}}})
	require.NoError(t, err)
	_, err = rc.Insert(ctx, "c", []api.Vector{{ID: "b", Values: []float32{1}}})
	require.Equal(t, api.CodeInvalidArgument, client.CodeOf(err))
	_, err = rc.Insert(ctx, "broken", []api.Vector{{ID: "a", Values: []float32{1, 2}}})
	require.Error(t, err)
	_, err = rc.SetTier(ctx, "proxied", api.TierCold)
	require.Error(t, err)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = rc.Search(short, "slow", []float32{1, 0}, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	rs, err := rc.Search(ctx, "c", []float32{1, 0}, 3)
	require.NoError(t, err)
	_, err = rc.SetTier(ctx, "c", api.TierWarm)
	require.NoError(t, err)
	got, err := rc.GetCollection(ctx, "c")
	require.NoError(t, err)
	require.NoError(t, rc.DeleteCollection(ctx, "c"))
	_, err = rc.GetCollection(ctx, "c")
	require.Equal(t, api.CodeNotFound, client.CodeOf(err))

	ops := rec.Ops()
	type row struct {
		kind    history.Kind
		outcome history.Outcome
		code    string
	}
	var rows []row
	for _, op := range ops {
		rows = append(rows, row{op.Kind, op.Outcome, op.Code})
	}
	assert.Equal(t, []row{
		{history.KindCreateCollection, history.OK, ""},
		{history.KindCreateCollection, history.Failed, api.CodeAlreadyExists},
		{history.KindInsert, history.OK, ""},
		{history.KindInsert, history.Failed, api.CodeInvalidArgument},
		{history.KindInsert, history.Unknown, api.CodeInternal},
		{history.KindSetTier, history.Unknown, ""},
		{history.KindSearch, history.Unknown, ""},
		{history.KindSearch, history.OK, ""},
		{history.KindSetTier, history.OK, ""},
		{history.KindGetCollection, history.OK, ""},
		{history.KindDeleteCollection, history.OK, ""},
		{history.KindGetCollection, history.Failed, api.CodeNotFound},
	}, rows)
	assert.Equal(t, rs, ops[7].Results)
	assert.Equal(t, api.TierWarm, ops[9].Tier)
	assert.Equal(t, got.Vectors, ops[9].Count)
	assert.Equal(t, api.MetricDot, ops[9].Metric)
	assert.Equal(t, 2, ops[9].Dimension)
	assert.Equal(t, 502, ops[5].Status)
	assert.Contains(t, ops[6].Error, "deadline exceeded")
}

// TestRecordedRunPassesTheCheckers drives the fake concurrently through the
// recording client, reads the final state back and runs every checker: a
// correct server must pass.
func TestRecordedRunPassesTheCheckers(t *testing.T) {
	ctx := context.Background()
	rec := history.NewRecorder()
	rc := history.NewRecordingClient(newFakeTierd(t), rec)
	names := []string{"a", "b"}
	for i, n := range names {
		_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: n, Dimension: 3,
			Metric: []api.Metric{api.MetricCosine, api.MetricL2}[i]})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 60 {
				name := names[rng.IntN(len(names))]
				vals := []float32{float32(rng.IntN(5) + 1), float32(rng.IntN(5)), float32(rng.IntN(5))}
				var err error
				switch rng.IntN(4) {
				case 0, 1:
					_, err = rc.Insert(ctx, name, []api.Vector{{ID: fmt.Sprintf("v%d", rng.IntN(15)), Values: vals}})
				case 2:
					_, err = rc.Search(ctx, name, vals, rng.IntN(5)+1)
				default:
					_, err = rc.SetTier(ctx, name, []api.Tier{api.TierHot, api.TierWarm, api.TierCold}[rng.IntN(3)])
				}
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	final, err := rc.ReadFinal(ctx, append(names, "never-created")...)
	require.NoError(t, err)
	assert.False(t, final.Collections["never-created"].Exists)
	all, err := rc.ReadFinal(ctx) // every collection of the history
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "never-created"}, history.Collections(rec.Ops()))
	assert.Len(t, all.Collections, 3)
	assert.Equal(t, final.Collections["a"], all.Collections["a"])
	assert.True(t, check.All(t, rec.Ops(), final, check.Config{}))
}

// TestReadBackCatchesBrokenServers: through the exact read-back, an
// acknowledged but dropped insert and an acknowledged but ignored re-insert
// are both flagged.
func TestReadBackCatchesBrokenServers(t *testing.T) {
	tests := []struct {
		name     string
		checkers []string
		message  string
	}{
		{"lossy", []string{check.LostWritesName}, "acknowledged insert (op 1) is lost"},
		{"stale", []string{check.LostWritesName}, "final values [3 4] are not the values of any write"},
		{"vanishing", []string{check.LostWritesName}, "was never deleted, but is gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rec := history.NewRecorder()
			rc := history.NewRecordingClient(newFakeTierd(t), rec)
			_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: tt.name, Dimension: 2, Metric: api.MetricL2})
			require.NoError(t, err)
			_, err = rc.Insert(ctx, tt.name, []api.Vector{{ID: "v0", Values: []float32{1, 2}}, {ID: "v1", Values: []float32{3, 4}}})
			require.NoError(t, err)
			_, err = rc.Insert(ctx, tt.name, []api.Vector{{ID: "v1", Values: []float32{5, 6}}})
			require.NoError(t, err)
			final, err := rc.ReadFinal(ctx)
			require.NoError(t, err)
			c, err := check.New(rec.Ops(), check.Config{ArtifactDir: t.TempDir()})
			require.NoError(t, err)
			err = c.All(final)
			var f *check.Failure
			require.ErrorAs(t, err, &f)
			assert.ElementsMatch(t, tt.checkers, f.Checkers)
			assert.Contains(t, err.Error(), tt.message)
		})
	}
}

// TestRecordedSnapshotsAndRestores: snapshots and restores racing inserts,
// searches and tier changes, recorded and read back, pass every checker
// against a correct server; the recorded kinds, ids and counts are right.
func TestRecordedSnapshotsAndRestores(t *testing.T) {
	ctx := context.Background()
	rec := history.NewRecorder()
	rc := history.NewRecordingClient(newFakeTierd(t), rec)
	_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: "r", Dimension: 3, Metric: api.MetricL2})
	require.NoError(t, err)
	for i := range 5 {
		_, err := rc.Insert(ctx, "r", []api.Vector{{ID: fmt.Sprintf("v%d", i), Values: []float32{float32(i), 1, 0}}})
		require.NoError(t, err)
	}
	first, err := rc.CreateSnapshot(ctx, "r")
	require.NoError(t, err)
	assert.Equal(t, 5, first.Vectors)
	_, err = rc.Restore(ctx, "r", "no-such-snapshot")
	require.Equal(t, api.CodeNotFound, client.CodeOf(err))

	var mu sync.Mutex
	ids := []string{first.ID}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for range 40 {
				vals := []float32{float32(rng.IntN(7)), float32(rng.IntN(7)), float32(rng.IntN(7))}
				var err error
				switch rng.IntN(6) {
				case 0, 1:
					_, err = rc.Insert(ctx, "r", []api.Vector{{ID: fmt.Sprintf("v%d", rng.IntN(12)), Values: vals}})
				case 2:
					_, err = rc.Search(ctx, "r", vals, rng.IntN(6)+1)
				case 3:
					var sn api.Snapshot
					sn, err = rc.CreateSnapshot(ctx, "r")
					if err == nil {
						mu.Lock()
						ids = append(ids, sn.ID)
						mu.Unlock()
					}
				case 4:
					mu.Lock()
					id := ids[rng.IntN(len(ids))]
					mu.Unlock()
					var coll api.Collection
					coll, err = rc.Restore(ctx, "r", id)
					assert.Equal(t, api.TierHot, coll.Tier)
				default:
					_, err = rc.SetTier(ctx, "r", []api.Tier{api.TierWarm, api.TierCold}[rng.IntN(2)])
				}
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	final, err := rc.ReadFinal(ctx)
	require.NoError(t, err)
	assert.True(t, check.All(t, rec.Ops(), final, check.Config{}))

	ops := rec.Ops()
	assert.Equal(t, history.KindSnapshot, ops[6].Kind)
	assert.Equal(t, first.ID, ops[6].Snapshot)
	assert.Equal(t, 5, ops[6].Count)
	assert.Equal(t, history.KindRestore, ops[7].Kind)
	assert.Equal(t, history.Failed, ops[7].Outcome)
	assert.Equal(t, "no-such-snapshot", ops[7].Snapshot)
	restores := 0
	for _, op := range ops {
		if op.Kind == history.KindRestore && op.Outcome == history.OK {
			restores++
			assert.Equal(t, api.TierHot, op.Tier)
		}
	}
	assert.Positive(t, restores)
}

// TestRestoreThatKeepsTheContentIsCaught: a server that acknowledges a
// restore without replacing the content is flagged through the read-back:
// the superseded id and the superseded value.
func TestRestoreThatKeepsTheContentIsCaught(t *testing.T) {
	ctx := context.Background()
	rec := history.NewRecorder()
	rc := history.NewRecordingClient(newFakeTierd(t), rec)
	_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: "amnesiac", Dimension: 2, Metric: api.MetricDot})
	require.NoError(t, err)
	_, err = rc.Insert(ctx, "amnesiac", []api.Vector{{ID: "a", Values: []float32{1, 2}}})
	require.NoError(t, err)
	sn, err := rc.CreateSnapshot(ctx, "amnesiac")
	require.NoError(t, err)
	_, err = rc.Insert(ctx, "amnesiac", []api.Vector{{ID: "a", Values: []float32{5, 6}}, {ID: "b", Values: []float32{3, 4}}})
	require.NoError(t, err)
	_, err = rc.Restore(ctx, "amnesiac", sn.ID)
	require.NoError(t, err)
	final, err := rc.ReadFinal(ctx)
	require.NoError(t, err)
	c, err := check.New(rec.Ops(), check.Config{ArtifactDir: t.TempDir()})
	require.NoError(t, err)
	err = c.All(final)
	var f *check.Failure
	require.ErrorAs(t, err, &f)
	assert.ElementsMatch(t, []string{check.LostWritesName}, f.Checkers)
	assert.Contains(t, err.Error(), `id "b"`)
	assert.Contains(t, err.Error(), "certainly wiped")
	assert.Contains(t, err.Error(), "final values [5 6] are not the values of any write")
}

// TestReadFinalListsExactValuesOfAnySize: the read-back pages through the
// listing and returns every id with its exact values, also for more
// vectors than one search can return (api.MaxK), and records only the
// GetCollection.
func TestReadFinalListsExactValuesOfAnySize(t *testing.T) {
	ctx := context.Background()
	rec := history.NewRecorder()
	rc := history.NewRecordingClient(newFakeTierd(t), rec)
	_, err := rc.CreateCollection(ctx, api.CreateCollectionRequest{Name: "big", Dimension: 2, Metric: api.MetricCosine})
	require.NoError(t, err)
	want := map[string][]float32{}
	var batch []api.Vector
	for i := range api.MaxK + 500 {
		v := api.Vector{ID: fmt.Sprintf("v%05d", i), Values: []float32{float32(i) + 0.1, -1.5e-40}} // a subnormal
		want[v.ID] = v.Values
		batch = append(batch, v)
	}
	_, err = rc.Insert(ctx, "big", batch)
	require.NoError(t, err)
	before := rec.Len()
	final, err := rc.ReadFinal(ctx)
	require.NoError(t, err)
	assert.Equal(t, before+1, rec.Len(), "only the GetCollection is recorded")
	assert.Equal(t, history.KindGetCollection, rec.Ops()[before].Kind)
	require.True(t, final.Collections["big"].Exists)
	assert.Equal(t, want, final.Collections["big"].Vectors)
	assert.True(t, check.All(t, rec.Ops(), final, check.Config{}))
}
