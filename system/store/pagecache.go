package store

import (
	"container/list"
	"sync"
)

// DefaultColdPageCacheBytes is the default bound of the cold page cache.
const DefaultColdPageCacheBytes = 64 << 20

// pageCache keeps the verified, decoded content of recently listed cold
// objects, so that paging through a cold collection downloads its object
// once rather than once per page.
//
// Why a cache rather than ranged reads of the Parquet object: a page is
// the limit smallest ids after the cursor, and ids are not sorted in the
// object, so every page needs the whole id column anyway; and an object is
// trusted only after its size and whole-object xxh3 match the manifest
// (the check a promotion makes), which ranged reads of parts of it cannot
// do. Entries are keyed by object key and checked against the manifest's
// checksum (a key is never reused: every upload gets a fresh id, so a hit
// is always the object the collection refers to now), bounded in bytes
// with least-recently-used eviction (an object larger than the bound is
// not kept and each page downloads it), and dropped when the collection's
// data leaves the object (a transition or restore) or the collection is
// deleted.
type pageCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // of *pageEntry, most recently used first
	byKey map[string]*list.Element
}

type pageEntry struct {
	key, checksum string
	ids           []string
	vecs          []float32
	bytes         int64
}

// newPageCache returns a cache of at most max bytes (max <= 0: disabled).
func newPageCache(max int64) *pageCache {
	return &pageCache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the content of key if cached with checksum. The slices are
// shared: callers must not modify them.
func (p *pageCache) get(key, checksum string) ([]string, []float32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	el, ok := p.byKey[key]
	if !ok {
		return nil, nil, false
	}
	e := el.Value.(*pageEntry)
	if e.checksum != checksum {
		p.remove(el)
		return nil, nil, false
	}
	p.order.MoveToFront(el)
	return e.ids, e.vecs, true
}

// put caches the content of key, evicting the least recently used entries
// beyond the bound.
func (p *pageCache) put(key, checksum string, ids []string, vecs []float32) {
	size := int64(4 * len(vecs))
	for _, id := range ids {
		size += int64(len(id)) + 16
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if size > p.max {
		return
	}
	if el, ok := p.byKey[key]; ok {
		p.remove(el)
	}
	p.byKey[key] = p.order.PushFront(&pageEntry{key: key, checksum: checksum, ids: ids, vecs: vecs, bytes: size})
	p.size += size
	for p.size > p.max {
		p.remove(p.order.Back())
	}
}

// drop forgets key.
func (p *pageCache) drop(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.byKey[key]; ok {
		p.remove(el)
	}
}

// remove unlinks el; p.mu is held.
func (p *pageCache) remove(el *list.Element) {
	e := p.order.Remove(el).(*pageEntry)
	delete(p.byKey, e.key)
	p.size -= e.bytes
}
