package crl

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca/internal/logsample"
)

// metrics are what a Publisher tells Prometheus: the CRLs it wrote and
// failed to write, and the CAs whose CRLs fail on any server, which the
// store counts at each scrape. An operator alerts on the CAs failing: a
// CRL that cannot be written is retried up to every 15 minutes, and the
// one in the bucket runs out meanwhile.
type metrics struct {
	store    Store
	now      func() time.Time
	attempts *prometheus.CounterVec
	// logger is sampled: anyone who reaches /metrics can scrape it as
	// fast as they like, and while the store fails each scrape fails.
	logger *slog.Logger
}

var failingDesc = prometheus.NewDesc("openpca_crls_failing",
	"Certificate authorities whose last attempt to publish a CRL failed, on any server sharing the database; each is tried again after 30 s, then twice as long each time, up to 15 minutes.", nil, nil)

func newMetrics(store Store, now func() time.Time, logger *slog.Logger) *metrics {
	m := &metrics{store: store, now: now, logger: logsample.Logger(logger), attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openpca_crl_publications_total",
		Help: "CRLs this server wrote to their buckets (written), and its attempts to publish one that failed (failed; see the log; one whose CRL was written but not recorded after counts in both).",
	}, []string{"outcome"})}
	for _, o := range []string{outcomeWritten, outcomeFailed} {
		m.attempts.WithLabelValues(o)
	}
	return m
}

const (
	outcomeWritten = "written"
	outcomeFailed  = "failed"
)

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.attempts.Describe(ch)
	ch <- failingDesc
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.attempts.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := m.store.CountFailingCRLs(ctx, m.now())
	if err != nil {
		m.logger.Error("counting failing CRLs for metrics", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(failingDesc, prometheus.GaugeValue, float64(n))
}
