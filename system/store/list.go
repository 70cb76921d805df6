package store

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/snapshot"
)

// listAttempts bounds how often ListVectors re-reads a collection whose
// data a concurrent transition replaced while it was being read.
const listAttempts = 5

// ListVectors returns up to limit vectors of the collection with ids
// greater than after (byte-wise), ids ascending, values exactly as stored.
// It reads the collection in its current tier and never changes it: hot
// from memory, warm from its verified local file, cold from its verified
// object (downloaded once and kept in a bounded cache for the next pages,
// see pageCache). It takes no transition slot, so it
// neither waits for nor blocks transitions; if one replaces the data being
// read, the page is read again from the new state. Listing is not an
// access: it does not delay idle demotion.
func (s *Store) ListVectors(ctx context.Context, name, after string, limit int) (api.VectorPage, error) {
	c, err := s.lookup(name)
	if err != nil {
		return api.VectorPage{}, err
	}
	if err := api.ValidateCursor(after); err != nil {
		return api.VectorPage{}, &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	if err := api.ValidateListLimit(limit); err != nil {
		return api.VectorPage{}, &api.Error{Code: api.CodeInvalidArgument, Message: err.Error()}
	}
	for attempt := 1; ; attempt++ {
		c.mu.RLock()
		deleted, broken, tier, ref := c.deleted, c.broken, c.tier, c.data
		if deleted {
			c.mu.RUnlock()
			return api.VectorPage{}, notFound(name)
		}
		if broken != nil {
			c.mu.RUnlock()
			return api.VectorPage{}, api.Errorf(api.CodeDataCorrupted, "collection %q: %w", name, broken)
		}
		if tier == api.TierHot {
			// Values are replaced in place by inserts: copy them under mu.
			page := pageOf(c.ids, c.vecs, c.dim, after, limit, true)
			c.mu.RUnlock()
			return page, nil
		}
		c.mu.RUnlock()
		if ref == nil {
			return api.VectorPage{}, api.Errorf(api.CodeInternal, "collection %q is %s without data", name, tier)
		}
		ids, vecs, err := s.readData(ctx, c, tier, ref)
		if err == nil {
			// Cold content is shared with the page cache: copy the values.
			return pageOf(ids, vecs, c.dim, after, limit, tier == api.TierCold), nil
		}
		c.mu.RLock()
		replaced := c.deleted || c.tier != tier || c.data != ref
		c.mu.RUnlock()
		if !replaced || attempt >= listAttempts {
			return api.VectorPage{}, err
		}
		// A transition replaced (and may have removed) what was read: read the new state.
	}
}

// readData reads and verifies a warm collection's file or a cold
// collection's object and decodes it; cold content comes from the page
// cache when there and is shared with it (read only).
func (s *Store) readData(ctx context.Context, c *collection, tier api.Tier, ref *manifest.SnapshotRef) ([]string, []float32, error) {
	if tier == api.TierWarm {
		ids, vecs, err := s.readLocal(ref, c.dim)
		if err != nil {
			return nil, nil, localError(fmt.Sprintf("read %q", c.name), err)
		}
		return ids, vecs, nil
	}
	if ids, vecs, ok := s.pages.get(cacheKey(ref), ref.Checksum); ok {
		return ids, vecs, nil
	}
	cs, err := s.coldStore()
	if err != nil {
		return nil, nil, err
	}
	data, err := s.readCold(ctx, cs, c.name, ref)
	var ids []string
	var vecs []float32
	if err == nil {
		ids, vecs, err = snapshot.DecodeUnverified(ref.Key, data, c.dim)
	}
	if err != nil {
		return nil, nil, storageError(fmt.Sprintf("read %q from cold", c.name), err)
	}
	s.pages.put(cacheKey(ref), ref.Checksum, ids, vecs)
	return ids, vecs, nil
}

// pageOf selects the limit smallest ids greater than after, in ascending
// order, with their values (copied if copyValues, else sub-slices of vecs).
func pageOf(ids []string, vecs []float32, dim int, after string, limit int, copyValues bool) api.VectorPage {
	// A max-heap of the limit smallest candidates seen so far: O(n log limit).
	h := &idHeap{ids: ids}
	more := false
	for i, id := range ids {
		if id <= after {
			continue
		}
		if len(h.idx) < limit {
			heap.Push(h, i)
			continue
		}
		more = true
		if id < ids[h.idx[0]] {
			h.idx[0] = i
			heap.Fix(h, 0)
		}
	}
	sel := h.idx
	slices.SortFunc(sel, func(a, b int) int { return strings.Compare(ids[a], ids[b]) })
	page := api.VectorPage{Vectors: make([]api.Vector, len(sel))}
	for j, i := range sel {
		v := vecs[i*dim : (i+1)*dim : (i+1)*dim]
		if copyValues {
			v = slices.Clone(v)
		}
		page.Vectors[j] = api.Vector{ID: ids[i], Values: v}
	}
	if more {
		page.Next = page.Vectors[len(sel)-1].ID
	}
	return page
}

// idHeap is a max-heap of indexes into ids, ordered by id.
type idHeap struct {
	ids []string
	idx []int
}

func (h *idHeap) Len() int           { return len(h.idx) }
func (h *idHeap) Less(a, b int) bool { return h.ids[h.idx[a]] > h.ids[h.idx[b]] }
func (h *idHeap) Swap(a, b int)      { h.idx[a], h.idx[b] = h.idx[b], h.idx[a] }
func (h *idHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *idHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}
