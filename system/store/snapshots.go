package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/snapshot"
)

func snapshotView(name string, r manifest.SnapshotRef) api.Snapshot {
	return api.Snapshot{ID: r.ID, Collection: name, Vectors: r.Count, Size: r.Size, Checksum: r.Checksum, Object: r.Key, Created: r.Created}
}

// CreateSnapshot stores the collection's current content as a Parquet
// object under {prefix}collections/{name}/snapshots/ and records it in the
// manifest. It waits for a running transition; the collection keeps its tier.
func (s *Store) CreateSnapshot(ctx context.Context, name string) (api.Snapshot, error) {
	c, err := s.lookup(name)
	if err != nil {
		return api.Snapshot{}, err
	}
	cs, err := s.coldStore()
	if err != nil {
		return api.Snapshot{}, err
	}
	if err := acquire(ctx, c, true); err != nil {
		return api.Snapshot{}, err
	}
	defer release(c)
	// The transition slot keeps the tier and data reference still; the
	// write lock is held only while a hot collection's content is encoded,
	// so inserts never wait for the upload (a slow or unreachable S3 must
	// not stall the hot path).
	c.lockWriters()
	c.mu.RLock()
	tier, ref, deleted, broken := c.tier, c.data, c.deleted, c.broken
	c.mu.RUnlock()
	if deleted {
		c.writeMu.Unlock()
		return api.Snapshot{}, notFound(name)
	}
	if broken != nil {
		c.writeMu.Unlock()
		return api.Snapshot{}, api.Errorf(api.CodeDataCorrupted, "collection %q: %w", name, broken)
	}
	var data []byte
	var info snapshot.Info
	if tier == api.TierHot {
		data, info, err = snapshot.EncodeBytes(c.dim, c.ids, c.vecs)
	}
	c.writeMu.Unlock()
	switch tier {
	case api.TierHot:
		if err != nil {
			return api.Snapshot{}, api.Errorf(api.CodeInternal, "encode snapshot of %q: %w", name, err)
		}
	case api.TierWarm:
		if data, err = s.readLocalBytes(ref); err != nil {
			return api.Snapshot{}, localError("snapshot "+name, err)
		}
		info = snapshot.Info{Size: ref.Size, Checksum: ref.Checksum, Count: ref.Count, Dimension: c.dim}
	case api.TierCold:
		data, err = s.readCold(ctx, cs, name, ref)
		if err != nil {
			return api.Snapshot{}, storageError("snapshot "+name, err)
		}
		info = snapshot.Info{Size: ref.Size, Checksum: ref.Checksum, Count: ref.Count, Dimension: c.dim}
	}
	id := s.newID()
	key := cs.SnapshotKey(name, id)
	release, err := s.beginUpload(key)
	if err != nil {
		return api.Snapshot{}, err
	}
	defer release()
	sctx, cancel := context.WithTimeout(ctx, cs.Budget(info.Size))
	defer cancel()
	if err := cs.Upload(sctx, key, data, info); err != nil {
		s.cleanupObject(key)
		return api.Snapshot{}, storageError("snapshot "+name, err)
	}
	s.hook(HookSnapshotUploaded)
	sn := manifest.SnapshotRef{ID: id, Key: key, Size: info.Size, Checksum: info.Checksum, Count: info.Count, Created: s.opts.Now().UTC()}
	if err := s.commit(func(m *manifest.Manifest) error {
		e := m.Collections[name]
		if e == nil || e.ID != c.id {
			return notFound(name)
		}
		e.Snapshots = append(e.Snapshots, sn)
		dropUpload(m, key)
		return nil
	}); err != nil {
		s.cleanupObject(key)
		return api.Snapshot{}, err
	}
	c.mu.Lock()
	c.snapshots = append(c.snapshots, sn)
	c.mu.Unlock()
	s.coldBytes.Add(sn.Size)
	return snapshotView(name, sn), nil
}

// ListSnapshots returns a collection's snapshots, oldest first.
func (s *Store) ListSnapshots(_ context.Context, name string) ([]api.Snapshot, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]api.Snapshot, 0, len(c.snapshots))
	for _, r := range c.snapshots {
		out = append(out, snapshotView(name, r))
	}
	return out, nil
}

// Restore replaces the collection's content with exactly the snapshot's:
// download and verify, write a local copy, flip the collection to hot with
// that content (inserts acknowledged before are superseded), then delete
// the previous data. It waits for a running transition.
func (s *Store) Restore(ctx context.Context, name, snapshotID string) (api.Collection, error) {
	c, err := s.lookup(name)
	if err != nil {
		return api.Collection{}, err
	}
	if snapshotID == "" {
		return api.Collection{}, api.Errorf(api.CodeInvalidArgument, "snapshot id must not be empty")
	}
	cs, err := s.coldStore()
	if err != nil {
		return api.Collection{}, err
	}
	if err := acquire(ctx, c, true); err != nil {
		return api.Collection{}, err
	}
	defer release(c)
	c.mu.RLock()
	deleted := c.deleted
	idx := slices.IndexFunc(c.snapshots, func(r manifest.SnapshotRef) bool { return r.ID == snapshotID })
	var sn manifest.SnapshotRef
	if idx >= 0 {
		sn = c.snapshots[idx]
	}
	old, oldTier := c.data, c.tier
	c.mu.RUnlock()
	if deleted {
		return api.Collection{}, notFound(name)
	}
	if idx < 0 {
		return api.Collection{}, api.Errorf(api.CodeNotFound, "collection %q has no snapshot %q", name, snapshotID)
	}
	data, err := cs.Download(ctx, sn.Key, sn.Size)
	if err == nil {
		err = snapshot.Verify(sn.Key, data, sn.Size, sn.Checksum)
	}
	if err != nil {
		return api.Collection{}, storageError(fmt.Sprintf("restore %q from %s", name, snapshotID), err)
	}
	ids, vecs, err := snapshot.DecodeUnverified(sn.Key, data, c.dim)
	if err != nil {
		return api.Collection{}, storageError(fmt.Sprintf("restore %q from %s", name, snapshotID), err)
	}
	var need int64
	for _, id := range ids {
		need += vectorBytes(id, c.dim)
	}
	if err := s.reserveHot(ctx, need, c); err != nil {
		return api.Collection{}, err
	}
	localID := s.newID()
	ref := &manifest.SnapshotRef{ID: localID, File: localRel(c.id, localID), Size: sn.Size, Checksum: sn.Checksum, Count: sn.Count, Created: s.opts.Now().UTC()}
	if err := s.writeLocal(ref.File, data); err != nil {
		s.hotBytes.Add(-need)
		return api.Collection{}, err
	}
	c.lockWriters()
	defer c.writeMu.Unlock()
	// Every WAL record of this collection so far is superseded.
	covered := s.wal.LastLSN()
	var extra func(m *manifest.Manifest)
	if oldTier == api.TierCold && old != nil {
		extra = func(m *manifest.Manifest) { m.PendingDeletes = append(m.PendingDeletes, old.Key) }
	}
	if err := s.flipEntry(c, api.TierHot, ref, covered, extra); err != nil {
		s.hotBytes.Add(-need)
		s.removeLocal(ref.File)
		return api.Collection{}, err
	}
	s.flipMemory(c, api.TierHot, ref, covered, ids, vecs)
	if old != nil && old.File != "" {
		s.removeLocal(old.File)
	}
	if oldTier == api.TierCold && old != nil {
		s.deleteObjects(ctx, []string{old.Key})
	}
	s.touch(c)
	return c.view(), nil
}
