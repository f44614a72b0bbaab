package main

import (
	"bytes"
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
	"github.com/openpca/openpca/sqlite"
)

// tamperedReport makes a CA that issued three leaves and revoked the
// second, gives the second's issuance entry its record back (the record
// the server makes again from the row, so its hash is the log's, as an
// entry logged before migration 0012 keeps its record), runs tamper (SQL
// with the CA's id and the revoked serial for arguments), and asks for a
// CSV report. A report of tampered tables must fail, or be true to the
// log: one that succeeds and then fails an auditor's verify is an error.
func tamperedReport(t *testing.T, tamper string) {
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	env := testenv.Start(t)
	caARN, _ := env.NewActiveRoot(t, "Reported Root")
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	var serials []string
	for i := range 3 {
		csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("leaf%d.example", i)}}).CSRPEM
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
		serials = append(serials, strings.ToLower(arn[strings.LastIndex(arn, "/")+1:]))
	}
	if _, err := env.Client.RevokeCertificate(t.Context(), &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
		CertificateSerial: aws.String(serials[1]), RevocationReason: types.RevocationReasonSuperseded}); err != nil {
		t.Fatal(err)
	}
	db := env.DB(t)
	var seq int64
	if err := db.QueryRow(`SELECT issue_seq FROM certificates WHERE ca_id = ? AND serial = ?`, caID, serials[1]).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(t.Context(), filepath.Join(env.Config.DataDir, "openpca.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var records [][]byte
	size, err := store.LogSize(t.Context(), caID)
	if err == nil {
		err = store.LogRecords(t.Context(), caID, size, func(r []byte) error { records = append(records, bytes.Clone(r)); return nil })
	}
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE key_uses SET record = ? WHERE ca_id = ? AND seq = ?`, records[seq], caID, seq); err != nil {
		t.Fatal(err)
	}
	if res, err := db.Exec(tamper, caID, serials[1]); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering: %d rows", n)
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
		out, _ := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
		t.Logf("the report failed:\n%s", out)
		return
	}
	report := filepath.Join(bucket, *rep.S3Key)
	b, _ := os.ReadFile(report)
	key, _ := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", strings.TrimSpace(key)); err != nil {
		t.Errorf("the report of tampered tables succeeded, and fails to verify:\n%s\naudit verify: %v\n%s", b, err, out)
	}
}

// TestReportRevokedRowMovedOut: the revoked certificate's row is moved
// out of the report's rows (an issue_seq below 0, or one SQLite keeps as
// text). The row still names the revocation entry as its revocation, with
// the time and reason it logged, so the entry finds a row that agrees
// with it (bab6b9c), and nothing notices that the report does not show
// that row. Before bab6b9c, the report failed: the revocation entry found
// no row of the report's revoked ("revokes certificate ..., which the
// certificates' table shows as not revoked").
func TestReportRevokedRowMovedOut(t *testing.T) {
	for _, issueSeq := range []string{`-1`, `issue_seq || 'x'`} {
		t.Run(issueSeq, func(t *testing.T) {
			tamperedReport(t, `UPDATE certificates SET issue_seq = `+issueSeq+` WHERE ca_id = ?1 AND serial = ?2`)
		})
	}
}
