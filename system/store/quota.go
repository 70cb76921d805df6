package store

import (
	"context"
	"slices"

	"github.com/tierchaos/tierchaos/system/api"
)

// reserveHot adds n bytes to the hot usage if the hot quota allows it,
// first demoting least recently used hot collections (other than self) to
// warm when it does not. The caller must not hold any collection lock
// other than self's transition slot.
func (s *Store) reserveHot(ctx context.Context, n int64, self *collection) error {
	q := s.opts.Quotas.HotBytes
	if q <= 0 {
		s.hotBytes.Add(n)
		return nil
	}
	for attempt := 0; ; attempt++ {
		cur := s.hotBytes.Load()
		if cur+n <= q {
			if s.hotBytes.CompareAndSwap(cur, cur+n) {
				return nil
			}
			continue
		}
		if n > q || attempt >= 4 || s.evictLRU(ctx, cur+n-q, self) == 0 {
			s.metrics.quotaRejections.WithLabelValues("hot_bytes").Inc()
			return api.Errorf(api.CodeQuotaExceeded,
				"quota hot_bytes exceeded: %d of %d bytes in use, %d more needed, and no idle collection could be demoted",
				cur, q, n)
		}
	}
}

// evictLRU demotes hot collections to warm, least recently used first,
// until at least need bytes are freed; it skips self and collections
// busy with a transition. It returns the bytes freed.
func (s *Store) evictLRU(ctx context.Context, need int64, self *collection) int64 {
	var hot []*collection
	for _, c := range s.all() {
		c.mu.RLock()
		ok := c != self && c.tier == api.TierHot && !c.deleted && c.broken == nil && c.hotBytes > 0
		c.mu.RUnlock()
		if ok {
			hot = append(hot, c)
		}
	}
	slices.SortFunc(hot, func(a, b *collection) int {
		x, y := a.access.Load(), b.access.Load()
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	var freed int64
	for _, c := range hot {
		if freed >= need {
			break
		}
		if err := acquire(ctx, c, false); err != nil {
			continue
		}
		c.mu.RLock()
		b := c.hotBytes
		c.mu.RUnlock()
		err := s.transition(ctx, c, api.TierWarm, "memory pressure")
		release(c)
		if err != nil {
			continue
		}
		s.metrics.autoDemotions.Inc()
		s.log.Info("auto-demoted under memory pressure", "collection", c.name, "freed_bytes", b)
		freed += b
	}
	return freed
}

// reserveWarm adds n bytes to the local storage usage if the warm quota allows.
func (s *Store) reserveWarm(n int64) error {
	q := s.opts.Quotas.WarmBytes
	for {
		cur := s.warmBytes.Load()
		if q > 0 && cur+n > q {
			s.metrics.quotaRejections.WithLabelValues("warm_bytes").Inc()
			return api.Errorf(api.CodeQuotaExceeded, "quota warm_bytes exceeded: %d of %d bytes in use, %d more needed", cur, q, n)
		}
		if s.warmBytes.CompareAndSwap(cur, cur+n) {
			return nil
		}
	}
}
