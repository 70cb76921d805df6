package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tierchaos/tierchaos/system/api"
	"github.com/tierchaos/tierchaos/system/grpcapi/tierdv1"
)

// timestamp converts t, nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fromTimestamp converts ts, the zero time for nil.
func fromTimestamp(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// CollectionToProto converts a collection.
func CollectionToProto(c api.Collection) *tierdv1.Collection {
	return &tierdv1.Collection{
		Name: c.Name, Dimension: int64(c.Dimension), Metric: string(c.Metric), Tier: string(c.Tier),
		Vectors: int64(c.Vectors), Snapshot: c.Snapshot, Checksum: c.Checksum, Object: c.Object,
		LastAccess: timestamp(c.LastAccess),
	}
}

// CollectionFromProto converts a collection.
func CollectionFromProto(c *tierdv1.Collection) api.Collection {
	return api.Collection{
		Name: c.GetName(), Dimension: int(c.GetDimension()), Metric: api.Metric(c.GetMetric()), Tier: api.Tier(c.GetTier()),
		Vectors: int(c.GetVectors()), Snapshot: c.GetSnapshot(), Checksum: c.GetChecksum(), Object: c.GetObject(),
		LastAccess: fromTimestamp(c.GetLastAccess()),
	}
}

// CollectionsToProto converts a list of collections.
func CollectionsToProto(cs []api.Collection) []*tierdv1.Collection {
	return each(cs, CollectionToProto)
}

// CollectionsFromProto converts a list of collections.
func CollectionsFromProto(cs []*tierdv1.Collection) []api.Collection {
	return each(cs, CollectionFromProto)
}

// VectorsToProto converts vectors.
func VectorsToProto(vs []api.Vector) []*tierdv1.Vector {
	return each(vs, func(v api.Vector) *tierdv1.Vector { return &tierdv1.Vector{Id: v.ID, Values: v.Values} })
}

// VectorsFromProto converts vectors (a nil element becomes a vector
// without id or values, which validation rejects).
func VectorsFromProto(vs []*tierdv1.Vector) []api.Vector {
	return each(vs, func(v *tierdv1.Vector) api.Vector { return api.Vector{ID: v.GetId(), Values: v.GetValues()} })
}

// ResultsToProto converts search hits.
func ResultsToProto(rs []api.Result) []*tierdv1.Result {
	return each(rs, func(r api.Result) *tierdv1.Result { return &tierdv1.Result{Id: r.ID, Score: r.Score} })
}

// ResultsFromProto converts search hits.
func ResultsFromProto(rs []*tierdv1.Result) []api.Result {
	return each(rs, func(r *tierdv1.Result) api.Result { return api.Result{ID: r.GetId(), Score: r.GetScore()} })
}

// SnapshotToProto converts a snapshot.
func SnapshotToProto(s api.Snapshot) *tierdv1.Snapshot {
	return &tierdv1.Snapshot{
		Id: s.ID, Collection: s.Collection, Vectors: int64(s.Vectors), Size: s.Size,
		Checksum: s.Checksum, Object: s.Object, Created: timestamp(s.Created),
	}
}

// SnapshotFromProto converts a snapshot.
func SnapshotFromProto(s *tierdv1.Snapshot) api.Snapshot {
	return api.Snapshot{
		ID: s.GetId(), Collection: s.GetCollection(), Vectors: int(s.GetVectors()), Size: s.GetSize(),
		Checksum: s.GetChecksum(), Object: s.GetObject(), Created: fromTimestamp(s.GetCreated()),
	}
}

// SnapshotsToProto converts a list of snapshots.
func SnapshotsToProto(ss []api.Snapshot) []*tierdv1.Snapshot {
	return each(ss, SnapshotToProto)
}

// SnapshotsFromProto converts a list of snapshots.
func SnapshotsFromProto(ss []*tierdv1.Snapshot) []api.Snapshot {
	return each(ss, SnapshotFromProto)
}

// WorkerStateToProto converts the worker's state.
func WorkerStateToProto(w api.WorkerState) *tierdv1.WorkerState {
	out := &tierdv1.WorkerState{State: w.State, Interval: w.Interval, Cycles: w.Cycles, ErrorsTotal: w.ErrorsTotal}
	if c := w.Last; c != nil {
		out.LastCycle = &tierdv1.WorkerCycle{
			Started: timestamp(c.Started), Finished: timestamp(c.Finished), Trigger: c.Trigger,
			DemotedWarm: c.DemotedWarm, DemotedCold: c.DemotedCold, Checkpointed: c.Checkpointed,
			WalSegmentsDropped: int64(c.WALSegmentsDropped), OrphansDeleted: c.OrphansDeleted, Errors: c.Errors,
		}
	}
	return out
}

// WorkerStateFromProto converts the worker's state.
func WorkerStateFromProto(w *tierdv1.WorkerState) api.WorkerState {
	out := api.WorkerState{State: w.GetState(), Interval: w.GetInterval(), Cycles: w.GetCycles(), ErrorsTotal: w.GetErrorsTotal()}
	if c := w.GetLastCycle(); c != nil {
		out.Last = &api.WorkerCycle{
			Started: fromTimestamp(c.GetStarted()), Finished: fromTimestamp(c.GetFinished()), Trigger: c.GetTrigger(),
			DemotedWarm: c.GetDemotedWarm(), DemotedCold: c.GetDemotedCold(), Checkpointed: c.GetCheckpointed(),
			WALSegmentsDropped: int(c.GetWalSegmentsDropped()), OrphansDeleted: c.GetOrphansDeleted(), Errors: c.GetErrors(),
		}
	}
	return out
}

// UsageToProto converts the usage report.
func UsageToProto(u api.Usage) *tierdv1.GetUsageResponse {
	return &tierdv1.GetUsageResponse{
		HotBytes: u.HotBytes, HotBytesQuota: u.HotBytesQuota, WarmBytes: u.WarmBytes, WarmBytesQuota: u.WarmBytesQuota,
		ColdBytes: u.ColdBytes, Collections: int64(u.Collections), CollectionsQuota: int64(u.CollectionsQuota),
		WalSegments: int64(u.WALSegments), WalBytes: u.WALBytes,
	}
}

// UsageFromProto converts the usage report.
func UsageFromProto(u *tierdv1.GetUsageResponse) api.Usage {
	return api.Usage{
		HotBytes: u.GetHotBytes(), HotBytesQuota: u.GetHotBytesQuota(), WarmBytes: u.GetWarmBytes(), WarmBytesQuota: u.GetWarmBytesQuota(),
		ColdBytes: u.GetColdBytes(), Collections: int(u.GetCollections()), CollectionsQuota: int(u.GetCollectionsQuota()),
		WALSegments: int(u.GetWalSegments()), WALBytes: u.GetWalBytes(),
	}
}

// each converts every element of in with f.
func each[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
