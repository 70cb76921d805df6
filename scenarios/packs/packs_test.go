//go:build e2e

package packs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/fault"
	"github.com/tierchaos/tierchaos/harness/s3fault"
	"github.com/tierchaos/tierchaos/harness/scenario"
	"github.com/tierchaos/tierchaos/harness/tierd"
	"github.com/tierchaos/tierchaos/harness/tierd/check"
	"github.com/tierchaos/tierchaos/harness/tierd/fixture"
	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/client"
)

// TestPacks is the packs suite: a worker cycle that demotes several small
// warm collections uploads them as members of one pack object. Each row
// names its fault and the invariant it guards, and asserts on what tierd
// answers and on what MinIO holds (read directly, bypassing every fault),
// ending with the harness checkers.
func TestPacks(t *testing.T) {
	// The faults the rows inject, each declared once: the row lists it
	// and its Run injects exactly it.
	var (
		kill    = fault.Process{Action: "kill"}
		restart = fault.Process{Action: "restart"}
		// Held far longer than any row: only the kill ends it.
		holdPackPut = fault.S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpPutObject}, Key: packDir + "*", Latency: fault.Duration(hold)}
		// The start-up sweep retries until its listings work.
		failListings = fault.S3{Action: "slow_down", Ops: []s3fault.Op{s3fault.OpListObjectsV2}}
		holdPackHead = fault.S3{Action: "delay", Ops: []s3fault.Op{s3fault.OpHeadObject}, Key: packDir + "*", Latency: fault.Duration(headDelay)}
	)
	cases := []scenario.Scenario[*packCase]{
		{
			Name:    "kill-during-pack-upload",
			Faults:  []scenario.Fault{holdPackPut, kill},
			Guards:  "after the restart every acknowledged write is present, the members are all still warm (no pack half-referenced), and the next cycle packs them",
			Run:     packRow(killDuringPackUpload(holdPackPut, kill)),
			Timeout: rowTimeout,
		},
		{
			Name:    "delete-one-member",
			Faults:  []scenario.Fault{scenario.Described("none: one member of a pack is deleted")},
			Guards:  "deleting a member keeps the pack while others refer to it; the others list and promote exactly; the pack goes with the last member",
			Run:     packRow(deleteOneMember),
			Timeout: rowTimeout,
		},
		{
			Name:    "corrupt-member-range",
			Faults:  []scenario.Fault{scenario.Described("one bit flipped inside one member's byte range of the pack, directly in MinIO")},
			Guards:  "the damaged member fails with data_corrupted naming the pack and stays cold; every other member promotes exactly",
			Run:     packRow(corruptMember),
			Timeout: rowTimeout,
		},
		{
			Name:    "corrupt-member-range-grpc",
			Faults:  []scenario.Fault{scenario.Described("one bit flipped inside one member's byte range of the pack, directly in MinIO")},
			Guards:  "as corrupt-member-range; the damaged member's promotion answers gRPC DATA_LOSS with the ErrorInfo reason data_corrupted naming the pack",
			Run:     packRow(corruptMember),
			Timeout: rowTimeout,
			Variant: string(tierd.APIGRPC),
		},
		{
			Name: "sweep-races-pack-creation",
			// The restart's start-up orphan sweep keeps failing on its
			// listings until they are let through, while a stored pack's
			// verification is held.
			Faults:  []scenario.Fault{failListings, restart, holdPackHead},
			Guards:  "the sweep never deletes a pack that is being created or referenced; the members commit cold and promote exactly",
			Run:     packRow(sweepRacesPack(failListings, restart, holdPackHead)),
			Timeout: rowTimeout,
		},
		{
			Name:    "hundred-members-one-put",
			Faults:  []scenario.Fault{scenario.Described("none: 100 small collections demoted in one cycle")},
			Guards:  "one cycle demoting 100 small collections makes exactly one PUT (a pack of 100), and every member promotes exactly",
			Run:     packRow(hundredMembers),
			Timeout: rowTimeout,
		},
	}
	scenario.Run(t, cases, func(t *testing.T, s scenario.Scenario[*packCase]) *packCase {
		pc := &packCase{}
		// Registered before NewCase, so it runs after NewCase has
		// cleared the faults.
		t.Cleanup(func() { deleteCollections(t, &pc.cols) })
		pc.Case = stack.NewVariantCase(t, s.Variant)
		return pc
	})
}

// rowTimeout bounds each row of the suite.
const rowTimeout = 4 * time.Minute

// packCase is a packs row's case: the tierd case and the collections the
// row made, deleted when the row ends.
type packCase struct {
	*tierd.Case
	cols []*fixture.Collection
}

// packRow makes a row's Run of run, which returns the collections it
// made: they are deleted when the row ends, and the harness checkers
// judge them once run returns.
func packRow(run func(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection) func(ctx context.Context, t *testing.T, pc *packCase) {
	return func(ctx context.Context, t *testing.T, pc *packCase) {
		pc.cols = run(ctx, t, pc.Case)
		pc.Check(ctx, t, check.Config{AutoDemote: true}, names(pc.cols)...)
	}
}

// killDuringPackUpload holds the PUT of a pack of four (hold) and kills
// tierd, which starts again (kill).
func killDuringPackUpload(hold fault.S3, kill fault.Process) func(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
		cols := warmSmall(ctx, t, tc, 4)
		held := stack.InjectS3(ctx, t, hold)
		cycle := goRunOnce(ctx)
		waitFired(ctx, t, held.ID, "the pack's PUT is held")
		require.Empty(t, packObjects(ctx, t, cols), "no pack is stored at the kill")
		select {
		case err := <-cycle:
			require.FailNow(t, "the cycle ended before the kill", "%v", err)
		default:
		}
		// Lifted first, so that the restarted tierd's PUTs pass; the held PUT
		// stays held until the kill ends its client.
		require.NoError(t, held.Remove(ctx))
		stack.Inject(ctx, t, kill)
		require.Error(t, await(ctx, t, cycle, "the killed cycle's answer"), "the cycle was killed before it answered")

		for _, c := range cols {
			got, err := stack.Tierd.GetCollection(ctx, c.Name)
			require.NoError(t, err)
			require.Equal(t, api.TierWarm, got.Tier, "%s was never committed cold", c.Name)
			requireExact(ctx, t, c) // a listing reads the warm file, no promotion
		}
		requireNoHalfReferencedPack(ctx, t, cols)

		cyc := runOnce(ctx, t)
		require.Empty(t, cyc.Errors)
		key, idx := requireOnePack(ctx, t, cols)
		t.Logf("packed after the restart: %s (%s)", key, describe(idx))
		requireNoHalfReferencedPack(ctx, t, cols)
		for _, c := range cols {
			requireExact(ctx, t, c) // read from the pack, by range
			promoteExact(ctx, t, tc, c)
		}
		eventuallyGone(ctx, t, key)
		return cols
	}
}

// deleteOneMember deletes one member of a pack of four and promotes the
// others.
func deleteOneMember(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
	cols := warmSmall(ctx, t, tc, 4)
	cyc := runOnce(ctx, t)
	require.Empty(t, cyc.Errors)
	require.Subset(t, cyc.DemotedCold, names(cols))
	key, _ := requireOnePack(ctx, t, cols)

	require.NoError(t, tc.Client.DeleteCollection(ctx, cols[1].Name))
	runOnce(ctx, t) // pending deletes: the pack has live members, it stays
	requireObject(ctx, t, key)
	rest := []*fixture.Collection{cols[0], cols[2], cols[3]}
	for i, c := range rest {
		requireExact(ctx, t, c) // a cold listing reads the member's range
		promoteExact(ctx, t, tc, c)
		if i < len(rest)-1 {
			runOnce(ctx, t)
			requireObject(ctx, t, key)
		}
	}
	eventuallyGone(ctx, t, key)
	return cols // the deleted one is read back as missing
}

// corruptMember flips a bit inside one member's bytes of a pack of three.
func corruptMember(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
	cols := warmSmall(ctx, t, tc, 3)
	require.Empty(t, runOnce(ctx, t).Errors)
	key, idx := requireOnePack(ctx, t, cols)
	victim := cols[1]
	got, err := stack.Tierd.GetCollection(ctx, victim.Name)
	require.NoError(t, err)
	loc, ok := idx.Lookup(key, "packs/"+victim.Name+"."+got.Snapshot+".parquet")
	require.True(t, ok)
	corruptRange(ctx, t, key, loc.Offset, loc.Length)

	_, err = tc.Client.SetTier(ctx, victim.Name, api.TierHot)
	tc.RequireWireError(t, err, api.CodeDataCorrupted)
	require.ErrorContains(t, err, key, "the error names the pack")
	_, err = stack.Tierd.AllVectors(ctx, victim.Name, 1000)
	require.Equal(t, api.CodeDataCorrupted, client.CodeOf(err), "listing of the damaged member: %v", err)
	after, err := stack.Tierd.GetCollection(ctx, victim.Name)
	require.NoError(t, err)
	require.Equal(t, api.TierCold, after.Tier, "the damaged member stays cold")
	for _, c := range []*fixture.Collection{cols[0], cols[2]} {
		promoteExact(ctx, t, tc, c)
	}
	runOnce(ctx, t)
	requireObject(ctx, t, key) // the damaged member still refers to it
	require.NoError(t, tc.Client.DeleteCollection(ctx, victim.Name))
	eventuallyGone(ctx, t, key)
	return cols // the damaged one, deleted, is read back as missing
}

// sweepRacesPack makes the start-up orphan sweep of a restart (restart)
// run while a pack is stored and not yet committed: the pack's verifying
// HEAD is held (holdHead) while the sweep, which kept failing on its
// listings (failLists), is let through.
func sweepRacesPack(failLists fault.S3, restart fault.Process, holdHead fault.S3) func(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
	return func(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
		cols := warmSmall(ctx, t, tc, 4)
		listFails := stack.InjectS3(ctx, t, failLists)
		stack.Inject(ctx, t, restart)
		waitFired(ctx, t, listFails.ID, "the start-up sweep lists and fails")
		// Held for headDelay, well within the verification's deadline (the
		// suite's 15 s S3 deadline) and longer than the sweep's next retry.
		headHeld := stack.InjectS3(ctx, t, holdHead)
		cycle := goRunOnce(ctx)
		waitFired(ctx, t, headHeld.ID, "the stored pack's verification is held")
		require.Len(t, packObjects(ctx, t, cols), 1, "the pack is stored, not committed")
		before, err := stack.S3Faults.Stats(ctx)
		require.NoError(t, err)
		require.NoError(t, listFails.Remove(ctx))
		// The sweep's next attempt lists the collections and the packs.
		require.True(t, poll(ctx, waitFor, func() bool {
			st, err := stack.S3Faults.Stats(ctx)
			require.NoError(t, err)
			return st.Op(s3fault.OpListObjectsV2).Forwarded >= before.Op(s3fault.OpListObjectsV2).Forwarded+2
		}), "the start-up sweep listed the packs while the pack was held")
		select {
		case err := <-cycle:
			require.FailNow(t, "the pack was committed before the sweep listed it: no race", "cycle: %v", err)
		default:
			t.Log("the sweep listed the packs while the pack was stored and not committed")
		}
		require.NoError(t, headHeld.Remove(ctx))
		require.NoError(t, await(ctx, t, cycle, "the cycle"), "the cycle answers")
		key, _ := requireOnePack(ctx, t, cols)
		requireNoHalfReferencedPack(ctx, t, cols)
		journal, err := stack.S3Faults.Journal(ctx)
		require.NoError(t, err)
		for _, e := range journal {
			require.False(t, e.Op == s3fault.OpDeleteObject && e.Key == key, "the pack was deleted at %s", e.At)
		}
		for _, c := range cols {
			promoteExact(ctx, t, tc, c)
		}
		eventuallyGone(ctx, t, key)
		return cols
	}
}

// hundredMembers demotes 100 small collections in one cycle.
func hundredMembers(ctx context.Context, t *testing.T, tc *tierd.Case) []*fixture.Collection {
	cols := warmSmall(ctx, t, tc, 100)
	require.NoError(t, stack.S3Faults.ResetStats(ctx))
	t0 := time.Now()
	m0 := readPackMetrics(ctx, t)
	cyc := runOnce(ctx, t)
	require.Empty(t, cyc.Errors)
	require.Subset(t, cyc.DemotedCold, names(cols))
	st, err := stack.S3Faults.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), st.Op(s3fault.OpPutObject).Seen, "exactly one PUT for 100 demotions")
	require.Zero(t, st.Op(s3fault.OpCreateMultipartUpload).Seen, "and no multipart upload")
	key, idx := requireOnePack(ctx, t, cols)
	require.Len(t, idx.Members, 100)
	journal, err := stack.S3Faults.Journal(ctx)
	require.NoError(t, err)
	var puts []string
	for _, e := range journal {
		if e.Op == s3fault.OpPutObject && !e.At.Before(t0) {
			puts = append(puts, e.Key)
		}
	}
	require.Equal(t, []string{key}, puts, "the one PUT is the pack's")
	m1 := readPackMetrics(ctx, t)
	require.Equal(t, m0.written+1, m1.written, "tierd_packs_written_total{result=\"ok\"}")
	require.Equal(t, m0.failed, m1.failed, "no failed pack")
	require.Equal(t, m0.packs+1, m1.packs, "one tierd_pack_members observation")
	require.Equal(t, m0.members+100, m1.members, "of 100 members")
	for _, c := range cols {
		promoteExact(ctx, t, tc, c)
	}
	eventuallyGone(ctx, t, key)
	// The counter moves after the delete's last request: wait for it.
	require.True(t, poll(ctx, waitFor, func() bool { return readPackMetrics(ctx, t).deleted >= m1.deleted+1 }),
		"tierd_pack_deletes_total counts the pack's delete")
	return cols
}
