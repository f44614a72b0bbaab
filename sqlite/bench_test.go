package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkRecordIssuance measures the durable write path of issuance
// alone: concurrent RecordIssuance calls sharing group commits.
func BenchmarkRecordIssuance(b *testing.B) {
	for _, conc := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			db := open(b, filepath.Join(b.TempDir(), "bench.db"))
			defer db.Close()
			ca := newActiveCA(b, db)
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range conc {
				wg.Go(func() {
					for {
						i := n.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := recordIssuance(b.Context(), db, ca, i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			s := db.CommitStats()
			b.ReportMetric(float64(s.Writes)/float64(s.Batches), "writes/commit")
			b.ReportMetric(float64(s.Commit.Microseconds())/float64(s.Batches)/1000, "ms/commit")
		})
	}
}
