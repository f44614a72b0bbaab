package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"

	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/internal/testenv"
)

// TestLogIntegrityAlarm: entries of a CA's key-use log removed or changed
// under the server raise an integrity alarm that names the CA and the
// entry, in what "audit proof" answers, in the reason "audit reports"
// gives for the failed report, in an ERROR log line and in a metric.
func TestLogIntegrityAlarm(t *testing.T) {
	signAsTestKey(t)
	var logs testenv.SyncBuffer
	env := testenv.Start(t, func(c *app.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	caARN, _ := env.NewActiveRoot(t, "Tampered Root")
	caID := caARN[strings.LastIndex(caARN, "/")+1:]
	var serials []string
	// Entries 3 to 6 of the log (its CSR, the root's certificate and its
	// import before them): removed, entry 6 takes a hash the proof of
	// entry 3 reads.
	for i := range 4 {
		csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("leaf%d.example", i)}}).CSRPEM
		arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
		serials = append(serials, arn[strings.LastIndex(arn, "/")+1:])
	}
	db := env.DB(t)
	issueSeq := func(serial string) int64 {
		var seq int64
		if err := db.QueryRow(`SELECT issue_seq FROM certificates WHERE ca_id = ? AND serial = ?`, caID, strings.ToLower(serial)).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	proof := func(serial, want string) {
		t.Helper()
		out, err := runOpenpca(t, "audit", "proof", "--server", env.URL, "--ca", caARN, "--serial", serial)
		switch {
		case want == "" && err != nil:
			t.Errorf("the proof of an untouched entry: %v\n%s", err, out)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("the proof of serial %s: %v, want an error with %q\n%s", serial, err, want, out)
		}
	}
	// A certificate changed: its issuance's entry, made again from it, no
	// longer matches its hash; the other entries still prove.
	changed := issueSeq(serials[2])
	if _, err := db.Exec(`UPDATE certificates SET subject = 'CN=forged.example' WHERE ca_id = ? AND issue_seq = ?`, caID, changed); err != nil {
		t.Fatal(err)
	}
	proof(serials[2], fmt.Sprintf("InternalFailure: Integrity alarm: entry %d of the key-use log of %s does not match the hash the log stored for it.", changed, caARN))
	proof(serials[0], "")
	// An entry removed: with it went hashes of the log's tree, so no
	// checkpoint of the log can be signed.
	removed := issueSeq(serials[3])
	if _, err := db.Exec(`DELETE FROM key_uses WHERE ca_id = ? AND seq = ?`, caID, removed); err != nil {
		t.Fatal(err)
	}
	proof(serials[0], fmt.Sprintf("InternalFailure: Integrity alarm: entry %d of the key-use log of %s is missing.", removed, caARN))

	id := failedReport(t, env, caARN, types.AuditReportResponseFormatJson)
	out, err := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
	if want := regexp.MustCompile(id + `  FAILED .*\n    failed: .*entry ` + fmt.Sprint(removed) + ` of the log of CA ` + caID + ` is missing`); err != nil || !want.MatchString(out) {
		t.Errorf("audit reports: %v\n%s\nwant a match of %s", err, out, want)
	}

	if m := metricsText(t, env.URL); !strings.Contains(m, "openpca_audit_log_integrity_alarms_total 3") {
		t.Errorf("the metrics do not count the three alarms:\n%s", m)
	}
	for _, entry := range []int64{changed, removed} {
		if want := fmt.Sprintf(`level=ERROR msg="integrity alarm: a CA's key-use log does not match its hashes; it was changed under the server" ca=%s entry=%d`, caID, entry); !strings.Contains(logs.String(), want) {
			t.Errorf("no log line %s:\n%s", want, logs.String())
		}
	}
}

// failedReport asks for a report of a CA into a local bucket, waits for
// it to fail, and returns its id.
func failedReport(t *testing.T, env *testenv.Env, caARN string, format types.AuditReportResponseFormat) string {
	t.Helper()
	id, _, err := awaitReport(t, env, caARN, format)
	if err == nil {
		t.Fatal("a report of a tampered log succeeded")
	}
	return id
}

// awaitReport asks for a report of a CA into the local bucket "reports",
// waits for it to end, and returns its id, the path of its file, and the
// waiter's error: nil if it succeeded.
func awaitReport(t *testing.T, env *testenv.Env, caARN string, format types.AuditReportResponseFormat) (id, path string, err error) {
	t.Helper()
	bucket := filepath.Join(env.Config.DataDir, "s3", "reports")
	if err := os.MkdirAll(bucket, 0o755); err != nil {
		t.Fatal(err)
	}
	rep, err := env.Client.CreateCertificateAuthorityAuditReport(t.Context(), &acmpca.CreateCertificateAuthorityAuditReportInput{
		CertificateAuthorityArn: &caARN, S3BucketName: aws.String("reports"), AuditReportResponseFormat: format})
	if err != nil {
		t.Fatal(err)
	}
	// The waiter's own delays (3 s and more) would idle most of the
	// tests that ask for reports, which take a few milliseconds.
	err = acmpca.NewAuditReportCreatedWaiter(env.Client, func(o *acmpca.AuditReportCreatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 100*time.Millisecond
	}).Wait(t.Context(), &acmpca.DescribeCertificateAuthorityAuditReportInput{CertificateAuthorityArn: &caARN, AuditReportId: rep.AuditReportId}, time.Minute)
	return *rep.AuditReportId, filepath.Join(bucket, *rep.S3Key), err
}

// TestReportIntegrity: a report whose rows would not be what the log
// says, because what the store keeps beside the log's records was changed
// under the server, fails with an integrity alarm instead of succeeding
// and then failing to verify: a revocation hidden from the certificates'
// table, one added to it, moved or changed in it, and a stored hash of the
// log's tree changed.
func TestReportIntegrity(t *testing.T) {
	signAsTestKey(t)
	// The statements' arguments are the CA's id and the revoked
	// certificate's serial; the first certificate issued is not revoked.
	const (
		first    = `ca_id = ?1 AND serial <> ?2 AND issue_seq = (SELECT MIN(issue_seq) FROM certificates WHERE ca_id = ?1)`
		unrevoke = `UPDATE certificates SET revoked_at = NULL, revocation_reason = '', revoke_seq = NULL WHERE ca_id = ?1 AND serial = ?2`
		// The first certificate's row says the revocation entry revoked it.
		alsoRevoked = `UPDATE certificates SET (revoked_at, revocation_reason, revoke_seq) =
			(SELECT revoked_at, revocation_reason, revoke_seq FROM certificates WHERE ca_id = ?1 AND serial = ?2) WHERE ` + first
	)
	tests := []struct {
		name   string
		tamper []string // SQL
		want   string   // %s is the revoked certificate's serial
	}{
		{"revocation hidden", []string{unrevoke}, "revokes certificate %s, which the certificates' table shows as not revoked"},
		{"revocation added, by an issuance", []string{`UPDATE certificates SET revoked_at = 1, revocation_reason = 'KEY_COMPROMISE',
			revoke_seq = (SELECT issue_seq FROM certificates WHERE ca_id = ?1 AND serial = ?2) WHERE ` + first},
			", which the certificates' table shows as revoked by it"},
		{"revocation added, before the issuance", []string{`UPDATE certificates SET revoked_at = 1, revocation_reason = 'KEY_COMPROMISE', revoke_seq = -1 WHERE ` + first},
			"whose row in the certificates' table says entry -1 revoked it, which is not after it"},
		{"revocation of two certificates", []string{alsoRevoked}, "is the revocation of two certificates"},
		{"revocation moved", []string{alsoRevoked, unrevoke}, "revokes certificate %s, and the certificates' table says it revoked certificate"},
		{"revocation time changed", []string{`UPDATE certificates SET revoked_at = revoked_at + 1000000 WHERE ca_id = ?1 AND serial = ?2`},
			"and the certificates' table says at"},
		{"stored hash changed", []string{`UPDATE key_uses SET hashes = substr(hashes, 1, 64) || zeroblob(32) WHERE ca_id = ?1 AND seq = 3 AND ?2 <> ''`},
			"do not hash to the root that the log's stored hashes give"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testenv.Start(t)
			caARN, _ := env.NewActiveRoot(t, "Reported Root")
			caID := caARN[strings.LastIndex(caARN, "/")+1:]
			var serial string
			for i := range 3 {
				csr := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("leaf%d.example", i)}}).CSRPEM
				arn := env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: csr})
				serial = arn[strings.LastIndex(arn, "/")+1:]
			}
			if _, err := env.Client.RevokeCertificate(t.Context(), &acmpca.RevokeCertificateInput{CertificateAuthorityArn: &caARN,
				CertificateSerial: aws.String(serial), RevocationReason: types.RevocationReasonSuperseded}); err != nil {
				t.Fatal(err)
			}
			for _, q := range tt.tamper {
				res, err := env.DB(t).Exec(q, caID, strings.ToLower(serial))
				if n, _ := res.RowsAffected(); err != nil || n == 0 {
					t.Fatalf("tampering: %d rows, %v", n, err)
				}
			}
			id := failedReport(t, env, caARN, types.AuditReportResponseFormatCsv)
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, strings.ToLower(serial))
			}
			out, err := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
			if err != nil || !strings.Contains(out, id+"  FAILED") || !strings.Contains(out, "does not match its hashes") || !strings.Contains(out, want) {
				t.Errorf("audit reports: %v\n%s\nwant the report FAILED, with %q", err, out, want)
			}
			if m := metricsText(t, env.URL); !strings.Contains(m, "openpca_audit_log_integrity_alarms_total 1") {
				t.Errorf("no integrity alarm")
			}
		})
	}
}
