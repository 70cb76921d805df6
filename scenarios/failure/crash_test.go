//go:build e2e

package failure

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// killWhileHeld starts the transition of col to target, waits until the
// rule of hold (a delay on the step to kill at, far longer than any case,
// so that only its client leaving ends it) holds its request and state(),
// if given, has checked what MinIO and tierd show at that point, then
// lifts the rule (the held request stays held) and kills tierd with kill,
// which starts it again on the same data.
func killWhileHeld(ctx context.Context, t *testing.T, tc *tierd.Case, col *fixture.Collection, target api.Tier, hold fault.S3, kill fault.Process, state func()) {
	t.Helper()
	rule := stack.InjectS3(ctx, t, hold)
	res := goSetTier(ctx, tc.Client, col.Name, target)
	waitRule(ctx, t, rule.ID, "the request to kill at is held", func(s s3fault.RuleStatus) bool { return s.Fired > 0 })
	// Searches of a hot collection are served from memory while its
	// transition is held (those of a warm or cold one wait for it).
	if coll, err := stack.Tierd.GetCollection(ctx, col.Name); err == nil && coll.Tier == api.TierHot {
		fixture.RequireExactSearch(ctx, t, tc.Client, tc.Rand, col, 3, topK)
	}
	if state != nil {
		state()
	}
	// The kill must come while the transition is still held: tierd gives
	// up on its own after its S3 deadline (4 s for a small upload).
	select {
	case r := <-res:
		require.FailNow(t, "the transition ended before the kill", "after %s: %v", r.took, r.err)
	default:
	}
	// Lifted first, so that the restarted tierd's requests pass; the held
	// request stays held until the kill ends its client.
	require.NoError(t, rule.Remove(ctx))
	start := time.Now()
	stack.Inject(ctx, t, kill)
	r := await(ctx, t, res, "the killed transition's answer")
	require.Error(t, r.err, "the transition was killed before it answered")
	t.Logf("%s at %s; restarted and ready in %s", kill, hold, time.Since(start).Round(time.Millisecond))
}

// afterRestart requires the collection in tier with every acknowledged
// vector, exact searches, MinIO settled to want objects, and a working
// round trip to cold and back.
func afterRestart(ctx context.Context, t *testing.T, tc *tierd.Case, col *fixture.Collection, tier api.Tier, want int, keys ...string) {
	t.Helper()
	fixture.RequireTier(ctx, t, tc.Client, col, tier)
	fixture.RequireExactSearch(ctx, t, tc.Client, tc.Rand, col, 5, topK)
	eventuallyBucket(ctx, t, col.Name, want, keys...)
	demote(ctx, t, tc.Client, col.Name)
	requireColdObject(ctx, t, col.Name)
	promoteAndReadBack(ctx, t, tc, col, 5, "promotion after the restart")
}

// killDuringUpload is scenario 14, killed during the upload (hold on
// CompleteMultipartUpload): every part is in MinIO, the multipart upload
// is not completed. reveal makes tierd name the upload's key.
func killDuringUpload(reveal, hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col := createBig(ctx, t, tc.Client, tc.Rand) // acknowledged, in the WAL only
		uploadKey := revealUploadKey(ctx, t, reveal, col.Name)
		var key string
		killWhileHeld(ctx, t, tc, col, api.TierCold, hold, kill, func() {
			key = uploadKey()
			require.Len(t, uploadsOf(ctx, t, col.Name, key), 1, "an incomplete multipart upload of %s at the kill", key)
			t.Logf("MinIO lists %d incomplete upload(s) of the collection (whole bucket + exact key), %d by the collection's prefix",
				len(uploadsOf(ctx, t, col.Name, key)), len(fixture.IncompleteUploads(ctx, t, stack.S3, tierd.Bucket, "", col.Name)))
			require.Empty(t, objects(ctx, t, col.Name), "no complete object at the kill")
		})
		afterRestart(ctx, t, tc, col, api.TierHot, 0, key)
	}
}

// killDuringPutFromWarm is scenario 14, killed during the single PUT of a
// warm collection's file (hold): the warm copy must survive as the
// collection's only data.
func killDuringPutFromWarm(hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col := fixture.Create(ctx, t, tc.Client, tc.Rand, vectors, dim, api.MetricDot)
		_, err := tc.Client.SetTier(ctx, col.Name, api.TierWarm)
		require.NoError(t, err)
		killWhileHeld(ctx, t, tc, col, api.TierCold, hold, kill, func() {
			require.Empty(t, objects(ctx, t, col.Name), "nothing stored at the kill")
		})
		afterRestart(ctx, t, tc, col, api.TierWarm, 0)
	}
}

// killBeforeFlip is scenario 14, killed after the upload and before the
// manifest flip (hold on the verifying HEAD): the object is complete in
// MinIO, and no manifest refers to it.
func killBeforeFlip(hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col := fixture.Create(ctx, t, tc.Client, tc.Rand, vectors, dim, api.MetricCosine)
		killWhileHeld(ctx, t, tc, col, api.TierCold, hold, kill, func() {
			require.Len(t, objects(ctx, t, col.Name), 1, "the uploaded object is complete at the kill")
			coll, err := stack.Tierd.GetCollection(ctx, col.Name)
			require.NoError(t, err)
			require.Equal(t, api.TierHot, coll.Tier, "not flipped at the kill")
		})
		afterRestart(ctx, t, tc, col, api.TierHot, 0)
	}
}

// killAfterFlip is scenario 14, killed after a promotion's manifest flip
// and before the old copy (the cold object) is deleted (hold on its
// DeleteObject).
func killAfterFlip(hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		col, _ := coldCollection(ctx, t, tc)
		rule := stack.InjectS3(ctx, t, hold)
		// The promotion answers once its flip is durable; the delete of the
		// cold copy it replaced runs in the background, and is held.
		got, err := tc.Client.SetTier(ctx, col.Name, api.TierHot)
		require.NoError(t, err, "the promotion answers without waiting for the delete")
		require.Equal(t, api.TierHot, got.Tier)
		waitRule(ctx, t, rule.ID, "the background delete of the cold copy is held", func(s s3fault.RuleStatus) bool { return s.Fired > 0 })
		fixture.RequireExactSearch(ctx, t, tc.Client, tc.Rand, col, 3, topK)
		require.Len(t, objects(ctx, t, col.Name), 1, "the cold copy is still in MinIO at the kill")
		// Lifted first, so that the restarted tierd's deletes pass; the held
		// delete stays held until the kill ends its client.
		require.NoError(t, rule.Remove(ctx))
		start := time.Now()
		stack.Inject(ctx, t, kill)
		t.Logf("%s with the delete held; restarted and ready in %s", kill, time.Since(start).Round(time.Millisecond))
		afterRestart(ctx, t, tc, col, api.TierHot, 0)
	}
}

// restartDuringOutage: tierd is killed and restarted (kill) while S3 is
// unreachable (down), with one hot and one cold collection.
func restartDuringOutage(down fault.Net, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) {
		c, rng := tc.Client, tc.Rand
		hot := fixture.Create(ctx, t, c, rng, 500, dim, api.MetricCosine)
		cold, key := coldCollection(ctx, t, tc)
		d := stack.Inject(ctx, t, down)
		start := time.Now()
		stack.Inject(ctx, t, kill) // fails the row unless tierd starts and becomes ready without S3
		t.Logf("killed, restarted and ready without S3 after %s", time.Since(start).Round(time.Millisecond))

		// The hot path works without S3.
		fixture.RequireExactSearch(ctx, t, c, rng, hot, 5, topK)
		more := fixture.RandomVectors(rng, 50, dim)
		for i := range more {
			more[i].ID = "after-restart-" + more[i].ID
		}
		_, err := c.Insert(ctx, hot.Name, more)
		require.NoError(t, err, "insert while S3 is down")
		hot.Vectors = append(hot.Vectors, more...)
		fixture.RequireTier(ctx, t, c, hot, api.TierHot)
		fixture.RequireExactSearch(ctx, t, c, rng, hot, 5, topK)

		// The cold collection is listed but refused, never served or lost.
		got, err := c.GetCollection(ctx, cold.Name)
		require.NoError(t, err)
		require.Equal(t, api.TierCold, got.Tier)
		require.Equal(t, key, got.Object)
		_, err = c.Search(ctx, cold.Name, fixture.RandomVectors(rng, 1, dim)[0].Values, topK)
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "search of a cold collection without S3: %v", err)
		tc.RequireWireError(t, err, api.CodeStorageUnavailable)
		_, err = c.SetTier(ctx, cold.Name, api.TierHot)
		require.Equal(t, api.CodeStorageUnavailable, client.CodeOf(err), "promotion without S3: %v", err)
		tc.RequireWireError(t, err, api.CodeStorageUnavailable)

		require.NoError(t, d.Remove(ctx))
		_, err = c.SetTier(ctx, cold.Name, api.TierHot)
		require.NoError(t, err, "promotion once S3 is back")
		fixture.RequireExactSearch(ctx, t, c, rng, cold, 5, topK)
		eventuallyBucket(ctx, t, cold.Name, 0)
		requireNothingInBucket(ctx, t, hot.Name)
		tc.Check(ctx, t, check.Config{}, hot.Name, cold.Name)
	}
}
