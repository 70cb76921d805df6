package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/uploader"
)

// Hook points of a packed demotion (see demotePacked).
const (
	// HookPackUploaded fires when a pack is stored, before it is verified
	// and before any member is flipped.
	HookPackUploaded = "pack.uploaded"
	// HookPackCommitted fires when every member of a pack is cold in the
	// manifest (one commit), before their warm files are removed.
	HookPackCommitted = "pack.committed"
)

// packMember is one collection queued for a packed demotion. From
// queueing to its finish it holds the collection's transition slot and
// writer lock, as a single demotion does.
type packMember struct {
	c     *collection
	old   *manifest.SnapshotRef
	id    string
	p     *uploader.Pending
	loc   uploader.Location
	start time.Time // for the transition metric
}

// packable reports whether a warm collection's demotion to cold may go
// into a pack: packing is on and its snapshot is below the threshold.
func (s *Store) packable(c *collection) bool {
	if s.opts.PackThreshold <= 0 || s.opts.Cold == nil || !s.opts.Cold.BatchConfig().Enabled {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tier == api.TierWarm && c.data != nil && c.data.File != "" && c.data.Size < s.opts.PackThreshold
}

// demotePacked demotes warm collections to cold, packing their snapshots
// into pack objects (at most the batch configuration's members and bytes
// each) instead of one object per collection. Fewer than two candidates
// take the single-object path.
//
// Every pack key is recorded as an upload in progress (in memory and in
// the manifest) before the pack's first request, so neither the orphan
// sweep nor a crash can lose track of it. All members of a pack are
// flipped to cold in one manifest commit that also drops the upload, so
// a pack is either referenced by all its members or by none (and then
// deleted: cleaned up at once after a failure, or swept after a crash).
// A member's failure before the upload keeps only that collection warm.
func (s *Store) demotePacked(ctx context.Context, cands []*collection, cyc *api.WorkerCycle, fail func(string, ...any)) {
	if len(cands) < 2 {
		for _, c := range cands {
			if ok, err := s.tryTransition(ctx, c, api.TierCold); err != nil {
				fail("demote %s to cold: %v", c.name, err)
			} else if ok {
				cyc.DemotedCold = append(cyc.DemotedCold, c.name)
			}
		}
		return
	}
	cs := s.opts.Cold
	var mu sync.Mutex
	running := map[string]func(){} // pack key -> release of its running upload
	batch, err := cs.NewBatch(func(_ context.Context, key string, _ []string) error {
		release, err := s.beginUpload(key)
		if err != nil {
			return err
		}
		mu.Lock()
		running[key] = release
		mu.Unlock()
		return nil
	})
	if err != nil {
		fail("packed demotion: %v", err)
		return
	}
	var members []*packMember
	var total int64
	for _, c := range cands {
		m, err := s.queueMember(ctx, c, batch)
		if err != nil {
			fail("demote %s to cold: %v", c.name, err)
			continue
		}
		if m != nil {
			members = append(members, m)
			total += m.old.Size
		}
	}
	// Close sends what is still queued and waits for every pack (and
	// gives up, cancelling the uploads, at the S3 deadline).
	cctx, cancel := context.WithTimeout(ctx, 2*cs.Budget(total))
	_ = batch.Close(cctx)
	cancel()
	byPack := map[string][]*packMember{}
	for _, m := range members {
		loc, err := m.p.Wait(context.Background()) // resolved: Close waited for every pack
		if err != nil {
			s.finishMember(m, nil, 0, storageError(fmt.Sprintf("demote %q to cold in a pack", m.c.name), err))
			fail("demote %s to cold: %v", m.c.name, err)
			continue
		}
		m.loc = loc
		byPack[loc.PackKey] = append(byPack[loc.PackKey], m)
	}
	mu.Lock()
	keys := make([]string, 0, len(running))
	for k := range running {
		keys = append(keys, k)
	}
	mu.Unlock()
	slices.Sort(keys)
	for _, key := range keys {
		ms := byPack[key]
		if len(ms) == 0 {
			// The pack failed: what it may have stored goes.
			s.cleanupObject(key)
			s.metrics.packsWritten.WithLabelValues("failed").Inc()
		} else if err := s.commitPack(ctx, key, ms, cyc); err != nil {
			fail("pack %s (%d members): %v", key, len(ms), err)
		}
		mu.Lock()
		release := running[key]
		mu.Unlock()
		release()
	}
}

// queueMember takes c's transition slot and writer lock, reads and checks
// its warm file and queues it in batch. It returns nil (and holds
// nothing) when c is busy with another transition or no longer a
// candidate.
func (s *Store) queueMember(ctx context.Context, c *collection, batch *uploader.BatchUploader) (*packMember, error) {
	if acquire(ctx, c, false) != nil {
		return nil, nil
	}
	c.lockWriters()
	c.mu.RLock()
	tier, old, deleted, broken := c.tier, c.data, c.deleted, c.broken
	c.mu.RUnlock()
	unlock := func() {
		c.writeMu.Unlock()
		release(c)
	}
	if deleted || broken != nil || tier != api.TierWarm || old == nil || old.File == "" || old.Size >= s.opts.PackThreshold {
		unlock()
		return nil, nil
	}
	start := s.opts.Now()
	data, err := s.readLocalBytes(old)
	if err != nil {
		err = localError(fmt.Sprintf("demote %q to cold", c.name), err)
		unlock()
		s.metrics.transition(api.TierWarm, api.TierCold, err, s.opts.Now().Sub(start))
		return nil, err
	}
	// A fresh id, as for a single upload: the member key is never reused.
	id := s.newID()
	p, err := batch.Add(s.opts.Cold.PackMemberKey(c.name, id), data)
	if err != nil {
		unlock()
		return nil, storageError(fmt.Sprintf("demote %q to cold in a pack", c.name), err)
	}
	return &packMember{c: c, old: old, id: id, p: p, start: start}, nil
}

// commitPack verifies a stored pack and flips all its members to cold in
// one manifest commit; on failure the pack is cleaned up and every member
// keeps its warm tier.
func (s *Store) commitPack(ctx context.Context, key string, ms []*packMember, cyc *api.WorkerCycle) error {
	cs := s.opts.Cold
	var size int64
	for _, m := range ms {
		size = max(size, m.loc.Offset+m.loc.Length)
	}
	s.hook(HookPackUploaded)
	abort := func(err error) error {
		for _, m := range ms {
			s.finishMember(m, nil, 0, err)
		}
		s.cleanupObject(key)
		s.metrics.packsWritten.WithLabelValues("failed").Inc()
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, cs.Budget(0))
	err := cs.VerifyPack(sctx, key, size, len(ms))
	cancel()
	if err != nil {
		return abort(storageError("verify pack "+key, err))
	}
	now := s.opts.Now().UTC()
	refs := make([]*manifest.SnapshotRef, len(ms))
	for i, m := range ms {
		refs[i] = &manifest.SnapshotRef{ID: m.id, Key: key, Packed: true, Offset: m.loc.Offset, Size: m.loc.Length,
			Checksum: m.old.Checksum, Count: m.old.Count, Created: now}
	}
	covered := s.wal.LastLSN()
	if err := s.commit(func(man *manifest.Manifest) error {
		for i, m := range ms {
			e := man.Collections[m.c.name]
			if e == nil || e.ID != m.c.id {
				return notFound(m.c.name)
			}
			d := *refs[i]
			e.Tier, e.CoveredLSN, e.Data = api.TierCold, covered, &d
		}
		dropUpload(man, key)
		return nil
	}); err != nil {
		return abort(err)
	}
	s.hook(HookPackCommitted)
	for i, m := range ms {
		s.finishMember(m, refs[i], covered, nil)
		cyc.DemotedCold = append(cyc.DemotedCold, m.c.name)
	}
	s.metrics.packsWritten.WithLabelValues("ok").Inc()
	s.metrics.packMembers.Observe(float64(len(ms)))
	s.log.Info("pack written", "pack", key, "members", len(ms), "bytes", size)
	return nil
}

// finishMember ends a member's packed demotion: with ref (committed) it
// flips the collection's memory to cold and removes its warm file; with
// err it leaves the collection warm. Either way it releases the writer
// lock and then the transition slot. The warm file goes before the slot:
// a collection's folder is changed only by the holder of its slot, and
// a promotion waiting for the slot writes its new file into that folder,
// which removeLocal deletes with its last file.
func (s *Store) finishMember(m *packMember, ref *manifest.SnapshotRef, covered uint64, err error) {
	c := m.c
	if ref != nil {
		s.flipMemory(c, api.TierCold, ref, covered, nil, nil)
	}
	c.writeMu.Unlock()
	if ref != nil && m.old.File != "" {
		s.removeLocal(m.old.File)
	}
	release(c)
	took := s.opts.Now().Sub(m.start)
	s.metrics.transition(api.TierWarm, api.TierCold, err, took)
	if err != nil {
		s.log.Warn("tier transition failed; collection keeps its tier", "collection", c.name, "from", api.TierWarm, "to", api.TierCold, "reason", "idle", "packed", true, "err", err)
	} else {
		s.log.Info("tier transition", "collection", c.name, "from", api.TierWarm, "to", api.TierCold, "reason", "idle", "pack", ref.Key, "took", took)
	}
}
