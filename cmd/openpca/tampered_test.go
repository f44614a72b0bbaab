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

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/testenv"
)

// tampering is a change to the tables under the server, and what the
// report of them must do.
type tampering struct {
	// keep gives the issuance entries their records back: the records
	// the server makes again from the rows, so their hashes are the
	// log's, as entries logged before the narrow_certificates migration
	// keep theirs.
	keep bool
	// sql runs with the CA's id and the revoked serial for arguments.
	sql string
	// rewrite, if not nil, makes the CA's log, hashes and all
	// (rewriteLog), of its records.
	rewrite func(records [][]byte) [][]byte
	format  types.AuditReportResponseFormat
	// want is "" for a report that must succeed and verify; else the
	// report must fail with an integrity alarm saying it.
	want string
}

// maxFailure bounds, in bytes, the failure a report keeps: an integrity
// alarm quotes the tables, of any length.
const maxFailure = 4 << 10

// tamperedReport makes a root CA that issued three leaves and revoked
// the second, tampers as tt says, and asks for a report. A report of
// tampered tables that succeeds and then fails an auditor's verify is the
// error this guards against.
func tamperedReport(t *testing.T, tt tampering) {
	signAsTestKey(t)
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
	path := filepath.Join(env.Config.DataDir, "openpca.db")
	switch {
	case tt.rewrite != nil:
		rewriteLog(t, db, path, caID, tt.rewrite)
	case tt.keep:
		rewriteLog(t, db, path, caID, func(records [][]byte) [][]byte { return records })
	}
	if tt.sql != "" {
		if res, err := db.Exec(tt.sql, caID, serials[1]); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("tampering: %d rows", n)
		}
	}
	checkTamperedReport(t, env, caARN, tt.format, tt.want)
}

// checkTamperedReport asks for a report of a CA whose tables were
// tampered with. With want "", the report must succeed and verify; else
// it must fail with an integrity alarm saying want, kept short.
func checkTamperedReport(t *testing.T, env *testenv.Env, caARN string, format types.AuditReportResponseFormat, want string) {
	t.Helper()
	id, report, err := awaitReport(t, env, caARN, format)
	out, _ := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
	switch {
	case want == "" && err != nil:
		t.Fatalf("the report failed:\n%s", out)
	case want != "" && err == nil:
		t.Fatalf("the report succeeded; want it FAILED, with %q", want)
	case want != "":
		if !strings.Contains(out, "does not match its hashes") || !strings.Contains(out, want) {
			t.Errorf("audit reports:\n%s\nwant the report FAILED, with %q", out, want)
		}
		var kept int
		if err := env.DB(t).QueryRow(`SELECT LENGTH(failure) FROM audit_reports WHERE id = ?`, id).Scan(&kept); err != nil || kept > maxFailure {
			t.Errorf("the report's failure: %d bytes kept (%v), want at most %d", kept, err, maxFailure)
		}
		return
	}
	b, _ := os.ReadFile(report)
	key, _ := runOpenpca(t, "audit", "public-key", "--server", env.URL)
	if out, err := runOpenpca(t, "audit", "verify", "--report", report, "--key", strings.TrimSpace(key)); err != nil {
		t.Errorf("the report succeeded, and fails to verify:\n%s\naudit verify: %v\n%s", b, err, out)
	}
}

// first and revoked are WHERE clauses of a tampering's SQL: for the CA's
// first certificate (the root's own, not revoked), and for the revoked
// leaf.
const (
	first   = ` WHERE ca_id = ?1 AND serial <> ?2 AND issue_seq = (SELECT MIN(issue_seq) FROM certificates WHERE ca_id = ?1)`
	revoked = ` WHERE ca_id = ?1 AND serial = ?2`
)

// TestReportKeptRecords: issuance entries that keep their records, as
// those logged before the narrow_certificates migration do, are checked
// against their certificates' rows. Their hashes prove only the records:
// before the check, a row changed under the server, or gone, made a
// report that succeeded and then failed to verify.
func TestReportKeptRecords(t *testing.T) {
	tests := []struct{ name, sql, want string }{
		{"untouched", `UPDATE certificates SET subject = subject` + revoked, ""},
		{"serial in capitals", `UPDATE certificates SET serial = upper(serial)` + first, "shows another serial"},
		{"subject changed", `UPDATE certificates SET subject = 'CN=forged.example'` + first, "whose row in the certificates' table shows another subject"},
		{"revoked subject changed", `UPDATE certificates SET subject = 'CN=forged.example'` + revoked, "whose row in the certificates' table shows another subject"},
		{"notBefore changed", `UPDATE certificates SET not_before = not_before - 1000000` + first, "shows another notBefore"},
		{"notAfter changed", `UPDATE certificates SET not_after = not_after + 86400000000` + first, "shows another notAfter"},
		{"issuedAt changed", `UPDATE certificates SET issued_at = issued_at - 3600000000` + first, "shows another issuedAt"},
		{"template changed", `UPDATE certificates SET template_arn = 'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1'` + first, "shows another templateArn"},
		{"row removed", `DELETE FROM certificates` + first, "and no row of the certificates' table names it"},
		{"row moved past the log", `UPDATE certificates SET issue_seq = issue_seq + 1000` + first, "and no row of the certificates' table names it"},
		{"row moved to another entry", `UPDATE certificates SET issue_seq = 0` + first, "is not the issuance of certificate"},
		// The failure quotes the serial: it is kept short all the same.
		{"row of a serial of a megabyte moved to another entry", `UPDATE certificates SET serial = hex(zeroblob(524288)), issue_seq = 0` + first, "is not the issuance of certificate 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tamperedReport(t, tampering{keep: true, sql: tt.sql, format: types.AuditReportResponseFormatCsv, want: tt.want})
		})
	}
}

// TestReportRevokedRowMovedOut: the revoked certificate's row is moved
// out of the report's rows (an issue_seq below 0, or one SQLite keeps as
// text). The row still names the revocation entry as its revocation, with
// the time and reason it logged, so the entry found a row that agreed
// with it, and the report succeeded without the row (c0b40fc).
func TestReportRevokedRowMovedOut(t *testing.T) {
	for _, issueSeq := range []string{`-1`, `issue_seq || 'x'`} {
		for _, keep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/kept=%t", issueSeq, keep), func(t *testing.T) {
				tamperedReport(t, tampering{keep: keep, sql: `UPDATE certificates SET issue_seq = ` + issueSeq + revoked,
					format: types.AuditReportResponseFormatJson, want: "whose row does not name an entry of the log before it as its issuance"})
			})
		}
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
		for _, keep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/kept=%t", name, keep), func(t *testing.T) {
				tamperedReport(t, tampering{keep: keep, sql: `UPDATE certificates SET revoked_at = 1, revocation_reason = 'KEY_COMPROMISE', revoke_seq = ` + value + first,
					format: types.AuditReportResponseFormatJson})
			})
		}
	}
}

// TestReportRewrittenLog: a log rewritten, records and hashes, as an
// operator with the database could, with records a server does not
// write. Verify refuses them ("is not a key-use record a server writes"),
// so a report must: it checked only revocation records so, and read a
// kept issuance record as it could.
func TestReportRewrittenLog(t *testing.T) {
	for _, kind := range []string{openpca.KeyUseCSR, openpca.KeyUseIssue, openpca.KeyUseRevoke} {
		t.Run(kind, func(t *testing.T) {
			tamperedReport(t, tampering{rewrite: func(records [][]byte) [][]byte {
				for i, r := range records {
					if bytes.Contains(r, []byte(`"kind":"`+kind+`"`)) {
						records[i] = append([]byte("{ "), r[1:]...) // a space a server does not write
						return records
					}
				}
				t.Fatalf("no %s record in the log", kind)
				return nil
			}, format: types.AuditReportResponseFormatCsv, want: "is not a key-use record a server writes"})
		})
	}
}

// TestReportCAArnChanged: the report's CA ARN is the CA's row's, while
// the log's records name the ARN they were logged with. A subordinate
// CA's log has no issuance, whose record made again from the row would
// not match its hash: its report succeeded, and verify said its entries
// were of another CA.
func TestReportCAArnChanged(t *testing.T) {
	signAsTestKey(t)
	env := testenv.Start(t)
	rootARN, _ := env.NewActiveRoot(t, "Reported Root")
	subARN := env.CreateCA(t, types.CertificateAuthorityTypeSubordinate, "Reported Sub")
	forged := strings.Replace(subARN, ":acm-pca:us-east-1:", ":acm-pca:eu-west-1:", 1)
	if forged == subARN {
		t.Fatalf("ARN %s has no us-east-1", subARN)
	}
	csr, err := env.Client.GetCertificateAuthorityCsr(t.Context(), &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: &subARN})
	if err != nil {
		t.Fatal(err)
	}
	certARN := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &rootARN, Csr: []byte(*csr.Csr),
		TemplateArn: aws.String("arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"),
		Validity:    &types.Validity{Type: types.ValidityPeriodTypeYears, Value: aws.Int64(5)}})
	got, err := env.Client.GetCertificate(t.Context(), &acmpca.GetCertificateInput{CertificateAuthorityArn: &rootARN, CertificateArn: &certARN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.ImportCertificateAuthorityCertificate(t.Context(), &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: &subARN, Certificate: []byte(*got.Certificate), CertificateChain: []byte(*got.CertificateChain)}); err != nil {
		t.Fatal(err)
	}
	// version: the server's cache of CAs reads the row again.
	res, err := env.DB(t).Exec(`UPDATE certificate_authorities SET arn = ?, version = version + 1 WHERE id = ?`, forged, subARN[strings.LastIndex(subARN, "/")+1:])
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("tampering: %d rows, %v", n, err)
	}
	checkTamperedReport(t, env, subARN, types.AuditReportResponseFormatCsv, "is of the CA "+subARN+", not of the report's "+forged)
}
