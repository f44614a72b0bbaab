package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
)

// TestReportRevokeSeqText: SQLite keeps a value of an INTEGER column that
// is not a number as text (or a blob). The report's issuance query reads
// its leading digits (sqlite3_column_int64) and shows the row revoked; the
// query of the rows revoked in a chunk (revoke_seq >= ? AND revoke_seq < ?)
// never finds it, since SQLite orders text and blobs after every number.
// The report must fail, or show the row as the log does (not revoked).
func TestReportRevokeSeqText(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	for _, value := range []string{`CAST(?3 AS TEXT) || 'x'`, `CAST(CAST(?3 AS TEXT) AS BLOB)`} {
		t.Run(value, func(t *testing.T) {
			env := testenv.Start(t)
			caARN, _ := env.NewActiveRoot(t, "Reported Root")
			caID := caARN[strings.LastIndex(caARN, "/")+1:]
			var serials []string
			for i := range 2 {
				csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("leaf%d.example", i)}}).CSRPEM
				arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
				serials = append(serials, strings.ToLower(arn[strings.LastIndex(arn, "/")+1:]))
			}
			db := env.DB(t)
			var second int64 // an entry after the first issuance, which revokes nothing
			if err := db.QueryRow(`SELECT issue_seq FROM certificates WHERE ca_id = ? AND serial = ?`, caID, serials[1]).Scan(&second); err != nil {
				t.Fatal(err)
			}
			res, err := db.Exec(`UPDATE certificates SET revoked_at = 1, revocation_reason = 'KEY_COMPROMISE', revoke_seq = `+value+`
				WHERE ca_id = ?1 AND serial = ?2`, caID, serials[0], second)
			if n, _ := res.RowsAffected(); err != nil || n != 1 {
				t.Fatalf("tampering: %d rows, %v", n, err)
			}
			bucket := filepath.Join(env.Config.DataDir, "s3", "reports")
			if err := os.MkdirAll(bucket, 0o755); err != nil {
				t.Fatal(err)
			}
			rep, err := env.Client.CreateCertificateAuthorityAuditReport(t.Context(), &acmpca.CreateCertificateAuthorityAuditReportInput{
				CertificateAuthorityArn: &caARN, S3BucketName: aws.String("reports"), AuditReportResponseFormat: types.AuditReportResponseFormatCsv})
			if err != nil {
				t.Fatal(err)
			}
			err = acmpca.NewAuditReportCreatedWaiter(env.Client).Wait(t.Context(),
				&acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: rep.AuditReportId}, time.Minute)
			if err != nil {
				return // failed: fine
			}
			report := filepath.Join(bucket, *rep.S3Key)
			b, _ := os.ReadFile(report)
			key, _ := runOpenpca(t, "audit", "public-key", "--server", env.URL)
			if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", strings.TrimSpace(key)); err != nil {
				t.Errorf("a report of a tampered table SUCCEEDED and does not verify:\n%s\naudit verify: %v\n%s", b, err, out)
			}
		})
	}
}
