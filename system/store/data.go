package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/vecmath"
)

// recInsert is the only WAL record type: a batch of vectors for one
// collection incarnation.
const recInsert = 1

// insertRecord is a decoded WAL record.
type insertRecord struct {
	collection uint64
	dim        int
	vectors    []api.Vector
}

// encodeInsert lays out: u8 type, u64 collection id, u32 dim, u32 count,
// then per vector u16 id length, id, dim little-endian float32s.
func encodeInsert(collection uint64, dim int, vs []api.Vector) []byte {
	n := 1 + 8 + 4 + 4
	for _, v := range vs {
		n += 2 + len(v.ID) + 4*dim
	}
	b := make([]byte, 0, n)
	b = append(b, recInsert)
	b = binary.LittleEndian.AppendUint64(b, collection)
	b = binary.LittleEndian.AppendUint32(b, uint32(dim))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vs)))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v.ID)))
		b = append(b, v.ID...)
		for _, f := range v.Values {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
		}
	}
	return b
}

var errBadRecord = errors.New("malformed WAL record")

// decodeInsert parses a record; it never panics on hostile input.
func decodeInsert(b []byte) (insertRecord, error) {
	var r insertRecord
	if len(b) < 17 || b[0] != recInsert {
		return r, fmt.Errorf("%w: short or unknown type", errBadRecord)
	}
	r.collection = binary.LittleEndian.Uint64(b[1:9])
	dim := binary.LittleEndian.Uint32(b[9:13])
	count := binary.LittleEndian.Uint32(b[13:17])
	if dim == 0 || dim > 1<<20 {
		return r, fmt.Errorf("%w: dimension %d", errBadRecord, dim)
	}
	r.dim = int(dim)
	b = b[17:]
	// Each vector needs at least 2+4*dim bytes: bound count before allocating.
	if uint64(count)*(2+4*uint64(dim)) > uint64(len(b)) {
		return r, fmt.Errorf("%w: %d vectors do not fit in %d bytes", errBadRecord, count, len(b))
	}
	r.vectors = make([]api.Vector, count)
	for i := range r.vectors {
		if len(b) < 2 {
			return r, fmt.Errorf("%w: truncated at vector %d", errBadRecord, i)
		}
		l := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if len(b) < l+4*r.dim {
			return r, fmt.Errorf("%w: truncated at vector %d", errBadRecord, i)
		}
		vals := make([]float32, r.dim)
		id := string(b[:l])
		b = b[l:]
		for d := range vals {
			vals[d] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*d:]))
		}
		b = b[4*r.dim:]
		r.vectors[i] = api.Vector{ID: id, Values: vals}
	}
	if len(b) != 0 {
		return r, fmt.Errorf("%w: %d trailing bytes", errBadRecord, len(b))
	}
	return r, nil
}

// validate checks a replayed record against its collection.
func (r insertRecord) validate(dim int) error {
	if r.dim != dim {
		return fmt.Errorf("%w: dimension %d, collection has %d", errBadRecord, r.dim, dim)
	}
	for _, v := range r.vectors {
		if err := api.ValidateVectorID(v.ID); err != nil {
			return fmt.Errorf("%w: %w", errBadRecord, err)
		}
		if err := api.ValidateValues(v.Values, dim); err != nil {
			return fmt.Errorf("%w: %w", errBadRecord, err)
		}
	}
	return nil
}

// Insert adds or replaces vectors. The batch is validated as a whole, then
// written to the WAL (fsynced) and applied; it is acknowledged only after
// both. A non-hot collection is promoted first.
func (s *Store) Insert(ctx context.Context, name string, vectors []api.Vector) (int, error) {
	c, err := s.lookup(name)
	if err != nil {
		return 0, err
	}
	if len(vectors) == 0 {
		return 0, api.Errorf(api.CodeInvalidArgument, "vectors must not be empty")
	}
	if len(vectors) > s.opts.Limits.MaxVectorsPerInsert {
		return 0, api.Errorf(api.CodePayloadTooLarge, "insert of %d vectors exceeds the limit of %d per request", len(vectors), s.opts.Limits.MaxVectorsPerInsert)
	}
	var need int64
	for i, v := range vectors {
		if err := api.ValidateVectorID(v.ID); err != nil {
			return 0, api.Errorf(api.CodeInvalidArgument, "vector %d: %s", i, err.Error())
		}
		if err := api.ValidateValues(v.Values, c.dim); err != nil {
			return 0, api.Errorf(api.CodeInvalidArgument, "vector %d (%q): %s", i, v.ID, err.Error())
		}
		need += vectorBytes(v.ID, c.dim)
	}
	for {
		if err := s.ensureHot(ctx, c); err != nil {
			return 0, err
		}
		// Reserve the worst case (all new ids) before taking any lock:
		// freeing memory may demote other collections.
		if err := s.reserveHot(ctx, need, c); err != nil {
			return 0, err
		}
		c.writeMu.Lock()
		c.mu.RLock()
		tier, deleted, broken := c.tier, c.deleted, c.broken
		c.mu.RUnlock()
		if deleted || tier != api.TierHot || broken != nil {
			c.writeMu.Unlock()
			s.hotBytes.Add(-need)
			if deleted {
				return 0, notFound(name)
			}
			if broken != nil {
				return 0, api.Errorf(api.CodeDataCorrupted, "collection %q: %w", name, broken)
			}
			continue // demoted meanwhile: promote again
		}
		payload := encodeInsert(c.id, c.dim, vectors)
		p, err := s.wal.Submit(payload)
		if err != nil {
			c.writeMu.Unlock()
			s.hotBytes.Add(-need)
			return 0, localError("write-ahead log", err)
		}
		ticket := c.issue()
		c.writeMu.Unlock()
		// Always wait for the fsync: once written, the record will be
		// replayed. Then apply in submission (LSN) order.
		err = p.Wait(context.WithoutCancel(ctx))
		c.awaitTurn(ticket)
		var added int64
		if err == nil {
			c.mu.Lock()
			added = c.apply(vectors)
			c.noteWAL(p.LSN, int64(len(payload)))
			c.hotBytes += added
			c.mu.Unlock()
		}
		c.endTurn()
		if err != nil {
			s.hotBytes.Add(-need)
			return 0, localError("write-ahead log", err)
		}
		s.hotBytes.Add(added - need)
		s.touch(c)
		return len(vectors), nil
	}
}

// searchCheckEvery is how many vectors a search scores between two checks
// of its context: a check costs a few ns, scoring 1024 vectors of
// dimension 128 some tens of µs.
const searchCheckEvery = 1024

// Search returns the exact top-k of query. A non-hot collection is
// promoted first. A search whose ctx ends stops scoring (the context is
// checked every searchCheckEvery vectors) and returns an error wrapping
// ctx.Err().
func (s *Store) Search(ctx context.Context, name string, query []float32, k int) ([]api.Result, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	if err := api.ValidateK(k); err != nil {
		return nil, &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	if err := api.ValidateValues(query, c.dim); err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "query: %s", err.Error())
	}
	sc, err := vecmath.NewScorer(c.metric, query)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidArgument, "query: %s", err.Error())
	}
	for {
		c.mu.RLock()
		if c.deleted {
			c.mu.RUnlock()
			return nil, notFound(name)
		}
		if c.broken != nil {
			c.mu.RUnlock()
			return nil, api.Errorf(api.CodeDataCorrupted, "collection %q: %w", name, c.broken)
		}
		if c.tier != api.TierHot {
			c.mu.RUnlock()
			if err := s.ensureHot(ctx, c); err != nil {
				return nil, err
			}
			continue
		}
		top := vecmath.NewTopK(c.metric, k)
		for i, id := range c.ids {
			if i%searchCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					c.mu.RUnlock()
					s.scored.Add(int64(i))
					return nil, fmt.Errorf("search %q stopped after %d of %d vectors: %w", name, i, len(c.ids), err)
				}
			}
			top.Push(id, sc.ScoreNorm(c.vecs[i*c.dim:(i+1)*c.dim], c.norms[i]))
		}
		s.scored.Add(int64(len(c.ids)))
		c.mu.RUnlock()
		s.touch(c)
		return top.Results(), nil
	}
}

// ensureHot promotes c if it is not hot, waiting for a running
// transition. If a promotion ran while it waited and failed, it answers
// that failure rather than trying again: concurrent requests on a cold
// collection cause one download, not one each.
func (s *Store) ensureHot(ctx context.Context, c *collection) error {
	c.mu.RLock()
	hot := c.tier == api.TierHot
	c.mu.RUnlock()
	if hot {
		return nil
	}
	gen := c.promoteGen.Load()
	if err := acquire(ctx, c, true); err != nil {
		return err
	}
	defer release(c)
	if c.promoteGen.Load() != gen {
		c.mu.RLock()
		err := c.promoteErr
		c.mu.RUnlock()
		if err != nil {
			return err
		}
	}
	return s.promoteRecorded(ctx, c, "access")
}

// promoteRecorded promotes c to hot and records the outcome for waiters;
// the caller holds c's transition slot. A failure that comes from ctx
// ending (the requester's client went away, or its deadline passed) says
// nothing about the collection and is not shared: the requests waiting
// for this promotion try it themselves instead of answering with the
// requester's cancellation.
func (s *Store) promoteRecorded(ctx context.Context, c *collection, reason string) error {
	err := s.transition(ctx, c, api.TierHot, reason)
	shared := err
	if err != nil && ctx.Err() != nil {
		shared = nil
	}
	c.mu.Lock()
	c.promoteErr = shared
	c.mu.Unlock()
	c.promoteGen.Add(1)
	return err
}
