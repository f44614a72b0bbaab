package sqlite_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/sqlite"
)

// TestWALStaysBounded issues certificates through the store from many
// writers at once, beside readers that look certificates up and scan the
// CA's audit rows, and samples the size of the write-ahead log all along:
// it stays near RestartAt, never past twice it, although the writes put
// many times that through the log. Once the file has reached RestartAt,
// it is reused: it never shrinks back.
func TestWALStaysBounded(t *testing.T) {
	const restartAt = 4 << 20
	path := filepath.Join(t.TempDir(), "wal.db")
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{RestartAt: restartAt})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ca := newActiveCA(t, db)

	var peak atomic.Int64
	shrank := false // after the file reached restartAt; read after sampled
	sampled := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if fi, err := os.Stat(path + "-wal"); err == nil {
				shrank = shrank || peak.Load() >= restartAt && fi.Size() < restartAt
				peak.Store(max(peak.Load(), fi.Size()))
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	n := int64(10000)
	if raceEnabled {
		n = 2500
	}
	var issued atomic.Int64
	var writers, readers sync.WaitGroup
	for range 32 {
		writers.Go(func() {
			for i := issued.Add(1); i <= n; i = issued.Add(1) {
				if err := recordIssuance(t.Context(), db, ca, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 3 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				serial := fmt.Sprintf("%032x", 1+rand.Int64N(max(issued.Load(), 1)))
				if _, err := db.FindCertificate(t.Context(), ca.ID, serial); err != nil && err != openpca.ErrNotFound {
					t.Error(err)
					return
				}
			}
		})
	}
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			size, err := db.LogSize(t.Context(), ca.ID)
			if err == nil {
				err = db.AuditEntries(t.Context(), ca.ID, size, 0, size, func(*openpca.AuditEntry) error { return nil })
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	writers.Wait()
	close(done)
	readers.Wait()
	<-sampled
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d certificates: database %d KiB, write-ahead log at most %d KiB", n, fi.Size()>>10, peak.Load()>>10)
	if p := peak.Load(); p > 2*restartAt {
		t.Errorf("the write-ahead log reached %d KiB, more than twice the %d KiB it is restarted at", p>>10, restartAt>>10)
	}
	if shrank {
		t.Error("the write-ahead log's file shrank below the size it is restarted at: it was truncated, not reused")
	}

	// What /metrics says of the log.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(db.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		metrics[f.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if metrics["openpca_sqlite_wal_restarts_total"] < 1 || metrics["openpca_sqlite_checkpoint_failures_total"] != 0 ||
		metrics["openpca_sqlite_wal_bytes"] < restartAt || metrics["openpca_sqlite_wal_bytes"] > float64(peak.Load()) {
		t.Errorf("the metrics of the write-ahead log: %v", metrics)
	}
}
