package main

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
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
	// more is further SQL, run after sql with the same arguments, on any
	// number of rows.
	more   []string
	format types.AuditReportResponseFormat
	// want is "" for a report that must succeed and verify; else the
	// report must fail saying it.
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
	for _, q := range tt.more {
		if _, err := db.Exec(q, caID, serials[1]); err != nil {
			t.Fatal(err)
		}
	}
	checkTamperedReport(t, env, caARN, tt.format, tt.want)
}

// checkTamperedReport asks for a report of a CA whose tables were
// tampered with. With want "", the report must succeed and verify (with
// verifyArgs); else it must fail saying want (an integrity alarm's
// problem, mostly), kept short.
func checkTamperedReport(t *testing.T, env *testenv.Env, caARN string, format types.AuditReportResponseFormat, want string, verifyArgs ...string) {
	t.Helper()
	id, report, err := awaitReport(t, env, caARN, format)
	out, _ := runOpenpca(t, "audit", "reports", "--server", env.URL, "--ca", caARN)
	switch {
	case want == "" && err != nil:
		t.Fatalf("the report failed:\n%s", out)
	case want != "" && err == nil:
		t.Fatalf("the report succeeded; want it FAILED, with %q", want)
	case want != "":
		if !strings.Contains(out, want) {
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
	if out, err := runOpenpca(t, append([]string{"audit", "verify", "--report", report, "--key", strings.TrimSpace(key)}, verifyArgs...)...); err != nil {
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
	env.ActivateSubordinate(t, rootARN, subARN, 5)
	// version: the server's cache of CAs reads the row again.
	res, err := env.DB(t).Exec(`UPDATE certificate_authorities SET arn = ?, version = version + 1 WHERE id = ?`, forged, subARN[strings.LastIndex(subARN, "/")+1:])
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("tampering: %d rows, %v", n, err)
	}
	checkTamperedReport(t, env, subARN, types.AuditReportResponseFormatCsv, "is of the CA "+subARN+", not of the report's "+forged)
}

// recordsOf decodes a log's records.
func recordsOf(t *testing.T, records [][]byte) []openpca.KeyUseRecord {
	t.Helper()
	out := make([]openpca.KeyUseRecord, len(records))
	for i, r := range records {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	return out
}

// madeAgain is SQL that has the store make the issuance records again
// from the rows, as it does for those logged since narrow_certificates.
const madeAgain = `UPDATE key_uses SET record = NULL WHERE ca_id = ?1 AND seq IN (SELECT issue_seq FROM certificates WHERE ca_id = ?1)`

// TestReportSerialTwiceInSQLite: SQLite's unique index of (ca_id,
// serial) holds a blob and a text of the same bytes as two values, which
// the store reads as one serial. The log rewritten so that the last
// leaf's issuance issues the revoked leaf's serial, and the last leaf's
// row given that serial as a blob: verify showed both issuances of the
// serial revoked (a revocation is of every issuance of its serial before
// it), the report only one.
func TestReportSerialTwiceInSQLite(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("kept=%t", keep), func(t *testing.T) {
			tt := tampering{format: types.AuditReportResponseFormatCsv, want: "whose serial in the certificates' table is not text",
				rewrite: func(records [][]byte) [][]byte {
					recs := recordsOf(t, records)
					revokedSerial, last := "", -1
					for i, r := range recs {
						switch r.Kind {
						case openpca.KeyUseRevoke:
							revokedSerial = r.Serial
						case openpca.KeyUseIssue:
							last = i
						}
					}
					records[last] = bytes.ReplaceAll(records[last], []byte(recs[last].Serial), []byte(revokedSerial))
					return records
				},
				sql: `UPDATE certificates SET serial = CAST(?2 AS BLOB) WHERE ca_id = ?1 AND issue_seq = (SELECT MAX(issue_seq) FROM certificates WHERE ca_id = ?1)`,
			}
			if !keep {
				tt.more = []string{madeAgain}
			}
			tamperedReport(t, tt)
		})
	}
}

// TestReportRowNoServerWrites: an issuance record the store makes again
// from a row that holds what no server writes, with the log's hashes made
// again for it, is one verify refuses: a request id that is not UTF-8
// (written as "\ufffd", which the server's form writes unescaped), a
// notAfter past the year 9999 (which RFC 3339 cannot write).
func TestReportRowNoServerWrites(t *testing.T) {
	const farAfter = 253402300800000000 // 10000-01-01T00:00:00Z, in µs
	tests := []struct {
		name   string
		change func(r *openpca.KeyUseRecord, record []byte) []byte
		set    string
	}{
		{"request id not UTF-8", func(r *openpca.KeyUseRecord, record []byte) []byte {
			return bytes.Replace(record, []byte(`"requestId":"`+r.RequestID+`"`), []byte(`"requestId":"\ufffd"`), 1)
		}, `request_id = X'ff'`},
		{"notAfter past 9999", func(r *openpca.KeyUseRecord, record []byte) []byte {
			far := time.UnixMicro(farAfter).UTC().Format(time.RFC3339)
			return bytes.Replace(record, []byte(`"notAfter":"`+r.NotAfter+`"`), []byte(`"notAfter":"`+far+`"`), 1)
		}, fmt.Sprintf(`not_after = %d`, int64(farAfter))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tamperedReport(t, tampering{format: types.AuditReportResponseFormatJson, want: "holds what no server writes",
				rewrite: func(records [][]byte) [][]byte {
					recs := recordsOf(t, records)
					for i, r := range recs { // the CA's first issuance: the root's own
						if r.Kind == openpca.KeyUseIssue {
							changed := tc.change(&r, records[i])
							if bytes.Equal(changed, records[i]) {
								t.Fatal("the record did not change")
							}
							records[i] = changed
							return records
						}
					}
					t.Fatal("no issuance")
					return nil
				},
				sql: `UPDATE certificates SET ` + tc.set + first, more: []string{madeAgain},
			})
		})
	}
}

// TestReportCAArnCached: the server's cache of CAs serves a CA while its
// row's version is the same; the records made again from the rows take
// the ARN the store reads. The CA's ARN changed in its row without its
// version, and the log rewritten so that its issuance and import records
// name the new ARN (its CSR and revocation the old): a report that took
// its CA's ARN from the cache succeeded, and verify said the issuances
// were of another CA. A report reads its CA from the store (LastImport),
// and fails at the CSR.
func TestReportCAArnCached(t *testing.T) {
	tamperedReport(t, tampering{format: types.AuditReportResponseFormatCsv, want: "entry 0 of the log of CA",
		rewrite: func(records [][]byte) [][]byte {
			recs := recordsOf(t, records)
			caARN := recs[0].CertificateAuth
			for i, r := range recs {
				if r.Kind == openpca.KeyUseIssue || r.Kind == openpca.KeyUseImport {
					records[i] = bytes.ReplaceAll(records[i], []byte(caARN), []byte(strings.Replace(caARN, ":us-east-1:", ":eu-west-1:", 1)))
				}
			}
			return records
		},
		more: []string{madeAgain,
			// Not its version: the cache keeps the old ARN.
			`UPDATE certificate_authorities SET arn = replace(arn, ':us-east-1:', ':eu-west-1:') WHERE id = ?1`},
	})
}

// TestReportTablesNotServers: a report signs its CA's ARN, and its id
// and S3 key, as the database has them, which verify reads against the
// report's file name. The log rewritten for a CA's ARN that is not one, or
// that is another CA's or another account's, and a report's row inserted with another key, with
// an id not a UUID (and the key made for it), or a log size of no log:
// each report fails.
func TestReportTablesNotServers(t *testing.T) {
	const want = "in the database is not one the server makes"
	other := uuid.NewString()
	for _, tc := range []struct {
		name string
		arn  func(caARN string) string
		sql  string // of the CA's row's arn
	}{
		{"CA ARN not one", func(caARN string) string { return caARN + "x" }, `arn || 'x'`},
		{"CA ARN of another CA", func(caARN string) string { return caARN[:len(caARN)-len(other)] + other },
			`substr(arn, 1, length(arn) - ` + fmt.Sprint(len(other)) + `) || '` + other + `'`},
		{"CA ARN of another account", func(caARN string) string {
			return strings.Replace(caARN, ":"+app.DefaultAccountID+":", ":999988887777:", 1)
		},
			`replace(arn, ':` + app.DefaultAccountID + `:', ':999988887777:')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tamperedReport(t, tampering{format: types.AuditReportResponseFormatCsv, want: want,
				rewrite: func(records [][]byte) [][]byte {
					caARN := recordsOf(t, records)[0].CertificateAuth
					for i := range records {
						records[i] = bytes.ReplaceAll(records[i], []byte(caARN), []byte(tc.arn(caARN)))
					}
					return records
				},
				sql: `UPDATE certificate_authorities SET arn = ` + tc.sql + `, version = version + 1 WHERE id = ?1`})
		})
	}
	// A report's row, inserted beside one made before: its id, its key
	// (made for the id if ""), and the SQL of its log_size.
	for _, tc := range []struct{ name, id, key, logSize, want string }{
		{"S3 key", uuid.NewString(), "other.csv", "log_size", want},
		{"id with a slash", "sub/" + uuid.NewString(), "", "log_size", want},
		{"id with a backslash", `sub\` + uuid.NewString(), "", "log_size", want},
		// A size below 0 asks for a checkpoint of the whole log.
		{"log size below 0", uuid.NewString(), "", "-1", want},
		{"log size past the log", uuid.NewString(), "", "log_size + 5", "is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signAsTestKey(t)
			// Idle workers look for reports every third of the lease.
			env := testenv.Start(t, func(c *app.Config) { c.AuditReportLease = 1500 * time.Millisecond })
			caARN, _ := env.NewActiveRoot(t, "Reported Root")
			caID := caARN[strings.LastIndex(caARN, "/")+1:]
			done, _, err := awaitReport(t, env, caARN, types.AuditReportResponseFormatCsv)
			if err != nil {
				t.Fatal(err)
			}
			// A report as the server asks for one, but for its row, for
			// its workers to find unwoken. The API takes ids of a UUID's
			// form only: the table says how it ended.
			key := "audit-report/" + caID + "/" + tc.key
			if tc.key == "" {
				key = openpca.AuditReportKey(caID, tc.id, openpca.AuditReportResponseFormatCsv)
			}
			db := env.DB(t)
			if _, err := db.Exec(`INSERT INTO audit_reports (id, ca_id, account_id, bucket, s3_key, format, status, created_at, log_size)
				SELECT ?, ca_id, account_id, bucket, ?, format, 'CREATING', created_at + 1, `+tc.logSize+` FROM audit_reports WHERE id = ?`, tc.id, key, done); err != nil {
				t.Fatal(err)
			}
			var status, failure string
			for deadline := time.Now().Add(time.Minute); status != "FAILED" && status != "SUCCESS" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if err := db.QueryRow(`SELECT status, failure FROM audit_reports WHERE id = ?`, tc.id).Scan(&status, &failure); err != nil {
					t.Fatal(err)
				}
			}
			if status != "FAILED" || !strings.Contains(failure, tc.want) {
				t.Errorf("the report of row %s, %s: %s, %q; want it FAILED, with %q", tc.id, key, status, failure, tc.want)
			}
		})
	}
}

// TestReportRowUnreadable: a waiting report whose row the store cannot
// read (text where the server keeps a number) failed every claim, so that
// no report was made after it; now it fails alone, and the next is made.
func TestReportRowUnreadable(t *testing.T) {
	signAsTestKey(t)
	env := testenv.Start(t)
	firstARN, _ := env.NewActiveRoot(t, "First Root")
	done, _, err := awaitReport(t, env, firstARN, types.AuditReportResponseFormatCsv)
	if err != nil {
		t.Fatal(err)
	}
	// Older than the next report's request, so claimed before it.
	bad := uuid.NewString()
	db := env.DB(t)
	if _, err := db.Exec(`INSERT INTO audit_reports (id, ca_id, account_id, bucket, s3_key, format, status, created_at, log_size)
		SELECT ?1, ca_id, account_id, bucket, replace(s3_key, id, ?1), format, 'CREATING', created_at - 1, 'not a size' FROM audit_reports WHERE id = ?2`, bad, done); err != nil {
		t.Fatal(err)
	}
	secondARN, _ := env.NewActiveRoot(t, "Second Root")
	if _, _, err := awaitReport(t, env, secondARN, types.AuditReportResponseFormatCsv); err != nil {
		t.Fatalf("the report after an unreadable row's: %v", err)
	}
	var status, failure string
	if err := db.QueryRow(`SELECT status, failure FROM audit_reports WHERE id = ?`, bad).Scan(&status, &failure); err != nil {
		t.Fatal(err)
	}
	if want := "the report's row in the database is not one the server makes"; status != "FAILED" || !strings.Contains(failure, want) {
		t.Errorf("the unreadable row's report: %s, %q; want it FAILED, with %q", status, failure, want)
	}
}

// TestReportWitnessedTampered: a report embeds the checkpoint witnesses
// last cosigned, as the database keeps it, and covers the log as far as
// the size kept beside it. With the witness out of reach and the rounds'
// answers counted up in the table, so that a report takes what it finds
// there, a checkpoint changed, without its cosignature or older than the
// report's request, a size changed, or a log forked under what the witness
// cosigned, each made a report that succeeded and that verify --witness
// (--witnessed-after, for the old checkpoint) then refused; each now
// fails saying why.
func TestReportWitnessedTampered(t *testing.T) {
	// noCosignature takes the witness's cosignature, its last line, out
	// of a witnessed checkpoint.
	noCosignature := func(note []byte) []byte {
		lines := bytes.SplitAfter(note, []byte("\n")) // the last is ""
		return bytes.Join(append(lines[:len(lines)-2:len(lines)-2], lines[len(lines)-1]), nil)
	}
	tests := []struct {
		name string
		more int  // certificates issued once the witness is down
		fork bool // the last issuance taken out, and another issued in its place
		sql  string
		note func([]byte) []byte // of the witnessed checkpoint
		// later is how long after the witnessed checkpoint the report is
		// asked for, by the server's clock.
		later time.Duration
		want  string
	}{
		{"untouched", 0, false, "", nil, 0, ""},
		{"checkpoint cut", 0, false, `note = substr(note, 1, length(note) - 20)`, nil, 0, "whose witnessed checkpoint the server did not sign"},
		{"checkpoint of another CA", 0, false, `note = (SELECT note FROM witnessing WHERE ca_id <> ?1)`, nil, 0, "whose witnessed checkpoint is of another log"},
		{"cosignature taken out", 0, false, "", noCosignature, 0, "is not cosigned as the server's witnesses cosign: 0 of the witnesses given cosigned the log, and 1 must"},
		{"cosigned before the report was asked for", 0, false, "", nil, 10 * time.Second, "before the report was asked for"},
		{"size past the checkpoint's", 1, false, `size = size + 1`, nil, 0, "is the last the server says witnesses cosigned, and their checkpoint has"},
		{"log forked", 0, true, "", nil, 0, "and those before it are not the log that witnesses cosigned"},
		// A witnessed checkpoint the store cannot read fails the report,
		// as its other reads do (it used to go without witnesses, its
		// proof file quoting the database's error).
		{"witnessing unreadable", 0, false, `size = 'not a size'`, nil, 0, "InternalFailure: The server encountered an internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, w := witnessedEnv(t, nil)
			caARN, _ := env.NewActiveRoot(t, "Witnessed Root")
			caID := caARN[strings.LastIndex(caARN, "/")+1:]
			other, _ := env.NewActiveRoot(t, "Other Witnessed Root")
			leaf := testenv.NewLeaf(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "witnessed.example"}}).CSRPEM
			issue := func(n int) {
				for range n {
					env.Issue(t, &acmpca.IssueCertificateInput{CertificateAuthorityArn: &caARN, Csr: leaf})
				}
			}
			issue(2)
			db := env.DB(t)
			// Both CAs' logs are cosigned to their ends, then the witness
			// goes.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				var unwitnessed int
				if err := db.QueryRow(`SELECT COUNT(*) FROM key_use_logs l LEFT JOIN witnessing w ON w.ca_id = l.ca_id
					WHERE l.ca_id IN (?, ?) AND (w.note IS NULL OR w.size <> l.size)`, caID, other[strings.LastIndex(other, "/")+1:]).Scan(&unwitnessed); err != nil {
					t.Fatal(err)
				}
				if unwitnessed == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the witness did not cosign both logs to their ends")
				}
			}
			w.stop()
			issue(tt.more)
			if tt.fork {
				env.Stop(t)
				forkLog(t, env, db, caID, 1)
				env.Restart(t)
				issue(1)
			}
			set := "answered = 1000000"
			if tt.sql != "" {
				set += ", " + tt.sql
			}
			if _, err := db.Exec(`UPDATE witnessing SET `+set+` WHERE ca_id = ?1`, caID); err != nil {
				t.Fatal(err)
			}
			if tt.note != nil {
				var note []byte
				if err := db.QueryRow(`SELECT note FROM witnessing WHERE ca_id = ?`, caID).Scan(&note); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(`UPDATE witnessing SET note = ? WHERE ca_id = ?`, tt.note(note), caID); err != nil {
					t.Fatal(err)
				}
			}
			env.Clock.Advance(tt.later)
			checkTamperedReport(t, env, caARN, types.AuditReportResponseFormatJson, tt.want, "--witness", w.key)
		})
	}
}

// TestReportCACertificateChanged: a report fails, with the integrity
// alarm, for a CA that holds another certificate than its log last
// imported: one changed under the server, or the log rewritten so that
// its import is of another certificate; and for a log whose entries are
// stored as another kind than their records', by which the last import
// is found.
func TestReportCACertificateChanged(t *testing.T) {
	const want = "is the last import of the CA's certificate, but not of the certificate and chain it holds"
	for name, tt := range map[string]tampering{
		"the certificate": {sql: `UPDATE certificate_authorities SET certificate = x'3000' WHERE id = ?1 AND ?2 <> ''`},
		"the import's kind": {sql: `UPDATE key_uses SET kind = 'CSR' WHERE ca_id = ?1 AND kind = 'IMPORT' AND ?2 <> ''`,
			want: "and those before it import no certificate, yet the CA holds one"},
		"an issuance's kind": {sql: `UPDATE key_uses SET kind = 'REVOKE' WHERE ca_id = ?1 AND seq = 3 AND ?2 <> ''`,
			want: `is stored as an entry of kind "REVOKE", which its record is not`},
		// SQLite finds a blob equal to no text: by kind, queries would not
		// find the entry.
		"an issuance's kind a blob": {sql: `UPDATE key_uses SET kind = CAST('ISSUE' AS BLOB) WHERE ca_id = ?1 AND seq = 3 AND ?2 <> ''`,
			want: `is stored as an entry of kind "", which its record is not`},
		// The CSR's entry made an import, and the import the upgrade's.
		"the upgrade's import after another": {rewrite: func(records [][]byte) [][]byte {
			records[0] = bytes.Clone(records[2])
			records[2] = regexp.MustCompile(`"requestedBy":"[^"]*"`).ReplaceAll(records[2], []byte(`"requestedBy":"`+openpca.UpgradePrincipal+`"`))
			return records
		}, sql: `UPDATE key_uses SET kind = 'IMPORT' WHERE ca_id = ?1 AND seq = 0 AND ?2 <> ''`,
			want: "imports the CA's certificate as the upgrade to a version that logs imports does, after entry 0 imported one"},
		"the import": {rewrite: func(records [][]byte) [][]byte {
			for i, r := range recordsOf(t, records) {
				if r.Kind == openpca.KeyUseImport {
					records[i] = bytes.Replace(records[i], []byte(`"certificateSha256":"`), []byte(`"certificateSha256":"00`), 1)
				}
			}
			return records
		}},
	} {
		t.Run(name, func(t *testing.T) {
			tt.format, tt.want = types.AuditReportResponseFormatJson, cmp.Or(tt.want, want)
			tamperedReport(t, tt)
		})
	}
}
