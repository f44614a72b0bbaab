package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
)

// BenchmarkRecordIssuance measures the durable write path of issuance
// alone: concurrent RecordIssuance calls sharing group commits.
func BenchmarkRecordIssuance(b *testing.B) {
	for _, conc := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			db := open(b, filepath.Join(b.TempDir(), "bench.db"))
			defer db.Close()
			ca := &openpca.CA{ID: uuid.NewString(), AccountID: "111122223333", Status: openpca.CertificateAuthorityStatusActive,
				CreatedAt: time.Now(), LastStateChangeAt: time.Now(), NotAfter: time.Now().AddDate(1, 0, 0), KeyStore: "software", KeyHandle: []byte{1}, CSR: []byte{2}}
			ca.ARN = openpca.CAARN("us-east-1", ca.AccountID, ca.ID)
			if _, err := db.CreateCA(b.Context(), ca, openpca.CSRUse(ca, "b", "r"), openpca.IdempotencyToken{Now: time.Now()}, 10); err != nil {
				b.Fatal(err)
			}
			der := make([]byte, 600)
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
						c := &openpca.Certificate{CAID: ca.ID, AccountID: ca.AccountID, Serial: fmt.Sprintf("%032x", i), DER: der,
							Subject: "CN=bench", NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IssuedAt: time.Now(),
							TemplateARN: "arn:aws:acm-pca:::template/EndEntityCertificate/V1", RequestedBy: "b", RequestID: "r"}
						c.ARN = ca.ARN + "/certificate/" + c.Serial
						if _, err := db.RecordIssuance(b.Context(), &openpca.Issuance{Certificate: c, Use: openpca.IssueUse(ca.ARN, c),
							Statuses: []openpca.CertificateAuthorityStatus{openpca.CertificateAuthorityStatusActive}}); err != nil {
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
