package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/cold"
	"github.com/tierchaos/tierchaos/system/fsutil"
	"github.com/tierchaos/tierchaos/system/manifest"
	"github.com/tierchaos/tierchaos/system/snapshot"
)

// SetTier moves a collection to target. A concurrent transition of the
// same collection makes it fail at once with transition_in_progress.
func (s *Store) SetTier(ctx context.Context, name string, target api.Tier) (api.Collection, error) {
	c, err := s.lookup(name)
	if err != nil {
		return api.Collection{}, err
	}
	if !target.Valid() {
		return api.Collection{}, api.Errorf(api.CodeInvalidArgument, "target must be hot, warm or cold, got %q", target)
	}
	if err := acquire(ctx, c, false); err != nil {
		return api.Collection{}, err
	}
	defer release(c)
	if target == api.TierHot {
		err = s.promoteRecorded(ctx, c, "api")
	} else {
		err = s.transition(ctx, c, target, "api")
	}
	if err != nil {
		return api.Collection{}, err
	}
	return c.view(), nil
}

func (s *Store) coldStore() (*cold.Store, error) {
	if s.opts.Cold == nil {
		return nil, api.Errorf(api.CodeStorageUnavailable, "no object store configured (set TIERD_S3_ENDPOINT)")
	}
	return s.opts.Cold, nil
}

// storageError maps a cold-tier error to an API error.
func storageError(what string, err error) error {
	switch {
	case errors.Is(err, cold.ErrNoBucket):
		return api.Errorf(api.CodeBucketNotFound, "%s: %w", what, err)
	case errors.Is(err, snapshot.ErrCorrupt), errors.Is(err, cold.ErrMissing):
		return api.Errorf(api.CodeDataCorrupted, "%s: %w", what, err)
	default:
		return api.Errorf(api.CodeStorageUnavailable, "%s: %w", what, err)
	}
}

// transition moves c to target; the caller holds c's transition slot.
func (s *Store) transition(ctx context.Context, c *collection, target api.Tier, reason string) (err error) {
	c.mu.RLock()
	from, deleted, broken := c.tier, c.deleted, c.broken
	c.mu.RUnlock()
	if deleted {
		return notFound(c.name)
	}
	if broken != nil {
		return api.Errorf(api.CodeDataCorrupted, "collection %q: %w", c.name, broken)
	}
	if from == target {
		return nil
	}
	start := s.opts.Now()
	defer func() {
		s.metrics.transition(from, target, err, s.opts.Now().Sub(start))
		if err != nil {
			s.log.Warn("tier transition failed; collection keeps its tier", "collection", c.name, "from", from, "to", target, "reason", reason, "err", err)
		} else {
			s.log.Info("tier transition", "collection", c.name, "from", from, "to", target, "reason", reason, "took", s.opts.Now().Sub(start))
		}
	}()
	switch {
	case target == api.TierHot || (target == api.TierWarm && from == api.TierCold):
		return s.promote(ctx, c, from, target)
	case target == api.TierWarm:
		return s.hotToWarm(ctx, c)
	default:
		return s.toCold(ctx, c, from)
	}
}

func localRel(collID uint64, snapID string) string {
	return "local/" + strconv.FormatUint(collID, 10) + "/" + snapID + ".parquet"
}

// writeLocal writes data to the relative path atomically, within the warm quota.
func (s *Store) writeLocal(rel string, data []byte) error {
	s.haltMu.RLock()
	defer s.haltMu.RUnlock()
	if s.halted.Load() {
		return api.Errorf(api.CodeInternal, "write %s: %w", rel, errHalted)
	}
	if err := s.reserveWarm(int64(len(data))); err != nil {
		return err
	}
	path := filepath.Join(s.opts.DataDir, filepath.FromSlash(rel))
	err := fsutil.WriteAtomicFS(s.opts.FS, path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		// A failed folder fsync comes after the rename: the file is there
		// but the write failed, and nothing will refer to it.
		if rerr := s.opts.FS.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			s.log.Warn("local file of a failed write not removed; recovery will remove it", "file", rel, "err", rerr)
		}
		s.warmBytes.Add(-int64(len(data)))
		return localError("write "+rel, err)
	}
	return nil
}

// readLocal reads and verifies a local snapshot.
func (s *Store) readLocal(ref *manifest.SnapshotRef, dim int) ([]string, []float32, error) {
	data, err := s.readLocalBytes(ref)
	if err != nil {
		return nil, nil, err
	}
	return snapshot.DecodeUnverified(ref.File, data, dim)
}

// readLocalBytes reads a local snapshot and checks its size and checksum.
func (s *Store) readLocalBytes(ref *manifest.SnapshotRef) ([]byte, error) {
	data, err := s.opts.FS.ReadFile(filepath.Join(s.opts.DataDir, filepath.FromSlash(ref.File)))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: local file %s is missing", snapshot.ErrCorrupt, ref.File)
		}
		return nil, fmt.Errorf("read %s: %w", ref.File, err)
	}
	if err := snapshot.Verify(ref.File, data, ref.Size, ref.Checksum); err != nil {
		return nil, err
	}
	return data, nil
}

// flipEntry commits a new tier and data for c, checking it is still the
// same incarnation; extra runs inside the same commit.
func (s *Store) flipEntry(c *collection, tier api.Tier, data *manifest.SnapshotRef, covered uint64, extra func(m *manifest.Manifest)) error {
	return s.commit(func(m *manifest.Manifest) error {
		e := m.Collections[c.name]
		if e == nil || e.ID != c.id {
			return notFound(c.name)
		}
		e.Tier, e.CoveredLSN = tier, covered
		if data != nil {
			d := *data
			e.Data = &d
		} else {
			e.Data = nil
		}
		if extra != nil {
			extra(m)
		}
		return nil
	})
}

// hotToWarm writes the hot data as a local Parquet file, flips, drops the
// memory. Inserts wait until the flip; a failure removes the file after
// releasing them.
func (s *Store) hotToWarm(_ context.Context, c *collection) error {
	c.lockWriters()
	locked := true
	unlock := func() {
		if locked {
			c.writeMu.Unlock()
			locked = false
		}
	}
	defer unlock()
	// writeMu excludes every writer, so the data can be read without mu.
	data, info, err := snapshot.EncodeBytes(c.dim, c.ids, c.vecs)
	if err != nil {
		return api.Errorf(api.CodeInternal, "encode snapshot of %q: %w", c.name, err)
	}
	id := s.newID()
	rel := localRel(c.id, id)
	if err := s.writeLocal(rel, data); err != nil {
		return err
	}
	s.hook(HookWarmWritten)
	ref := &manifest.SnapshotRef{ID: id, File: rel, Size: info.Size, Checksum: info.Checksum, Count: info.Count, Created: s.opts.Now().UTC()}
	covered := s.wal.LastLSN()
	if err := s.flipEntry(c, api.TierWarm, ref, covered, nil); err != nil {
		unlock()
		s.removeLocal(rel)
		return err
	}
	s.hook(HookWarmCommitted)
	old := s.flipMemory(c, api.TierWarm, ref, covered, nil, nil)
	unlock()
	if old != nil && old.File != "" && old.File != rel {
		s.removeLocal(old.File)
	}
	return nil
}

// flipMemory makes the in-memory state match a committed flip and returns
// the previous data reference.
func (s *Store) flipMemory(c *collection, tier api.Tier, ref *manifest.SnapshotRef, covered uint64, ids []string, vecs []float32) *manifest.SnapshotRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.data
	if c.tier == api.TierCold && old != nil {
		s.coldBytes.Add(-old.Size)
	}
	if tier == api.TierCold {
		s.coldBytes.Add(ref.Size)
	}
	c.tier, c.data = tier, ref
	if old != nil && old.Key != "" && (ref == nil || cacheKey(ref) != cacheKey(old)) {
		s.pages.drop(cacheKey(old)) // the listing cache follows the data
	}
	if covered != c.covered {
		c.covered, c.lastLSN, c.firstUncovered, c.walBytes = covered, covered, 0, 0
	}
	s.hotBytes.Add(-c.hotBytes)
	c.hotBytes = 0
	if tier == api.TierHot {
		c.setData(ids, vecs)
		c.hotBytes = c.memBytes()
		// The caller reserved exactly this much.
	} else {
		c.dropData()
		if ref != nil {
			c.count = ref.Count
		}
	}
	return old
}

// toCold uploads the collection's Parquet snapshot (encoded from memory,
// or the warm file itself), verifies it, flips the manifest, then deletes
// the old copy. A failure before the flip deletes or aborts the upload and
// leaves the collection in its tier. Inserts wait until the flip (or the
// failure); the cleanup of a failed upload runs after releasing them.
func (s *Store) toCold(ctx context.Context, c *collection, from api.Tier) error {
	cs, err := s.coldStore()
	if err != nil {
		return err
	}
	c.lockWriters()
	locked := true
	unlock := func() {
		if locked {
			c.writeMu.Unlock()
			locked = false
		}
	}
	defer unlock()
	var data []byte
	var info snapshot.Info
	c.mu.RLock()
	old := c.data
	c.mu.RUnlock()
	if from == api.TierHot {
		// The writer lock excludes inserts, so the data can be read without mu.
		data, info, err = snapshot.EncodeBytes(c.dim, c.ids, c.vecs)
		if err != nil {
			return api.Errorf(api.CodeInternal, "encode snapshot of %q: %w", c.name, err)
		}
	} else {
		// Never upload a corrupt warm file.
		data, err = s.readLocalBytes(old)
		if err != nil {
			return localError(fmt.Sprintf("demote %q to cold", c.name), err)
		}
		info = snapshot.Info{Size: old.Size, Checksum: old.Checksum, Count: old.Count, Dimension: c.dim}
	}
	// A fresh id even for the same bytes: every upload gets a key no
	// pending delete or earlier copy can refer to.
	id := s.newID()
	key := cs.DataKey(c.name, id)
	s.hook(HookColdEncoded)
	release, err := s.beginUpload(key)
	if err != nil {
		return err
	}
	defer release()
	// The S3 phase, cleanup included, stays within the S3 deadline.
	sctx, cancel := context.WithTimeout(ctx, cs.Budget(info.Size))
	defer cancel()
	if err := cs.Put(sctx, key, data, info); err != nil {
		unlock()
		s.cleanupObject(key)
		return storageError(fmt.Sprintf("demote %q to cold", c.name), err)
	}
	s.hook(HookColdUploaded)
	if err := cs.Verify(sctx, key, info); err != nil {
		unlock()
		s.cleanupObject(key)
		return storageError(fmt.Sprintf("demote %q to cold: verify %s", c.name, key), err)
	}
	s.hook(HookColdVerified)
	ref := &manifest.SnapshotRef{ID: id, Key: key, Size: info.Size, Checksum: info.Checksum, Count: info.Count, Created: s.opts.Now().UTC()}
	covered := s.wal.LastLSN()
	if err := s.flipEntry(c, api.TierCold, ref, covered, func(m *manifest.Manifest) { dropUpload(m, key) }); err != nil {
		unlock()
		s.cleanupObject(key)
		return err
	}
	s.hook(HookColdCommitted)
	s.flipMemory(c, api.TierCold, ref, covered, nil, nil)
	unlock()
	if old != nil && old.File != "" {
		s.removeLocal(old.File)
	}
	s.hook(HookColdCleaned)
	return nil
}

// promote brings a warm or cold collection to target (hot, or warm from
// cold): fetch and verify the snapshot, write it as a local file (from
// cold), reserve memory (to hot), flip, then delete the cold object.
func (s *Store) promote(ctx context.Context, c *collection, from, target api.Tier) error {
	c.mu.RLock()
	ref := c.data
	c.mu.RUnlock()
	if ref == nil {
		return api.Errorf(api.CodeInternal, "collection %q is %s without data", c.name, from)
	}
	var data []byte
	var err error
	newRef := *ref
	if from == api.TierCold {
		cs, err := s.coldStore()
		if err != nil {
			return err
		}
		data, err = s.readCold(ctx, cs, c.name, ref)
		if err != nil {
			if errors.Is(err, snapshot.ErrCorrupt) {
				s.log.Error("cold snapshot failed verification; not served", "collection", c.name, "key", ref.Key,
					"packed", ref.Packed, "offset", ref.Offset, "err", err)
			}
			return storageError(fmt.Sprintf("promote %q from cold", c.name), err)
		}
		newRef.Key, newRef.File, newRef.Packed, newRef.Offset = "", localRel(c.id, ref.ID), false, 0
	} else {
		data, err = s.readLocalBytes(ref)
		if err != nil {
			s.log.Error("warm snapshot failed verification; not served", "collection", c.name, "file", ref.File, "err", err)
			return localError(fmt.Sprintf("promote %q from warm", c.name), err)
		}
	}
	var ids []string
	var vecs []float32
	var need int64
	if target == api.TierHot {
		name := ref.File
		if from == api.TierCold {
			name = ref.Key
		}
		ids, vecs, err = snapshot.DecodeUnverified(name, data, c.dim)
		if err != nil {
			return localError(fmt.Sprintf("promote %q", c.name), err)
		}
		for _, id := range ids {
			need += vectorBytes(id, c.dim)
		}
		if err := s.reserveHot(ctx, need, c); err != nil {
			return err
		}
	}
	unreserve := func() { s.hotBytes.Add(-need) }
	if from == api.TierCold {
		if err := s.writeLocal(newRef.File, data); err != nil {
			unreserve()
			return err
		}
	}
	s.hook(HookHotLoaded)
	c.lockWriters()
	defer c.writeMu.Unlock()
	var extra func(m *manifest.Manifest)
	if from == api.TierCold {
		extra = func(m *manifest.Manifest) { m.PendingDeletes = append(m.PendingDeletes, ref.Key) }
	}
	if err := s.flipEntry(c, target, &newRef, c.covered, extra); err != nil {
		unreserve()
		if from == api.TierCold {
			s.removeLocal(newRef.File)
		}
		return err
	}
	s.hook(HookHotCommitted)
	// The reservation (need) becomes c.hotBytes in flipMemory.
	s.flipMemory(c, target, &newRef, c.covered, ids, vecs)
	if from == api.TierCold {
		// Committed as a pending delete above: nobody waits for S3 here.
		s.deleteLater([]string{ref.Key})
	}
	return nil
}

// readCold downloads and verifies the cold data ref of collection name:
// the whole object, or, for a member of a pack, only the member's byte
// range, checked against the member's own checksum.
func (s *Store) readCold(ctx context.Context, cs *cold.Store, name string, ref *manifest.SnapshotRef) ([]byte, error) {
	if ref.Packed {
		return cs.ReadMember(ctx, ref.Key, cs.PackMemberKey(name, ref.ID), ref.Offset, ref.Size, ref.Checksum)
	}
	data, err := cs.Download(ctx, ref.Key, ref.Size)
	if err == nil {
		err = snapshot.Verify(ref.Key, data, ref.Size, ref.Checksum)
	}
	return data, err
}

// cacheKey names a cold snapshot in the listing cache: its object key, or
// for a pack member the pack key and the member's offset.
func cacheKey(ref *manifest.SnapshotRef) string {
	if ref.Packed {
		return ref.Key + "@" + strconv.FormatInt(ref.Offset, 10)
	}
	return ref.Key
}

// beginUpload registers an upload to key: in memory (running uploads are
// never swept) and durably in the manifest's uploads in progress, so that
// after a crash the key is known and its object or incomplete multipart
// upload is removed by exact key. The returned release ends the running
// state; the commit that references the key, or cleanupObject, drops it
// from the manifest.
func (s *Store) beginUpload(key string) (release func(), err error) {
	s.inflightMu.Lock()
	s.inflight[key]++
	s.inflightMu.Unlock()
	release = func() {
		s.inflightMu.Lock()
		if s.inflight[key]--; s.inflight[key] <= 0 {
			delete(s.inflight, key)
		}
		s.inflightMu.Unlock()
	}
	if err := s.commit(func(m *manifest.Manifest) error {
		m.Uploads = append(m.Uploads, key)
		return nil
	}); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// dropUpload removes key from the manifest's uploads in progress.
func dropUpload(m *manifest.Manifest, key string) {
	m.Uploads = slices.DeleteFunc(m.Uploads, func(k string) bool { return k == key })
}

// cleanupObject deletes what a failed upload may have left under key and
// drops it from the uploads in progress; if S3 does not answer in time the
// key moves to the manifest's pending deletes for the worker.
func (s *Store) cleanupObject(key string) {
	err := s.opts.Cold.Cleanup(key)
	if err != nil {
		s.log.Warn("cleanup after a failed upload failed; left for the worker", "key", key, "err", err)
	}
	if cerr := s.commit(func(m *manifest.Manifest) error {
		dropUpload(m, key)
		if err != nil {
			m.PendingDeletes = append(m.PendingDeletes, key)
		}
		return nil
	}); cerr != nil {
		// It stays among the uploads in progress: the worker retries it.
		s.log.Warn("manifest: failed upload not recorded; the worker retries it", "key", key, "err", cerr)
	}
}
