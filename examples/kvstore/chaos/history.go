package chaos

import (
	"context"
	"errors"
	"sync"

	"github.com/anishathalye/porcupine"

	"github.com/tierchaos/tierchaos/examples/kvstore/kvclient"
	"github.com/tierchaos/tierchaos/harness/linearize"
	"github.com/tierchaos/tierchaos/harness/nemesis"
)

// Recorder records the operations clients made and what they saw, as a
// porcupine history (harness/linearize) and as the operations per-phase
// budgets judge (harness/nemesis), and counts them. It is safe for
// concurrent use.
type Recorder struct {
	lin    *linearize.Recorder[Input, Output]
	mu     sync.Mutex
	stats  Stats
	judged []nemesis.Op
}

// Stats counts what the recorded operations saw.
type Stats struct {
	// OK operations got an answer; Failed got an error that says nothing
	// happened (not recorded); Unknown writes may have taken effect
	// (recorded as pending); LostReads are reads that got no answer (not
	// recorded: they constrain nothing).
	OK, Failed, Unknown, LostReads int
	// OKWrites are the OK operations that were writes (put, delete, cas).
	OKWrites int
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{lin: linearize.NewRecorder[Input, Output]()} }

// now is the recorder's monotonic clock.
func (r *Recorder) now() int64 { return r.lin.Now() }

// Client returns a client of the store for client id (0, 1, ...: one per
// goroutine) that records into r.
func (r *Recorder) Client(id int, c *kvclient.Client) *Client {
	return &Client{id: id, c: c, r: r}
}

// record adds one operation invoked at call that ended with out or err.
func (r *Recorder) record(client int, in Input, call int64, out Output, err error) {
	r.mu.Lock()
	op := nemesis.Op{Kind: string(in.Kind), Call: call, Return: r.now(), OK: err == nil, Subject: in.Key}
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		// Only the traffic's end cancels an operation: not an error of
		// the store's.
		op.Expected = true
	case !kvclient.Indeterminate(err):
		op.Code = CodeFailed
	}
	r.judged = append(r.judged, op)
	switch {
	case err == nil:
		r.stats.OK++
		if in.Kind != Get {
			r.stats.OKWrites++
		}
	case !kvclient.Indeterminate(err):
		r.stats.Failed++
	case in.Kind == Get:
		r.stats.LostReads++
	default:
		r.stats.Unknown++
	}
	r.mu.Unlock()
	switch {
	case err == nil:
		r.lin.Done(client, in, call, out)
	case kvclient.Indeterminate(err) && in.Kind != Get:
		r.lin.Pending(client, in, call, Output{Unknown: true})
	}
}

// Ops returns the history: pending operations (Unknown) return after
// everything else.
func (r *Recorder) Ops() []porcupine.Operation { return r.lin.Ops() }

// CodeFailed is the code of an operation that failed without taking
// effect, in the operations budgets judge (one that may have taken effect
// has none).
const CodeFailed = "failed"

// Judged returns the operations so far as per-phase budgets judge them,
// on the recorder's clock (Now).
func (r *Recorder) Judged() []nemesis.Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]nemesis.Op(nil), r.judged...)
}

// Now reads the recorder's clock.
func (r *Recorder) Now() int64 { return r.now() }

// Stats returns the counts so far.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Client is a recording client of the store. Its methods are
// kvclient.Client's.
type Client struct {
	id int
	c  *kvclient.Client
	r  *Recorder
}

// Get reads key; a missing key is ("", false, nil).
func (c *Client) Get(ctx context.Context, key string) (string, bool, error) {
	call := c.r.now()
	v, err := c.c.Get(ctx, key)
	exists := err == nil
	if errors.Is(err, kvclient.ErrNotFound) {
		err = nil
	}
	c.r.record(c.id, Input{Kind: Get, Key: key}, call, Output{Value: v, Exists: exists}, err)
	return v, exists, err
}

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key, value string) error {
	call := c.r.now()
	err := c.c.Put(ctx, key, value)
	c.r.record(c.id, Input{Kind: Put, Key: key, Value: value}, call, Output{}, err)
	return err
}

// Delete removes key.
func (c *Client) Delete(ctx context.Context, key string) error {
	call := c.r.now()
	err := c.c.Delete(ctx, key)
	c.r.record(c.id, Input{Kind: Delete, Key: key}, call, Output{}, err)
	return err
}

// CompareAndSet sets key to to if it holds from.
func (c *Client) CompareAndSet(ctx context.Context, key, from, to string) (bool, error) {
	call := c.r.now()
	ok, err := c.c.CompareAndSet(ctx, key, from, to)
	c.r.record(c.id, Input{Kind: CAS, Key: key, Value: to, From: from}, call, Output{Swapped: ok}, err)
	return ok, err
}
