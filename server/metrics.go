package server

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/groupcommit"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newMetrics(r prometheus.Registerer, store openpca.CAStore, keyStores []string, logger *slog.Logger) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openpca_requests_total",
			Help: "API requests by operation and AWS error code (none for success).",
		}, []string{"operation", "error_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "openpca_request_duration_seconds",
			Help:    "Latency of API requests by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"operation"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openpca_requests_in_flight",
			Help: "API requests being served.",
		}),
	}
	r.MustRegister(m.requests, m.latency, m.inFlight)
	if store != nil {
		r.MustRegister(&caCollector{store: store, keyStores: keyStores, logger: logger})
	}
	if cs, ok := store.(commitStatser); ok {
		r.MustRegister(commitCollector{cs})
	}
	return m
}

func (m *metrics) observe(o awsjson.Outcome) {
	op, code := o.Operation, o.Code
	if op == "" {
		op = "unknown"
	}
	if code == "" {
		code = "none"
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.latency.WithLabelValues(op).Observe(o.Duration.Seconds())
}

// caCollector reports the number of CAs by status and key store, read
// from the store when Prometheus scrapes: an operator sees at a glance
// where the keys really are.
type caCollector struct {
	store     openpca.CAStore
	keyStores []string // the server's, each reported even without CAs
	logger    *slog.Logger
}

var caDesc = prometheus.NewDesc("openpca_certificate_authorities", "Certificate authorities by status and the key store that keeps their keys.",
	[]string{"status", "key_store"}, nil)

func (c *caCollector) Describe(ch chan<- *prometheus.Desc) { ch <- caDesc }

func (c *caCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.CountCAs(ctx, time.Now())
	if err != nil {
		c.logger.Error("counting CAs for metrics", "error", err)
		return
	}
	stores := slices.Clone(c.keyStores)
	for k := range counts {
		if !slices.Contains(stores, k.KeyStore) {
			stores = append(stores, k.KeyStore) // a store the server no longer has
		}
	}
	for _, store := range stores {
		for _, status := range openpca.CertificateAuthorityStatus("").Values() {
			ch <- prometheus.MustNewConstMetric(caDesc, prometheus.GaugeValue, float64(counts[openpca.CAKind{Status: status, KeyStore: store}]), string(status), store)
		}
	}
}

// commitStatser is a store that batches writes with group commit.
type commitStatser interface{ CommitStats() groupcommit.Stats }

// commitCollector reports how the store batches durable writes: writes
// per transaction is their ratio.
type commitCollector struct{ store commitStatser }

var (
	commitWritesDesc  = prometheus.NewDesc("openpca_store_commit_writes_total", "Writes (issuances, revocations) committed through group commit.", nil, nil)
	commitBatchesDesc = prometheus.NewDesc("openpca_store_commit_transactions_total", "Transactions group commit ran; each is one durable commit.", nil, nil)
	commitSecondsDesc = prometheus.NewDesc("openpca_store_commit_seconds_total", "Time spent in group commit transactions.", nil, nil)
)

func (c commitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- commitWritesDesc
	ch <- commitBatchesDesc
	ch <- commitSecondsDesc
}

func (c commitCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.store.CommitStats()
	ch <- prometheus.MustNewConstMetric(commitWritesDesc, prometheus.CounterValue, float64(s.Writes))
	ch <- prometheus.MustNewConstMetric(commitBatchesDesc, prometheus.CounterValue, float64(s.Batches))
	ch <- prometheus.MustNewConstMetric(commitSecondsDesc, prometheus.CounterValue, s.Commit.Seconds())
}
