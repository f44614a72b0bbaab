package sqlstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca/groupcommit"
)

// CommitStats reports how the store batches its writes.
func (db *DB) CommitStats() groupcommit.Stats {
	return db.commits.Stats().Add(db.issuances.Stats())
}

// Collector reports how the store batches durable writes (writes per
// transaction is their ratio), and the dialect's own metrics.
func (db *DB) Collector() prometheus.Collector { return commitCollector{db} }

type commitCollector struct{ db *DB }

var (
	commitWritesDesc  = prometheus.NewDesc("openpca_store_commit_writes_total", "Writes (issuances, revocations) committed through group commit.", nil, nil)
	commitBatchesDesc = prometheus.NewDesc("openpca_store_commit_transactions_total", "Transactions group commit ran, with the reruns one write at a time of a batch that failed; each that succeeds is one durable commit.", nil, nil)
	commitSecondsDesc = prometheus.NewDesc("openpca_store_commit_seconds_total", "Time spent in group commit transactions.", nil, nil)
)

func (c commitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- commitWritesDesc
	ch <- commitBatchesDesc
	ch <- commitSecondsDesc
	if c.db.metrics != nil {
		c.db.metrics.Describe(ch)
	}
}

func (c commitCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.CommitStats()
	ch <- prometheus.MustNewConstMetric(commitWritesDesc, prometheus.CounterValue, float64(s.Writes))
	ch <- prometheus.MustNewConstMetric(commitBatchesDesc, prometheus.CounterValue, float64(s.Batches))
	ch <- prometheus.MustNewConstMetric(commitSecondsDesc, prometheus.CounterValue, s.Commit.Seconds())
	if c.db.metrics != nil {
		c.db.metrics.Collect(ch)
	}
}
