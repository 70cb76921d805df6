// Package report turns a load run into the files kept as artifacts:
// report.json (everything, in a stable schema for trends), report.md (a
// summary with budgets), and latency.png (latency percentiles and rate over
// time), all in one folder.
package report

import (
	"time"

	"github.com/tierchaos/tierchaos/load/budget"
)

// Schema identifies the report.json layout. Fields are only ever added
// within one schema version; renames or removals bump it.
const Schema = "tierchaos.load.report/v1"

// File names written by Write.
const (
	JSONFile = "report.json"
	MDFile   = "report.md"
	PNGFile  = "latency.png"
)

// Report is the content of report.json. Durations are in milliseconds
// (fields ending in _ms), rates in requests per second.
type Report struct {
	Schema    string         `json:"schema"`
	Name      string         `json:"name"`
	Target    string         `json:"target,omitempty"`
	Started   time.Time      `json:"started"`
	Run       RunInfo        `json:"run"`
	Overall   Op             `json:"overall"`
	Ops       []Op           `json:"ops"`
	Intervals []Interval     `json:"intervals"`
	Timeline  []Point        `json:"timeline"`
	Budget    *budget.Report `json:"budget,omitempty"`
	// Passed is false when a budget gate failed.
	Passed bool `json:"passed"`
	// Resources and Profiles are filled when a monitor or profiler ran.
	Resources *Resources `json:"resources,omitempty"`
	Profiles  *Profiles  `json:"profiles,omitempty"`
	// Files lists the artifacts beside the report (CSV, profiles, PNG).
	Files []string `json:"files,omitempty"`
}

// RunInfo records how the load was generated.
type RunInfo struct {
	Rate         float64 `json:"rate"`
	DurationS    float64 `json:"duration_s"`
	ElapsedS     float64 `json:"elapsed_s"`
	RampUpS      float64 `json:"ramp_up_s"`
	Arrival      string  `json:"arrival"`
	Pacing       string  `json:"pacing"`
	Seed         uint64  `json:"seed"`
	LateAfterMS  float64 `json:"late_after_ms"`
	MaxInFlight  int     `json:"max_in_flight"`
	PeakInFlight int     `json:"peak_in_flight"`
	Interrupted  bool    `json:"interrupted"`
	// DriverCPUS is the CPU time of the driver's whole process during
	// the run (load.Result.DriverCPU), DriverCPUPerRequestUS that time
	// per request sent; both 0 where it is not measured. A merged report
	// sums its shards' driver CPU.
	DriverCPUS            float64 `json:"driver_cpu_s,omitempty"`
	DriverCPUPerRequestUS float64 `json:"driver_cpu_per_request_us,omitempty"`
	// Mix is each op's weight share (0..1).
	Mix map[string]float64 `json:"mix,omitempty"`
	// API is the tierd API the load spoke: "rest" or "grpc" (APIOf reads
	// a report written before this field as "rest").
	API string `json:"api,omitempty"`
	// Shard is set when this run drove one shard of a sharded run.
	Shard *Shard `json:"shard,omitempty"`
	// MergedFrom lists the shard reports a merged report was built from
	// (Merge); empty for a single run.
	MergedFrom []string `json:"merged_from,omitempty"`
}

// Shard identifies one of Count processes that share a run: each drives
// 1/Count of the rate with its own Seed (derived from RunSeed and Index)
// and its own collections.
type Shard struct {
	Index   int    `json:"index"`
	Count   int    `json:"count"`
	RunSeed uint64 `json:"run_seed"`
}

// Latency is a percentile summary in milliseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MinMS  float64 `json:"min_ms"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P95MS  float64 `json:"p95_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Op is one operation's (or the overall) result.
type Op struct {
	Name         string           `json:"name"`
	Scheduled    int64            `json:"scheduled"`
	Sent         int64            `json:"sent"`
	Missed       int64            `json:"missed"`
	Late         int64            `json:"late"`
	Completed    int64            `json:"completed"`
	OK           int64            `json:"ok"`
	Errors       map[string]int64 `json:"errors"`
	ErrorRate    float64          `json:"error_rate"`
	TargetRate   float64          `json:"target_rate"`
	AchievedRate float64          `json:"achieved_rate"`
	RateRatio    float64          `json:"rate_ratio"`
	Throughput   float64          `json:"throughput"`
	// Latency is from the due time (coordinated-omission corrected);
	// Service from the actual send; StartLag from due time to send.
	Latency  Latency `json:"latency"`
	Service  Latency `json:"service"`
	StartLag Latency `json:"start_lag"`
	// LatencyHDR and ServiceHDR are HdrHistogram V2 base64 encodings (µs),
	// mergeable across runs and shards (Merge). Start lag has no
	// histogram: a merged report leaves StartLag empty.
	LatencyHDR string `json:"latency_hdr,omitempty"`
	ServiceHDR string `json:"service_hdr,omitempty"`
}

// Interval is one interval's overall figures.
type Interval struct {
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// Drain marks the completions after the sending window.
	Drain        bool             `json:"drain"`
	Sent         int64            `json:"sent"`
	Completed    int64            `json:"completed"`
	OK           int64            `json:"ok"`
	Late         int64            `json:"late"`
	Errors       map[string]int64 `json:"errors"`
	TargetRate   float64          `json:"target_rate"`
	AchievedRate float64          `json:"achieved_rate"`
	Latency      Latency          `json:"latency"`
}

// Point is one tick of the timeline.
type Point struct {
	AtS       float64 `json:"at_s"`
	Sent      int64   `json:"sent"`
	Completed int64   `json:"completed"`
	Errors    int64   `json:"errors"`
	Rate      float64 `json:"rate"`
	P50MS     float64 `json:"p50_ms"`
	P95MS     float64 `json:"p95_ms"`
	P99MS     float64 `json:"p99_ms"`
	MaxMS     float64 `json:"max_ms"`
}

// Resources summarises the target's resource samples.
type Resources struct {
	Source        string  `json:"source"`
	Samples       int     `json:"samples"`
	CPUAvg        float64 `json:"cpu_avg_cores"`
	CPUMax        float64 `json:"cpu_max_cores"`
	RSSStartBytes uint64  `json:"rss_start_bytes"`
	RSSEndBytes   uint64  `json:"rss_end_bytes"`
	RSSMaxBytes   uint64  `json:"rss_max_bytes"`
	GoroutinesMax int     `json:"goroutines_max"`
	GoroutinesEnd int     `json:"goroutines_end"`
	CSV           string  `json:"csv,omitempty"`
}

// Hotspot is one function's share of CPU samples.
type Hotspot struct {
	Function string  `json:"function"`
	FlatPct  float64 `json:"flat_pct"`
	CumPct   float64 `json:"cum_pct"`
}

// HeapGrowth is one function's change in in-use heap bytes.
type HeapGrowth struct {
	Function   string `json:"function"`
	DeltaBytes int64  `json:"delta_bytes"`
}

// Profiles summarises the captured pprof profiles.
type Profiles struct {
	// HeapBaseBytes and HeapEndBytes are the in-use heap after warm-up and at the end.
	HeapBaseBytes int64     `json:"heap_base_bytes"`
	HeapEndBytes  int64     `json:"heap_end_bytes"`
	HeapGrowth    float64   `json:"heap_growth"`
	CPUHotspots   []Hotspot `json:"cpu_hotspots"`
	// BlockHotspots and MutexHotspots rank functions by time spent blocked
	// and waiting on contended locks (flat/cum % of BlockDelayMS /
	// MutexDelayMS, the windows' totals; 0 when the target records none).
	BlockHotspots []Hotspot    `json:"block_hotspots,omitempty"`
	MutexHotspots []Hotspot    `json:"mutex_hotspots,omitempty"`
	BlockDelayMS  float64      `json:"block_delay_ms"`
	MutexDelayMS  float64      `json:"mutex_delay_ms"`
	HeapGrowthBy  []HeapGrowth `json:"heap_growth_by_function"`
	Files         []string     `json:"files"`
}

// APIOf returns the API a run spoke: its RunInfo.API, or "rest" for a
// report that names none (written before the field existed).
func APIOf(r *Report) string {
	if r.Run.API == "" {
		return "rest"
	}
	return r.Run.API
}
