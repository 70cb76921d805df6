package check

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tierchaos/tierchaos/harness/tierd/history"
	"github.com/tierchaos/tierchaos/system/api"
)

func snap(call, ret int64, id string, count int) history.Op {
	return history.Op{Kind: history.KindSnapshot, Call: call, Return: ret, Snapshot: id, Count: count}
}

func restore(call, ret int64, id string, count int, out history.Outcome, code string) history.Op {
	op := history.Op{Kind: history.KindRestore, Call: call, Return: ret, Snapshot: id, Outcome: out, Code: code}
	if out == history.OK || out == "" {
		op.Tier, op.Count = api.TierHot, count
	}
	return op
}

// snapBase: a=(1,0), b=(2,0) acknowledged; snapshot s1 of both; then a is
// overwritten and c added; then s1 is restored (op 4). Dot product scores
// with the query (1,0) are the first value.
func snapBase() *builder {
	return new(builder).add(create(1, 2, api.MetricDot)).
		add(insert(3, 4, history.OK, vec("a", 1, 0), vec("b", 2, 0))).
		add(snap(5, 6, "s1", 2)).
		add(insert(7, 8, history.OK, vec("a", 9, 0), vec("c", 3, 0))).
		add(restore(9, 10, "s1", 2, history.OK, ""))
}

// TestRestoreContent: a restore installs exactly its snapshot's content;
// what was acknowledged before it is superseded, what comes after it stays.
func TestRestoreContent(t *testing.T) {
	q := []float32{1, 0}
	tests := []struct {
		name    string
		ops     *builder
		final   history.Final
		checker string // "" = every checker must pass
		want    string
	}{
		{name: "content after the restore is the snapshot's",
			ops:   snapBase().add(search(11, 12, 3, q, res("b", 2), res("a", 1))),
			final: final(vec("a", 1, 0), vec("b", 2, 0))},
		{name: "later inserts stay",
			ops:   snapBase().add(insert(11, 12, history.OK, vec("d", 4, 0))),
			final: final(vec("a", 1, 0), vec("b", 2, 0), vec("d", 4, 0))},
		{name: "restore kept a superseded value",
			ops:     snapBase(),
			final:   final(vec("a", 9, 0), vec("b", 2, 0)),
			checker: LostWritesName, want: "not the values of any write"},
		{name: "restore kept a superseded id",
			ops:     snapBase(),
			final:   final(vec("a", 1, 0), vec("b", 2, 0), vec("c", 3, 0)),
			checker: LostWritesName, want: "certainly wiped"},
		{name: "restore lost an id of its snapshot",
			ops:     snapBase(),
			final:   final(vec("b", 2, 0)),
			checker: LostWritesName, want: "acknowledged restore (op 4) is lost"},
		{name: "search after the restore sees superseded content",
			ops:     snapBase().add(search(11, 12, 3, q, res("a", 9), res("c", 3), res("b", 2))),
			final:   final(vec("a", 1, 0), vec("b", 2, 0)),
			checker: SearchesName, want: "oracle score"},
		{name: "write lost after a restore",
			ops:     snapBase().add(insert(11, 12, history.OK, vec("d", 4, 0))),
			final:   final(vec("a", 1, 0), vec("b", 2, 0)),
			checker: LostWritesName, want: "acknowledged insert (op 5) is lost"},
		{name: "restore answers another count than its snapshot",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0), vec("b", 2, 0))).
				add(snap(5, 6, "s1", 2)).
				add(restore(7, 8, "s1", 3, history.OK, "")),
			final:   final(vec("a", 1, 0), vec("b", 2, 0)),
			checker: SnapshotsName, want: "answered 3 vectors, but the snapshot holds [2]"},
		{name: "snapshot captured too few vectors",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0), vec("b", 2, 0))).
				add(snap(5, 6, "s1", 1)),
			final:   final(vec("a", 1, 0), vec("b", 2, 0)),
			checker: SnapshotsName, want: "captured 1 vectors, but the history allows [2..2"},
		{name: "insert racing the snapshot is in the restored content",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(snap(5, 8, "s1", 2)).
				add(insert(6, 7, history.OK, vec("b", 2, 0))).
				add(restore(9, 10, "s1", 2, history.OK, "")),
			final: final(vec("a", 1, 0), vec("b", 2, 0))},
		{name: "insert racing the snapshot is not in the restored content",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(snap(5, 8, "s1", 1)).
				add(insert(6, 7, history.OK, vec("b", 2, 0))).
				add(restore(9, 10, "s1", 1, history.OK, "")),
			final: final(vec("a", 1, 0))},
		{name: "insert racing the restore may be superseded",
			ops:   snapBase().add(insert(8, 11, history.OK, vec("d", 4, 0))),
			final: final(vec("a", 1, 0), vec("b", 2, 0))},
		{name: "insert racing the restore may stay",
			ops:   snapBase().add(insert(8, 11, history.OK, vec("d", 4, 0))),
			final: final(vec("a", 1, 0), vec("b", 2, 0), vec("d", 4, 0))},
		{name: "unknown restore may not have applied",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(snap(5, 6, "s1", 1)).
				add(insert(7, 8, history.OK, vec("a", 9, 0))).
				add(restore(9, 10, "s1", 0, history.Unknown, "")),
			final: final(vec("a", 9, 0))},
		{name: "unknown restore may have applied",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(snap(5, 6, "s1", 1)).
				add(insert(7, 8, history.OK, vec("a", 9, 0))).
				add(restore(9, 10, "s1", 0, history.Unknown, "")),
			final: final(vec("a", 1, 0))},
		{name: "failed restore changed nothing",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(snap(5, 6, "s1", 1)).
				add(insert(7, 8, history.OK, vec("a", 9, 0))).
				add(restore(9, 10, "s1", 0, history.Failed, api.CodeStorageUnavailable)),
			final:   final(vec("a", 1, 0)),
			checker: LostWritesName, want: "not the values of any write"},
		{name: "snapshot answer lost: its content is what the history allows then",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(history.Op{Kind: history.KindSnapshot, Call: 5, Return: 6, Outcome: history.Unknown}).
				add(insert(7, 8, history.OK, vec("b", 2, 0))).
				add(restore(9, 10, "s1", 2, history.OK, "")),
			final: final(vec("a", 1, 0), vec("b", 2, 0))},
		{name: "snapshot answer lost: an id certainly captured must survive",
			ops: new(builder).add(create(1, 2, api.MetricDot)).
				add(insert(3, 4, history.OK, vec("a", 1, 0))).
				add(history.Op{Kind: history.KindSnapshot, Call: 5, Return: 6, Outcome: history.Unknown}).
				add(insert(7, 8, history.OK, vec("b", 2, 0))).
				add(restore(9, 10, "s1", 1, history.OK, "")),
			final:   final(vec("b", 2, 0)),
			checker: LostWritesName, want: "acknowledged restore (op 4) is lost"},
		{name: "snapshot of another collection restored",
			ops: snapBase().add(history.Op{Kind: history.KindCreateCollection, Collection: "d", Call: 11, Return: 12,
				Dimension: 2, Metric: api.MetricDot}).
				add(history.Op{Kind: history.KindSnapshot, Collection: "d", Call: 13, Return: 14, Snapshot: "s9"}).
				add(restore(15, 16, "s9", 0, history.OK, "")),
			final:   history.NewFinal(map[string][]api.Vector{"c": {vec("a", 1, 0), vec("b", 2, 0)}, "d": {}}),
			checker: SnapshotsName, want: "belongs to collection \"d\""},
		{name: "snapshot of a deleted incarnation restored",
			ops: snapBase().add(del(11, 12, history.OK)).
				add(create(13, 14, api.MetricDot)).
				add(restore(15, 16, "s1", 2, history.OK, "")),
			final:   final(vec("a", 1, 0), vec("b", 2, 0)),
			checker: SnapshotsName, want: "certainly removed before the restore was called"},
		{name: "two snapshots answered the same id",
			ops:     snapBase().add(snap(11, 12, "s1", 2)),
			final:   final(vec("a", 1, 0), vec("b", 2, 0)),
			checker: SnapshotsName, want: "was answered by 2 snapshot operations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{}).All(tt.final)
			if tt.checker == "" {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, tt.checker, tt.want)
		})
	}
}

func TestRestoreNeedsItsSnapshot(t *testing.T) {
	ops := new(builder).add(create(1, 2, api.MetricDot)).
		add(restore(3, 4, "nowhere", 0, history.OK, "")).ops
	_, err := New(ops, Config{})
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorContains(t, err, "uses snapshot \"nowhere\"")

	failed := new(builder).add(create(1, 2, api.MetricDot)).
		add(restore(3, 4, "nowhere", 0, history.Failed, api.CodeNotFound)).ops
	_, err = New(failed, Config{})
	require.NoError(t, err, "a failed restore had no effect: its snapshot does not matter")

	unknown := new(builder).add(create(1, 2, api.MetricDot)).
		add(insert(3, 4, history.OK, vec("a", 1, 0))).
		add(restore(5, 6, "nowhere", 0, history.Unknown, "")).ops
	c, err := New(unknown, Config{ArtifactDir: t.TempDir()})
	require.NoError(t, err, "no snapshot can have the id: a correct tierd answered not_found")
	requireViolation(t, c.LostWrites(final()), LostWritesName, "acknowledged insert (op 1) is lost")
}

// TestTiersWithSnapshotsAndRestores: a snapshot observes that the collection
// exists and leaves the tier; an ok restore moves it to hot; a failed one
// changes nothing.
func TestTiersWithSnapshotsAndRestores(t *testing.T) {
	cold := func() *builder {
		return new(builder).add(create(1, 2, api.MetricDot)).
			add(setTier(3, 4, api.TierCold, history.OK, "")).
			add(snap(5, 6, "s1", 0)).
			add(getTier(7, 8, api.TierCold))
	}
	tests := []struct {
		name     string
		ops      *builder
		wantFail bool
	}{
		{"snapshot keeps the tier, restore makes hot",
			cold().add(restore(9, 10, "s1", 0, history.OK, "")).add(getTier(11, 12, api.TierHot)), false},
		{"restore acknowledged but still cold",
			cold().add(restore(9, 10, "s1", 0, history.OK, "")).add(getTier(11, 12, api.TierCold)), true},
		{"failed restore leaves the tier",
			cold().add(restore(9, 10, "s1", 0, history.Failed, api.CodeStorageUnavailable)).
				add(getTier(11, 12, api.TierCold)), false},
		{"failed restore applied anyway",
			cold().add(restore(9, 10, "s1", 0, history.Failed, api.CodeStorageUnavailable)).
				add(getTier(11, 12, api.TierHot)), true},
		{"unknown restore may apply late",
			cold().add(restore(9, 10, "s1", 0, history.Unknown, "")).
				add(getTier(11, 12, api.TierCold)).add(getTier(13, 14, api.TierHot)), false},
		{"restore then demotion then restore",
			cold().add(restore(9, 10, "s1", 0, history.OK, "")).
				add(setTier(11, 12, api.TierWarm, history.OK, "")).
				add(getTier(13, 14, api.TierWarm)).
				add(restore(15, 16, "s1", 0, history.OK, "")).
				add(getTier(17, 18, api.TierHot)), false},
		{"snapshot of a deleted collection",
			new(builder).add(create(1, 2, api.MetricDot)).
				add(del(3, 4, history.OK)).
				add(snap(5, 6, "s1", 0)), true},
		{"snapshot not_found while the collection exists",
			new(builder).add(create(1, 2, api.MetricDot)).
				add(history.Op{Kind: history.KindSnapshot, Call: 3, Return: 4, Outcome: history.Failed,
					Status: 404, Code: api.CodeNotFound}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newChecker(t, tt.ops.ops, Config{}).Tiers()
			if !tt.wantFail {
				require.NoError(t, err)
				return
			}
			requireViolation(t, err, TiersName, "not linearizable")
		})
	}
}
