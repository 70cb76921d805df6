package history

import (
	"context"
	"errors"
	"fmt"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// RecordingClient wraps a tierd client, REST (*client.Client) or gRPC
// (*grpcclient.Client), and records every call in a Recorder, with the
// same outcomes over both (AnswerOf). It is safe for concurrent use if the
// wrapped client is.
type RecordingClient struct {
	c        client.API
	rec      *Recorder
	classify func(status int, code string, err error) Outcome
}

// RecordingOption customises a RecordingClient.
type RecordingOption func(*RecordingClient)

// WithClassifier replaces Classify for deciding outcomes.
func WithClassifier(f func(status int, code string, err error) Outcome) RecordingOption {
	return func(rc *RecordingClient) { rc.classify = f }
}

// NewRecordingClient returns a client that records into rec.
func NewRecordingClient(c client.API, rec *Recorder, opts ...RecordingOption) *RecordingClient {
	rc := &RecordingClient{c: c, rec: rec, classify: Classify}
	for _, o := range opts {
		o(rc)
	}
	return rc
}

// Client returns the wrapped client, for calls that are not to be recorded.
func (rc *RecordingClient) Client() client.API { return rc.c }

// Recorder returns the recorder.
func (rc *RecordingClient) Recorder() *Recorder { return rc.rec }

// finish classifies err and records the return. A recorder error can only
// come from a double finish, which this file never does.
func (rc *RecordingClient) finish(call *Call, err error, res Result) {
	status, code := AnswerOf(err)
	res.Outcome = rc.classify(status, code, err)
	res.Status, res.Code, res.Err = status, code, err
	if res.Outcome != OK {
		res.Results, res.Tier, res.Count, res.Dimension, res.Metric, res.Snapshot = nil, "", 0, 0, "", ""
	}
	_ = call.Finish(res)
}

// CreateCollection records and performs a create.
func (rc *RecordingClient) CreateCollection(ctx context.Context, req api.CreateCollectionRequest) (api.Collection, error) {
	call := rc.rec.Invoke(Op{Kind: KindCreateCollection, Collection: req.Name, Dimension: req.Dimension, Metric: req.Metric})
	out, err := rc.c.CreateCollection(ctx, req)
	rc.finish(call, err, Result{})
	return out, err
}

// DeleteCollection records and performs a delete.
func (rc *RecordingClient) DeleteCollection(ctx context.Context, name string) error {
	call := rc.rec.Invoke(Op{Kind: KindDeleteCollection, Collection: name})
	err := rc.c.DeleteCollection(ctx, name)
	rc.finish(call, err, Result{})
	return err
}

// Insert records and performs an insert.
func (rc *RecordingClient) Insert(ctx context.Context, name string, vectors []api.Vector) (int, error) {
	call := rc.rec.Invoke(Op{Kind: KindInsert, Collection: name, Vectors: vectors})
	n, err := rc.c.Insert(ctx, name, vectors)
	rc.finish(call, err, Result{})
	return n, err
}

// Search records and performs a search.
func (rc *RecordingClient) Search(ctx context.Context, name string, vector []float32, k int) ([]api.Result, error) {
	call := rc.rec.Invoke(Op{Kind: KindSearch, Collection: name, Query: vector, K: k})
	rs, err := rc.c.Search(ctx, name, vector, k)
	rc.finish(call, err, Result{Results: rs})
	return rs, err
}

// SetTier records and performs an explicit tier change.
func (rc *RecordingClient) SetTier(ctx context.Context, name string, target api.Tier) (api.Collection, error) {
	call := rc.rec.Invoke(Op{Kind: KindSetTier, Collection: name, Target: target})
	out, err := rc.c.SetTier(ctx, name, target)
	rc.finish(call, err, Result{})
	return out, err
}

// GetCollection records and performs a read of the collection's state.
func (rc *RecordingClient) GetCollection(ctx context.Context, name string) (api.Collection, error) {
	call := rc.rec.Invoke(Op{Kind: KindGetCollection, Collection: name})
	out, err := rc.c.GetCollection(ctx, name)
	rc.finish(call, err, Result{Tier: out.Tier, Count: out.Vectors, Dimension: out.Dimension, Metric: out.Metric})
	return out, err
}

// CreateSnapshot records and performs a snapshot: a full read of the
// collection whose id and vector count are recorded.
func (rc *RecordingClient) CreateSnapshot(ctx context.Context, name string) (api.Snapshot, error) {
	call := rc.rec.Invoke(Op{Kind: KindSnapshot, Collection: name})
	out, err := rc.c.CreateSnapshot(ctx, name)
	rc.finish(call, err, Result{Snapshot: out.ID, Count: out.Vectors})
	return out, err
}

// Restore records and performs a restore of the snapshot with the given id;
// the tier and vector count tierd answers are recorded.
func (rc *RecordingClient) Restore(ctx context.Context, name, snapshotID string) (api.Collection, error) {
	call := rc.rec.Invoke(Op{Kind: KindRestore, Collection: name, Snapshot: snapshotID})
	out, err := rc.c.Restore(ctx, name, snapshotID)
	rc.finish(call, err, Result{Tier: out.Tier, Count: out.Vectors})
	return out, err
}

// ListVectors records a one-page listing of the collection's vectors.
func (rc *RecordingClient) ListVectors(ctx context.Context, name, after string, limit int) (api.VectorPage, error) {
	call := rc.rec.Invoke(Op{Kind: KindListVectors, Collection: name})
	out, err := rc.c.ListVectors(ctx, name, after, limit)
	rc.finish(call, err, Result{Count: len(out.Vectors)})
	return out, err
}

// ListSnapshots records a listing of the collection's snapshots.
func (rc *RecordingClient) ListSnapshots(ctx context.Context, name string) ([]api.Snapshot, error) {
	call := rc.rec.Invoke(Op{Kind: KindListSnapshots, Collection: name})
	out, err := rc.c.ListSnapshots(ctx, name)
	rc.finish(call, err, Result{Count: len(out)})
	return out, err
}

// ErrReadBack is wrapped by ReadFinal's errors.
var ErrReadBack = errors.New("history: final read-back failed")

// ReadFinal reads the final state of the named collections: a recorded
// GetCollection each (existence and tier), then every vector with exact
// values through tierd's paginated listing (client.AllVectors, pages of
// api.MaxListLimit). The listing is not recorded: it is not an operation of
// the history model, and tierd reads every tier in place without promoting,
// so it changes nothing the checkers judge. A collection that the listing
// no longer finds is recorded as missing (the checkers then judge the
// contradiction with the GetCollection). Without names it reads every
// collection of the recorder's history. Call it only after every other
// operation has returned: pages are independent reads, exact only while
// nothing writes.
func (rc *RecordingClient) ReadFinal(ctx context.Context, names ...string) (Final, error) {
	if len(names) == 0 {
		names = Collections(rc.rec.Ops())
	}
	f := Final{Collections: make(map[string]CollectionState, len(names))}
	for _, name := range names {
		_, err := rc.GetCollection(ctx, name)
		if client.CodeOf(err) == api.CodeNotFound {
			f.Collections[name] = CollectionState{}
			continue
		}
		if err != nil {
			return Final{}, fmt.Errorf("%w: get %q: %w", ErrReadBack, name, err)
		}
		vs, err := rc.c.AllVectors(ctx, name, api.MaxListLimit)
		if client.CodeOf(err) == api.CodeNotFound {
			f.Collections[name] = CollectionState{}
			continue
		}
		if err != nil {
			return Final{}, fmt.Errorf("%w: list the vectors of %q: %w", ErrReadBack, name, err)
		}
		st := CollectionState{Exists: true, Vectors: make(map[string][]float32, len(vs))}
		for _, v := range vs {
			if _, dup := st.Vectors[v.ID]; dup {
				return Final{}, fmt.Errorf("%w: the listing of %q returned id %q twice", ErrReadBack, name, v.ID)
			}
			st.Vectors[v.ID] = v.Values
		}
		f.Collections[name] = st
	}
	return f, nil
}
