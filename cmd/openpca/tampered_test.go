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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/internal/testenv"
	"github.com/openpca/openpca/sqlite"
)

// tamperedReport makes a root CA that issued three leaves and revoked
// the second, gives the issuance entries their records back (the records the
// server makes again from the rows, so their hashes are the log's, as
// entries logged before the narrow_certificates migration keep theirs),
// runs tamper (SQL with the CA's id and the revoked serial for
// arguments), and asks for a CSV report. With want "", the report must
// succeed and verify; else it must fail with an integrity alarm saying
// want. A report of tampered tables that succeeds and then fails an
// auditor's verify is the error this guards against.
func tamperedReport(t *testing.T, tamper, want string) {
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
	db := env.DB(t)
	for seq, record := range records { // the entries without a record are the issuances
		if _, err := db.Exec(`UPDATE key_uses SET record = ? WHERE ca_id = ? AND seq = ? AND record IS NULL`, record, caID, seq); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := db.Exec(tamper, caID, serials[1]); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering: %d rows", n)
	}
	if want != "" {
		failedReport(t, env, caARN, types.AuditReportResponseFormatCsv)
		out, err := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
		if err != nil || !strings.Contains(out, "does not match its hashes") || !strings.Contains(out, want) {
			t.Errorf("audit reports: %v\n%s\nwant the report FAILED, with %q", err, out, want)
		}
		return
	}
	_, report, err := awaitReport(t, env, caARN, types.AuditReportResponseFormatCsv)
	if err != nil {
		out, _ := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
		t.Fatalf("the report failed:\n%s", out)
	}
	b, _ := os.ReadFile(report)
	key, _ := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", strings.TrimSpace(key)); err != nil {
		t.Errorf("the report succeeded, and fails to verify:\n%s\naudit verify: %v\n%s", b, err, out)
	}
}

// first is the WHERE clause of tamperedReport's SQL for the CA's first
// certificate: the root's own, not revoked.
const first = ` WHERE ca_id = ?1 AND serial <> ?2 AND issue_seq = (SELECT MIN(issue_seq) FROM certificates WHERE ca_id = ?1)`

// TestReportKeptRecords: issuance entries that keep their records, as
// those logged before the narrow_certificates migration do, are checked
// against their certificates' rows. Their hashes prove only the records:
// before the check, a row changed under the server, or gone, made a
// report that succeeded and then failed to verify. A row moved out of the
// report's rows (an issue_seq below 0, or one SQLite keeps as text) that
// still names its revocation entry agreed with that entry (c0b40fc).
func TestReportKeptRecords(t *testing.T) {
	const revoked = ` WHERE ca_id = ?1 AND serial = ?2`
	tests := []struct{ name, tamper, want string }{
		{"untouched", `UPDATE certificates SET subject = subject` + revoked, ""},
		{"subject changed", `UPDATE certificates SET subject = 'CN=forged.example'` + first, "whose row in the certificates' table shows another subject"},
		{"revoked subject changed", `UPDATE certificates SET subject = 'CN=forged.example'` + revoked, "whose row in the certificates' table shows another subject"},
		{"notAfter changed", `UPDATE certificates SET not_after = not_after + 86400000000` + first, "shows another notAfter"},
		{"issuedAt changed", `UPDATE certificates SET issued_at = issued_at - 3600000000` + first, "shows another issuedAt"},
		{"template changed", `UPDATE certificates SET template_arn = 'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1'` + first, "shows another templateArn"},
		{"row removed", `DELETE FROM certificates` + first, "and no row of the certificates' table names it"},
		{"row moved past the log", `UPDATE certificates SET issue_seq = issue_seq + 1000` + first, "and no row of the certificates' table names it"},
		{"row moved to another entry", `UPDATE certificates SET issue_seq = 0` + first, "is not the issuance of certificate"},
		{"revoked row moved out", `UPDATE certificates SET issue_seq = -1` + revoked, "whose row does not name an entry of the log before it as its issuance"},
		{"revoked row moved out, as text", `UPDATE certificates SET issue_seq = issue_seq || 'x'` + revoked, "whose row does not name an entry of the log before it as its issuance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tamperedReport(t, tt.tamper, tt.want) })
	}
}

// TestReportRevokeSeqText: SQLite keeps a value of an INTEGER column that
// is not a number as text (or a blob). The report's issuance query read
// its leading digits (sqlite3_column_int64) and showed the row revoked;
// the query of the rows revoked in a chunk (revoke_seq >= ? AND revoke_seq
// < ?) never finds it, since SQLite orders text and blobs after every
// number. The report shows the row as the log does, not revoked (0df0625).
func TestReportRevokeSeqText(t *testing.T) {
	// The root's own row is given a revocation by the revoked leaf's
	// issuance entry, which is after the root's and revokes nothing.
	const leaf = `(SELECT issue_seq FROM certificates WHERE ca_id = ?1 AND serial = ?2)`
	for name, value := range map[string]string{"text": `CAST(` + leaf + ` AS TEXT) || 'x'`, "blob": `CAST(CAST(` + leaf + ` AS TEXT) AS BLOB)`} {
		t.Run(name, func(t *testing.T) {
			tamperedReport(t, `UPDATE certificates SET revoked_at = 1, revocation_reason = 'KEY_COMPROMISE', revoke_seq = `+value+first, "")
		})
	}
}
