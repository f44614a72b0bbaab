package server

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/awsjson"
	"github.com/openpca/openpca/internal/logsample"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// OCSP answers, which anyone may ask for: by what they say, and how
	// long the responder took (the body's read, at its client's pace,
	// apart; one refused for want of room for its body is counted, not
	// timed).
	ocspResponses *prometheus.CounterVec
	ocspLatency   prometheus.Histogram
}

func newMetrics(r prometheus.Registerer, collectors []prometheus.Collector) *metrics {
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
		ocspResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openpca_ocsp_responses_total",
			Help: "OCSP answers by what they say: the certificate's status (good, revoked, unknown) or the error response's name (malformedRequest, unauthorized, tryLater, internalError); abandoned, whatever they say, if their client ended its request first.",
		}, []string{"response"}),
		ocspLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "openpca_ocsp_response_duration_seconds",
			Help:    "Time the OCSP responder took to answer, its request read (those refused for want of room for their bodies apart).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
	}
	r.MustRegister(m.requests, m.latency, m.inFlight, m.ocspResponses, m.ocspLatency)
	r.MustRegister(collectors...)
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

// ocspAbandoned is what an OCSP answer whose client ended its request
// first (or half-closed its connection, which net/http cannot tell
// apart) is counted as: anyone can end requests at will, which the responder then fails
// (internalError, on which operators alert), and a stalled store makes
// clients give up before it answers.
const ocspAbandoned = "abandoned"

// ocspAnswered counts the answer to r, which said what it says, and times
// it (took: 0 for one refused before the responder).
func (m *metrics) ocspAnswered(r *http.Request, said string, took time.Duration) {
	if r.Context().Err() != nil {
		said = ocspAbandoned
	}
	m.ocspResponses.WithLabelValues(said).Inc()
	if took > 0 {
		m.ocspLatency.Observe(took.Seconds())
	}
}

// CACounter counts CAs by status and key store.
type CACounter interface {
	CountCAs(ctx context.Context, now time.Time) (map[openpca.CAKind]int, error)
}

// CACollector reports the number of CAs by status and key store, read
// from store when Prometheus scrapes: an operator sees at a glance where
// the keys really are. Each of keyStores, the server's, is reported even
// without CAs.
func CACollector(store CACounter, keyStores []string, logger *slog.Logger) prometheus.Collector {
	// Sampled: anyone who reaches /metrics can scrape it as fast as they
	// like, and while the store fails each scrape fails.
	return &caCollector{store: store, keyStores: keyStores, logger: logsample.Logger(logger)}
}

type caCollector struct {
	store     CACounter
	keyStores []string
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
