package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierchaos/tierchaos/system/api"
)

// metrics are the store's Prometheus metrics.
type metrics struct {
	transitions     *prometheus.CounterVec
	transitionTime  *prometheus.HistogramVec
	walSync         prometheus.Histogram
	walSyncRecords  prometheus.Counter
	quotaRejections *prometheus.CounterVec
	autoDemotions   prometheus.Counter
	manifestSave    prometheus.Histogram
	manifestCommits prometheus.Counter
	bgDeletes       *prometheus.CounterVec
	packsWritten    *prometheus.CounterVec
	packMembers     prometheus.Histogram
	packDeletes     prometheus.Counter
}

func newMetrics(s *Store, reg prometheus.Registerer) *metrics {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierd_tier_transitions_total", Help: "Tier transitions by source, target and result (ok or the error code).",
		}, []string{"from", "to", "result"}),
		transitionTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tierd_tier_transition_duration_seconds", Help: "Duration of tier transitions.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"from", "to"}),
		walSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tierd_wal_fsync_duration_seconds", Help: "WAL fsync latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		walSyncRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_wal_records_synced_total", Help: "WAL records made durable.",
		}),
		quotaRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierd_quota_rejections_total", Help: "Requests refused with quota_exceeded, by quota.",
		}, []string{"quota"}),
		autoDemotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_auto_demotions_total", Help: "Hot collections demoted to warm under memory pressure.",
		}),
		manifestSave: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tierd_manifest_save_duration_seconds", Help: "Manifest saves (write + fsync), one per group of commits.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		manifestCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_manifest_commits_total", Help: "Manifest changes made durable (several per save under concurrency).",
		}),
		bgDeletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierd_background_deletes_total", Help: "Objects deleted in the background after a promotion, by result (ok, or failed: left to the worker).",
		}, []string{"result"}),
		packsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tierd_packs_written_total", Help: "Pack objects uploaded by the worker, by result (ok: its members committed cold; failed: cleaned up, members kept their tier).",
		}, []string{"result"}),
		packMembers: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tierd_pack_members", Help: "Members per pack committed cold.",
			Buckets: prometheus.ExponentialBuckets(2, 2, 12),
		}),
		packDeletes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tierd_pack_deletes_total", Help: "Pack objects deleted because their last member left (promoted, deleted or restored away).",
		}),
	}
	if reg == nil {
		return m
	}
	tierBytes := func(tier string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tierd_tier_bytes", Help: "Bytes held per tier (hot: memory; warm: local Parquet files; cold: S3 objects).",
			ConstLabels: prometheus.Labels{"tier": tier},
		}, f)
	}
	quota := func(name string, used, limit func() float64) []prometheus.Collector {
		return []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tierd_quota_used", Help: "Usage of each quota.",
				ConstLabels: prometheus.Labels{"quota": name}}, used),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tierd_quota_limit", Help: "Limit of each quota (0: unlimited).",
				ConstLabels: prometheus.Labels{"quota": name}}, limit),
		}
	}
	cs := []prometheus.Collector{m.transitions, m.transitionTime, m.walSync, m.walSyncRecords, m.quotaRejections, m.autoDemotions,
		m.manifestSave, m.manifestCommits, m.bgDeletes, m.packsWritten, m.packMembers, m.packDeletes,
		tierBytes("hot", func() float64 { return float64(s.hotBytes.Load()) }),
		tierBytes("warm", func() float64 { return float64(s.warmBytes.Load()) }),
		tierBytes("cold", func() float64 { return float64(s.coldBytes.Load()) }),
	}
	cs = append(cs, quota("hot_bytes", func() float64 { return float64(s.hotBytes.Load()) },
		func() float64 { return float64(s.opts.Quotas.HotBytes) })...)
	cs = append(cs, quota("warm_bytes", func() float64 { return float64(s.warmBytes.Load()) },
		func() float64 { return float64(s.opts.Quotas.WarmBytes) })...)
	cs = append(cs, quota("collections", func() float64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return float64(len(s.colls))
	}, func() float64 { return float64(s.opts.Quotas.Collections) })...)
	reg.MustRegister(cs...)
	return m
}

func (m *metrics) observeSync(d time.Duration, records int) {
	m.walSync.Observe(d.Seconds())
	m.walSyncRecords.Add(float64(records))
}

func (m *metrics) transition(from, to api.Tier, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = api.CodeOf(err)
	}
	m.transitions.WithLabelValues(string(from), string(to), result).Inc()
	m.transitionTime.WithLabelValues(string(from), string(to)).Observe(d.Seconds())
}

func (m *metrics) backgroundDeletes(keys, failed int) {
	m.bgDeletes.WithLabelValues("ok").Add(float64(keys - failed))
	m.bgDeletes.WithLabelValues("failed").Add(float64(failed))
}
