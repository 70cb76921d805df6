package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/snapshot"
	"github.com/tierchaos/tierchaos/uploader"
)

// MaintainOptions are the idle times of one maintenance cycle (0: never).
type MaintainOptions struct {
	HotIdle  time.Duration
	WarmIdle time.Duration
}

// Maintain runs one background cycle: demote idle collections (hot→warm,
// warm→cold), checkpoint hot collections with a long WAL tail, drop WAL
// segments no collection needs, retry pending object deletes, and sweep
// orphaned objects and incomplete uploads. Collections busy with a
// transition are skipped. Errors are reported; the cycle goes on.
func (s *Store) Maintain(ctx context.Context, o MaintainOptions, cyc *api.WorkerCycle) {
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		cyc.Errors = append(cyc.Errors, msg)
		s.log.Warn("worker: " + msg)
	}
	now := s.opts.Now()
	var packed []*collection
	for _, c := range s.all() {
		if ctx.Err() != nil {
			return
		}
		idle := now.Sub(time.Unix(0, c.access.Load()))
		c.mu.RLock()
		tier := c.tier
		c.mu.RUnlock()
		if tier == api.TierHot && o.HotIdle > 0 && idle >= o.HotIdle {
			if ok, err := s.tryTransition(ctx, c, api.TierWarm); err != nil {
				fail("demote %s to warm: %v", c.name, err)
			} else if ok {
				cyc.DemotedWarm = append(cyc.DemotedWarm, c.name)
				tier = api.TierWarm
			}
		}
		if tier == api.TierWarm && o.WarmIdle > 0 && idle >= o.WarmIdle && s.opts.Cold != nil {
			if s.packable(c) {
				packed = append(packed, c) // demoted together below
				continue
			}
			if ok, err := s.tryTransition(ctx, c, api.TierCold); err != nil {
				fail("demote %s to cold: %v", c.name, err)
			} else if ok {
				cyc.DemotedCold = append(cyc.DemotedCold, c.name)
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	s.demotePacked(ctx, packed, cyc, fail)
	if s.opts.CheckpointBytes > 0 {
		for _, c := range s.all() {
			c.mu.RLock()
			due := c.tier == api.TierHot && c.walBytes > s.opts.CheckpointBytes && c.broken == nil
			c.mu.RUnlock()
			if !due {
				continue
			}
			if ok, err := s.checkpoint(c); err != nil {
				fail("checkpoint %s: %v", c.name, err)
			} else if ok {
				cyc.Checkpointed = append(cyc.Checkpointed, c.name)
			}
		}
	}
	low := s.walLowWater()
	if low > s.wal.DurableLSN() {
		// Every record is covered: start a new segment so the current one can go.
		if err := s.wal.Rotate(); err != nil {
			fail("rotate WAL: %v", err)
		}
	}
	n, err := s.wal.DropBefore(low)
	cyc.WALSegmentsDropped = n
	if err != nil {
		fail("drop WAL segments: %v", err)
	}
	if s.opts.Cold == nil {
		return
	}
	// Failures of this cycle's deletes only: keys another request added
	// meanwhile are that request's to delete.
	if failed := s.RetryDeletes(ctx); failed > 0 {
		fail("%d object deletes failed; kept pending", failed)
	}
	removed, err := s.SweepOrphans(ctx)
	cyc.OrphansDeleted = append(cyc.OrphansDeleted, removed...)
	if err != nil {
		fail("orphan sweep: %v", err)
	}
}

// tryTransition runs a transition unless one is already running.
func (s *Store) tryTransition(ctx context.Context, c *collection, target api.Tier) (bool, error) {
	if acquire(ctx, c, false) != nil {
		return false, nil
	}
	defer release(c)
	return true, s.transition(ctx, c, target, "idle")
}

// walLowWater returns the first LSN some hot collection still needs from the WAL.
func (s *Store) walLowWater() uint64 {
	low := s.wal.LastLSN() + 1
	for _, c := range s.all() {
		c.mu.RLock()
		if f := c.firstUncovered; f > 0 && f < low {
			low = f
		}
		c.mu.RUnlock()
	}
	return low
}

// checkpoint writes a hot collection as a local Parquet file so that its
// WAL records can be dropped; the collection stays hot.
func (s *Store) checkpoint(c *collection) (bool, error) {
	if acquire(context.Background(), c, false) != nil {
		return false, nil
	}
	defer release(c)
	c.lockWriters()
	defer c.writeMu.Unlock()
	c.mu.RLock()
	ok := c.tier == api.TierHot && !c.deleted
	old := c.data
	c.mu.RUnlock()
	if !ok {
		return false, nil
	}
	data, info, err := snapshot.EncodeBytes(c.dim, c.ids, c.vecs)
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	id := s.newID()
	ref := &manifest.SnapshotRef{ID: id, File: localRel(c.id, id), Size: info.Size, Checksum: info.Checksum, Count: info.Count, Created: s.opts.Now().UTC()}
	if err := s.writeLocal(ref.File, data); err != nil {
		return false, err
	}
	covered := s.wal.LastLSN()
	if err := s.flipEntry(c, api.TierHot, ref, covered, nil); err != nil {
		s.removeLocal(ref.File)
		return false, err
	}
	c.mu.Lock()
	c.data = ref
	c.covered, c.lastLSN, c.firstUncovered, c.walBytes = covered, covered, 0, 0
	c.mu.Unlock()
	if old != nil && old.File != "" {
		s.removeLocal(old.File)
	}
	return true, nil
}

// SweepOrphans deletes objects under the collections prefix that the
// manifest does not refer to and no running upload owns, and aborts
// incomplete multipart uploads no running upload owns. It returns the keys
// removed (uploads as "key (upload id)").
func (s *Store) SweepOrphans(ctx context.Context) ([]string, error) {
	cs, err := s.coldStore()
	if err != nil {
		return nil, err
	}
	// Collections' objects, and the packs that hold members of several.
	roots := []string{cs.RootPrefix(), cs.PackPrefix()}
	var objs []uploader.ObjectInfo
	var ups []uploader.MultipartUpload
	for _, root := range roots {
		o, err := cs.List(ctx, root)
		if err != nil {
			return nil, err
		}
		u, err := cs.ListIncomplete(ctx, root)
		if err != nil {
			return nil, err
		}
		objs, ups = append(objs, o...), append(ups, u...)
	}
	under := func(key string) bool {
		return strings.HasPrefix(key, roots[0]) || strings.HasPrefix(key, roots[1])
	}
	// What to keep is read after listing, running uploads first, then the
	// manifest's references. An upload is in flight from before its first
	// request until after its manifest commit, so a listed key whose upload
	// is not in flight at the first read has either committed already
	// (referenced at the second read) or is an orphan. Read the other way
	// round, an upload committing between the reads is in neither set.
	s.inflightMu.Lock()
	busy := make(map[string]bool, len(s.inflight))
	for k := range s.inflight {
		busy[k] = true
	}
	s.inflightMu.Unlock()
	s.hook(HookSweepBetweenReads)
	s.manMu.Lock()
	refs := s.man.ReferencedKeys()
	s.manMu.Unlock()
	var removed []string
	var errs []string
	for _, o := range objs {
		if refs[o.Key] || busy[o.Key] || !under(o.Key) {
			continue
		}
		if err := cs.Delete(ctx, o.Key); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		removed = append(removed, o.Key)
	}
	for _, u := range ups {
		if busy[u.Key] || !under(u.Key) {
			continue
		}
		if err := cs.Abort(ctx, u.Key, u.UploadID); err != nil {
			if errors.Is(err, cold.ErrMissing) {
				continue // completed or aborted by its owner since the listing
			}
			errs = append(errs, err.Error())
			continue
		}
		removed = append(removed, u.Key+" ("+u.UploadID+")")
	}
	if len(removed) > 0 {
		s.log.Warn("orphan sweep removed objects", "keys", removed)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("%d orphans not removed: %s", len(errs), strings.Join(errs, "; "))
	}
	return removed, nil
}
